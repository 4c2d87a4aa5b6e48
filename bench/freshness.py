"""Freshness per request: the fixed and the adaptive schedule side by side on one timeline.

A skewed fleet (300 calendars of 20 events over 4 accounts; 5% of the
calendars receive 80% of the edits, the rest share 20% by Zipf(0.8) rank,
which leaves the issue's "235 of 300 calendars without an edit" in 3
minutes, or evenly with ``--quiet-zipf 0``), a Google-like latency (100 ms a request), a budget
(``[quota] requests_per_minute = 600``, which ``interval = 30`` spends
exactly) and a Poisson edit trace (120 edits a minute for 3 minutes). Two
emulators are seeded identically and every edit of the trace is applied to
both at the same moment; one ``reconciler run`` process with ``schedule =
"fixed"`` mirrors the first, one with ``schedule = "adaptive"``
(``max_interval = 60``) the second, each into its own SQLite database. So both
schedules see the same edits at the same times, and each emulator's request
log is one schedule's cost.

With ``--watch`` a third side runs ``schedule = "adaptive"`` with watch mode
on (the receiver on a loopback port; its emulator pushes a notification per
edit), against a third emulator seeded identically and edited alike, with the
same budget. Its polls are the safety net (watched calendars sit at
``max_interval``) and its hinted passes spend from the same budget: its
requests per minute count ``events.watch`` and ``channels.stop`` too. Edits
start once its channels are open.

Staleness is the time from an edit at the emulator to its appearance in the
mirror database (a watcher reads both databases every 50 ms; an edit
overwritten before it showed counts as shown when a later version of the same
event shows). The fleet was changing before the run as it does during it: the
seeded events carry the ``updated`` times of two hours of the same edit
process (``--history 0``: a cold start, every event last changed in 2024),
which is what a first listing of a real fleet shows. Edits start once both
processes finished their first (full) passes. Two theory rows come from the
same trace: a fixed interval (an edit waits U(0, I)) and the square-root
oracle, which knows the true rates and polls each calendar at its allocation
(an edit waits U(0, I_c); no latency).

    .venv/bin/python bench/freshness.py              # about 5-6 minutes
    .venv/bin/python bench/freshness.py --minutes 1  # a quick look
    .venv/bin/python bench/freshness.py --quiet-zipf 0  # quiet calendars share evenly
    .venv/bin/python bench/freshness.py --history 0     # a cold start
    .venv/bin/python bench/freshness.py --watch   # and adaptive with watch on (~13 min)
    .venv/bin/python bench/freshness.py --dump polls.json  # and every poll, to look at a wave
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import data

from reconciler.emulator import Emulator
from reconciler.emulator.server import ServerHandle
from reconciler.schedule.allocate import budget_per_second, intervals
from reconciler.store import open_store

REPO = Path(__file__).resolve().parents[1]
USERS = [f"user{k}@example.com" for k in range(4)]
WATCH_TICK = 0.05
SECRET = "bench-secret-0123456789abcdef"
WATCH_METHODS = ("events.watch", "channels.stop")


@dataclass(frozen=True)
class Setup:
    """The benchmark's parameters (the issue's setup by default)."""

    calendars: int = 300
    events: int = 20
    busy_share: float = 0.05
    busy_edits: float = 0.8
    edits_per_minute: float = 120.0
    minutes: float = 3.0
    interval: int = 30
    max_interval: int = 60
    budget: int = 600
    latency_ms: float = 100.0
    seed: int = 18
    quiet_zipf: float = 0.8  # the quiet calendars' share by Zipf(s) rank; 0: evenly
    history: float = 7200.0  # seconds of the same edit process before the run (0: none)

    @property
    def busy(self) -> int:
        return max(1, round(self.calendars * self.busy_share))


@dataclass(frozen=True)
class Edit:
    seq: int
    at: float  # seconds after the trace starts
    calendar: str
    event: int


@dataclass
class Side:
    """One schedule: its emulator, database, process and what was seen."""

    label: str
    emu: Emulator
    handle: ServerHandle
    db: Path
    adaptive: bool = False
    watch_port: int | None = None  # watch mode on, the receiver on this port
    proc: subprocess.Popen[bytes] | None = None
    stderr: Path | None = None
    edited: dict[int, float] = field(default_factory=dict)  # seq -> monotonic time of the edit
    shown: dict[int, float] = field(default_factory=dict)  # seq -> time it showed in the mirror


def calendar_ids(setup: Setup) -> list[str]:
    return [f"c{n:03d}@group.calendar.google.com" for n in range(setup.calendars)]


def quiet_weights(setup: Setup) -> list[float]:
    """Each quiet calendar's share of the quiet edits: even, or Zipf(s) by rank."""
    quiet = setup.calendars - setup.busy
    weights = [1.0 / (k + 1) ** setup.quiet_zipf for k in range(quiet)]
    total = sum(weights)
    return [w / total for w in weights]


def true_rates(setup: Setup) -> dict[str, float]:
    """Edits per second per calendar: the busy 5% share 80% evenly, the rest by quiet_weights."""
    cals = calendar_ids(setup)
    total = setup.edits_per_minute / 60.0
    rates = {c: total * setup.busy_edits / setup.busy for c in cals[:setup.busy]}
    for cal, weight in zip(cals[setup.busy:], quiet_weights(setup), strict=True):
        rates[cal] = total * (1 - setup.busy_edits) * weight
    return rates


def trace(setup: Setup, rng: random.Random) -> list[Edit]:
    """Poisson arrivals; 80% to the busy 5%, the rest over the others (evenly or Zipf)."""
    cals = calendar_ids(setup)
    busy, quiet = cals[:setup.busy], cals[setup.busy:]
    weights = quiet_weights(setup)
    rate = setup.edits_per_minute / 60.0
    edits, t, seq = [], 0.0, 0
    while True:
        t += rng.expovariate(rate)
        if t >= setup.minutes * 60:
            return edits
        if rng.random() < setup.busy_edits:
            cal = rng.choice(busy)
        elif setup.quiet_zipf:
            cal = rng.choices(quiet, weights)[0]
        else:
            cal = rng.choice(quiet)  # the same draws as before the Zipf option
        edits.append(Edit(seq, t, cal, rng.randrange(setup.events)))
        seq += 1


def history(setup: Setup) -> dict[str, dict[int, float]]:
    """Per calendar, the age (seconds before the run) of each event's last edit, for the
    events edited in the ``setup.history`` seconds before: the fleet was changing at the
    same rates before ``run`` started, as a real fleet is (the first listing shows it)."""
    rng = random.Random(setup.seed * 7919)
    ages: dict[str, dict[int, float]] = {}
    for cal, rate in true_rates(setup).items():
        mine: dict[int, float] = {}
        t = 0.0
        while rate > 0:
            t += rng.expovariate(rate)
            if t > setup.history:
                break
            mine.setdefault(rng.randrange(setup.events), t)
        ages[cal] = mine
    return ages


def stamp(at: float) -> str:
    """RFC 3339 in UTC with milliseconds, as Google writes ``updated``."""
    when = dt.datetime.fromtimestamp(at, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def start_emulator(setup: Setup, past: dict[str, dict[int, float]],
                   now: float) -> tuple[Emulator, ServerHandle]:
    emu = Emulator(default_user=USERS[0])
    for n, cal in enumerate(calendar_ids(setup)):
        emu.add_calendar(cal, owners=[USERS[n % len(USERS)]])
        events = []
        for k in range(setup.events):
            event = data.make_event(cal, k)
            if k in past[cal]:
                event["updated"] = stamp(now - past[cal][k])
            events.append(event)
        emu.seed_raw(cal, events)
    handle = ServerHandle(emu, "127.0.0.1", 0)
    emu.set_latency(fixed_ms=setup.latency_ms)
    return emu, handle


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(directory: Path, setup: Setup, side: Side) -> Path:
    cals = calendar_ids(setup)
    lines = [f'[database]\nurl = "sqlite:///{side.db}"\n',
             f"[sync]\ninterval = {setup.interval}\n"
             + (f'schedule = "adaptive"\nmax_interval = {setup.max_interval}\n'
                if side.adaptive else ""),
             f"[quota]\nrequests_per_minute = {setup.budget}\n"]
    if side.watch_port is not None:
        lines.append(f'[watch]\nenabled = true\naddress = "http://127.0.0.1:{side.watch_port}/hook"\n'
                     f'listen = "127.0.0.1:{side.watch_port}"\nsecret = "{SECRET}"\n')
    for k, user in enumerate(USERS):
        mine = [c for n, c in enumerate(cals) if n % len(USERS) == k]
        quoted = ", ".join(f'"{c}"' for c in mine)
        lines.append(f'[[accounts]]\nname = "acct{k}"\nsubject = "{user}"\ncalendars = [{quoted}]\n')
    path = directory / f"{side.db.stem}.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def start_run(side: Side, config: Path, directory: Path) -> None:
    open_store(f"sqlite:///{side.db}")  # migrate before `run` starts
    side.stderr = directory / f"{side.label}.log"
    side.proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", "-c", str(config), "--log-level", "WARNING",
         "run"], env={**os.environ, "GOOGLE_CALENDAR_EMULATOR_HOST": side.emu.host}, cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=side.stderr.open("wb"))


def synced(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM calendar WHERE last_success IS NOT NULL")
                   .fetchone()[0])


def watch(sides: list[Side], edits: list[Edit], stop: threading.Event) -> None:
    """Note when each edit (or a later one of the same event) shows in each mirror."""
    by_summary = {f"edit-{e.seq:05d}": e for e in edits}
    of_event: dict[tuple[str, int], list[int]] = {}
    for e in edits:
        of_event.setdefault((e.calendar, e.event), []).append(e.seq)
    conns = {side.label: sqlite3.connect(f"file:{side.db}?mode=ro", uri=True, timeout=5,
                                         check_same_thread=False) for side in sides}
    while not stop.is_set():
        for side in sides:
            rows = conns[side.label].execute(
                "SELECT summary FROM event WHERE summary LIKE 'edit-%'").fetchall()
            now = time.monotonic()
            for (summary,) in rows:
                edit = by_summary.get(summary)
                if edit is None:
                    continue
                for seq in of_event[(edit.calendar, edit.event)]:
                    if seq > edit.seq:
                        break
                    side.shown.setdefault(seq, now)
        stop.wait(WATCH_TICK)
    for conn in conns.values():
        conn.close()


def apply_trace(sides: list[Side], edits: list[Edit]) -> float:
    """Apply every edit to every emulator at its time; the monotonic start of the trace."""
    start = time.monotonic()
    for edit in edits:
        delay = start + edit.at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        body = {"summary": f"edit-{edit.seq:05d}"}
        for side in sides:
            side.emu.patch_event(edit.calendar, data.event_id(edit.event), body)
            side.edited[edit.seq] = time.monotonic()
    return start


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def row(label: str, stale: list[float], per_minute: float | str, busiest: str) -> str:
    rpm = per_minute if isinstance(per_minute, str) else f"{per_minute:.0f}"
    return (f"| {label} | {pct(stale, 0.5):.2f} | {pct(stale, 0.95):.2f} | "
            f"{statistics.fmean(stale):.2f} | {max(stale):.2f} | {rpm} | {busiest} |")


def measured(side: Side, start: float, end: float,
             settle: float) -> tuple[list[float], float, str, int]:
    """Staleness, requests a minute and the busiest second (events.list, and with watch
    mode on events.watch and channels.stop too), edits never shown."""
    stale = [side.shown[s] - side.edited[s] for s in side.edited if s in side.shown]
    missing = len(side.edited) - len(stale)
    methods = ("events.list", *WATCH_METHODS) if side.watch_port is not None else ("events.list",)
    lists = [r for r in side.emu.request_log
             if r.method in methods and start <= r.start < end]
    minutes = (end - start) / 60.0
    seconds = Counter(int(r.start - start) for r in lists)
    mean = len(lists) / (end - start)
    busiest = max(seconds.values(), default=0)
    when = max(seconds, key=lambda s: seconds[s], default=0)
    # Steady state (issue 18's "at steady state"): after one max_interval of the trace, when
    # every calendar's second poll, the wave after the fleet's first passes, is behind it.
    settled = max((n for s, n in seconds.items() if s >= settle), default=0)
    return (stale, len(lists) / minutes,
            f"{busiest} ({busiest / mean:.1f}x mean, at {when} s; after {settle:g} s: "
            f"{settled}, {settled / mean:.1f}x)", missing)


def theory(setup: Setup, edits: list[Edit], rng: random.Random) -> tuple[list[float], list[float]]:
    """Staleness of the trace's edits under a fixed interval and under the square-root oracle."""
    fixed = [rng.uniform(0, setup.interval) for _ in edits]
    rates = true_rates(setup)
    budget = budget_per_second(setup.calendars, setup.interval, setup.budget)
    plan = intervals(rates, budget, min(2, setup.interval), setup.max_interval, exponent=0.5)
    oracle = [rng.uniform(0, plan[e.calendar]) for e in edits]
    return fixed, oracle


def worst(side: Side, edits: list[Edit]) -> str:
    """The longest-waiting edit and its calendar's polls around it (what to look at first)."""
    waits = {seq: side.shown[seq] - side.edited[seq] for seq in side.edited if seq in side.shown}
    if not waits:
        return "no edit shown"
    seq = max(waits, key=lambda k: waits[k])
    edit = next(e for e in edits if e.seq == seq)
    at = side.edited[seq]
    polls = sorted(r.start - at for r in side.emu.request_log
                   if r.method == "events.list" and r.calendar_id == edit.calendar
                   and at - 120 <= r.start <= at + waits[seq] + 5)
    return (f"longest wait {waits[seq]:.1f} s on {edit.calendar.split('@')[0]}; its polls "
            f"(s from the edit): {', '.join(f'{p:+.1f}' for p in polls)}")


def scheduler_warnings(side: Side) -> int:
    if side.stderr is None or not side.stderr.exists():
        return 0
    text = side.stderr.read_text(encoding="utf-8", errors="replace")
    return sum(1 for line in text.splitlines()
               if "was missed by" in line or "maximum number of running instances" in line)


def channels_open(side: Side, setup: Setup) -> bool:
    return side.watch_port is None or len(side.emu.channels()) >= setup.calendars


def ready(sides: list[Side], setup: Setup, limit: float) -> None:
    """Wait until every side finished its first passes (and opened its channels)."""
    deadline = time.monotonic() + limit
    while any(synced(s.db) < setup.calendars or not channels_open(s, setup) for s in sides):
        if time.monotonic() > deadline or any(s.proc and s.proc.poll() is not None
                                              for s in sides):
            for s in sides:
                if s.stderr is not None:
                    print(f"--- {s.label}:", *s.stderr.read_text().splitlines()[-5:],
                          sep="\n", file=sys.stderr)
            if any(s.watch_port is not None for s in sides):
                opened = ", ".join(f"{s.label}: {len(s.emu.channels())} channels" for s in sides)
                raise SystemExit(f"the first passes and channels did not finish "
                                 f"(in {limit / 60:g} minutes; {opened})")
            raise SystemExit(f"the first passes did not finish (in {limit / 60:g} minutes)")
        time.sleep(0.5)


def watch_requests(side: Side, start: float, end: float) -> Counter[str]:
    return Counter(r.method for r in side.emu.request_log
                   if r.method in WATCH_METHODS and start <= r.start < end)


def notified(side: Side, start: float, end: float) -> str:
    """How many ``exists`` notifications the emulator pushed during the trace, and how many
    the receiver did not answer 200."""
    pushed = [d for d in side.emu.deliveries() if d["state"] == "exists" and start <= d["at"] < end]
    refused = sum(1 for d in pushed if d["status"] != 200)
    return f"{len(pushed)} notifications pushed ({refused} not answered 200)"


def dump(path: Path, sides: list[Side], edits: list[Edit], start: float) -> None:
    """The raw timeline behind the table: each side's polls and when each edit was made
    and shown, in seconds from the trace's start (negative: the first passes)."""
    out = {"start_epoch": time.time() - time.monotonic() + start,  # the trace's start, wall
           "edits": [{"seq": e.seq, "calendar": e.calendar, "at": e.at} for e in edits],
           "sides": {side.label: {
               "polls": [[r.calendar_id, round(r.start - start, 3)]
                         for r in side.emu.request_log if r.method == "events.list"],
               "shown": {str(s): round(side.shown[s] - start, 3) for s in side.shown}}
               for side in sides}}
    path.write_text(json.dumps(out), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the edit trace")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--quiet-zipf", type=float, default=0.8, metavar="S",
                        help="quiet calendars' share of edits by Zipf(S) rank (0: even)")
    parser.add_argument("--history", type=float, default=7200.0, metavar="SECONDS",
                        help="the same edits for this long before the run (0: a cold start)")
    parser.add_argument("--watch", action="store_true",
                        help="a third side: adaptive with watch mode on (its own emulator)")
    parser.add_argument("--dump", type=Path, metavar="FILE",
                        help="write every side's events.list requests (calendar, seconds "
                             "from the trace's start) and the edits as JSON, to look at a wave")
    args = parser.parse_args()
    setup = Setup(minutes=args.minutes, seed=args.seed, quiet_zipf=args.quiet_zipf,
                  history=args.history)
    rng = random.Random(setup.seed)
    edits = trace(setup, rng)
    with tempfile.TemporaryDirectory(prefix="bench-fresh-") as tmp:
        directory = Path(tmp)
        sides = []
        past, now = history(setup), time.time()
        kinds = [("fixed", "fixed", False), ("adaptive", "adaptive", True)]
        if args.watch:
            kinds.append(("adaptive + watch", "adaptive-watch", True))
        for label, name, adaptive in kinds:
            emu, handle = start_emulator(setup, past, now)
            sides.append(Side(label, emu, handle, directory / f"{name}.db", adaptive=adaptive,
                              watch_port=free_port() if name.endswith("watch") else None))
        try:
            # The watch side first: its channels open while its polls spend the budget,
            # which takes minutes; the other sides then start as in a run without it.
            watching = [side for side in sides if side.watch_port is not None]
            for group, limit in ((watching, 900), ([s for s in sides if s not in watching], 300)):
                for side in group:
                    start_run(side, write_config(directory, setup, side), directory)
                ready(group, setup, limit)
            for side in watching:
                side.emu.hub.wait_idle(30)  # every channel's `sync` message delivered
            stop = threading.Event()
            watcher = threading.Thread(target=watch, args=(sides, edits, stop), daemon=True)
            watcher.start()
            start = apply_trace(sides, edits)
            end = time.monotonic()
            settle = time.monotonic() + setup.max_interval + 10
            while time.monotonic() < settle and any(len(s.shown) < len(edits) for s in sides):
                time.sleep(0.5)
            stop.set()
            watcher.join(5)
        finally:
            for side in sides:
                if side.proc is not None:
                    side.proc.send_signal(signal.SIGTERM)
            for side in sides:
                if side.proc is not None:
                    side.proc.wait(30)
                side.handle.stop()
        if args.dump is not None:
            dump(args.dump, sides, edits, start)
        fixed_theory, oracle = theory(setup, edits, rng)
        idle = setup.calendars - len({e.calendar for e in edits})
        share = f"Zipf s={setup.quiet_zipf:g}" if setup.quiet_zipf else "even"
        share += f"; {setup.history:g} s of edits before the run" if setup.history else "; cold start"
        print(f"Freshness: {setup.calendars} calendars x {setup.events} events over {len(USERS)} "
              f"accounts, {setup.busy} busy calendars take {setup.busy_edits:.0%} of "
              f"{setup.edits_per_minute:.0f} edits/min for {setup.minutes:g} min "
              f"({len(edits)} edits; {idle} calendars without one; quiet share {share}), "
              f"latency {setup.latency_ms:.0f} ms, budget {setup.budget}/min, "
              f"interval {setup.interval} s, adaptive max_interval {setup.max_interval} s\n")
        requests = "events.list (+ watch)/min" if args.watch else "events.list/min"
        print(f"| schedule | p50 (s) | p95 (s) | mean (s) | max (s) | {requests} | "
              "busiest second |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        notes = []
        for side in sides:
            stale, rpm, busiest, missing = measured(side, start, end, setup.max_interval)
            print(row(f"{side.label} (measured)", stale, rpm, busiest))
            note = (f"{side.label}: {missing} edit(s) never shown, "
                    f"{scheduler_warnings(side)} APScheduler warning(s)")
            if side.watch_port is not None:
                watch_calls = watch_requests(side, start, end)
                note += (f", {watch_calls['events.watch']} events.watch and "
                         f"{watch_calls['channels.stop']} channels.stop during the trace, "
                         f"{notified(side, start, end)}")
            notes.append(f"{note}; {worst(side, edits)}")
        print(row(f"fixed, theory U(0, {setup.interval})", fixed_theory, "-", "-"))
        print(row("square-root oracle (true rates)", oracle, "-", "-"))
        print()
        for note in notes:
            print(f"- {note}")


if __name__ == "__main__":
    main()
