"""Benchmarks: this project versus gcal-sync and the raw sequential loop, as Markdown tables.

``python bench/run.py [--quick] [--only full,memory,steady,burst,fleet] [--no-mysql]``

The fleet scenario (``fleet.py``) adds Google-like latency and several accounts;
``--fleet N,M,A``, ``--latency-ms``, ``--per-item-ms``, ``--jitter-ms`` and
``--contenders`` shape it.

The emulator runs in its own process (``emuhost.py``) and every contender in
another (``contend.py``), so each peak RSS and CPU figure belongs to one
program. Every contender syncs the same seeded data from the same emulator,
and a result counts only when its mirror matches the emulator's truth (ids
and etags; gcal-sync keeps no etags, so ids and the versioned summaries).
Ratios are the point: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root"}
QUICK = {"one": 20_000, "many": 200, "per_cal": 100, "mem": (2_000, 20_000),
         "steady": (200, 1_000), "steady_events": 5, "burst_base": 20_000,
         "fleet": (64, 20, 4)}
FULL = {"one": 100_000, "many": 1_000, "per_cal": 100, "mem": (10_000, 100_000),
        "steady": (1_000, 10_000), "steady_events": 5, "burst_base": 50_000,
        "fleet": (400, 50, 4)}
BURST = {"updates": 4_000, "deletes": 500, "inserts": 500}


class Emu:
    """The emulator host process, seeded on command."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([PYTHON, str(HERE / "emuhost.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=HERE)
        self.host = self._read()["host"]

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("bench: the emulator process died")
        return dict(json.loads(line))

    def call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def truth(self, calendars: list[str]) -> dict[str, dict[str, list[str]]]:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            path = handle.name
        self.call("truth", calendars=calendars, path=path)
        out = json.loads(Path(path).read_text(encoding="utf-8"))
        os.unlink(path)
        return dict(out)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


class Databases:
    """Fresh, throw-away databases: a SQLite file or a MariaDB schema per run."""

    def __init__(self, use_mysql: bool) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-db-"))
        self.use_mysql = use_mysql
        self.count = 0
        self.made: list[str] = []

    def new(self, kind: str) -> str:
        self.count += 1
        if kind == "sqlite":
            return f"sqlite:///{self.dir}/db{self.count}.sqlite"
        import pymysql

        name = f"bench_{os.getpid()}_{self.count}"
        with pymysql.connect(**MYSQL) as conn, conn.cursor() as cur:  # type: ignore[arg-type]
            cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        self.made.append(name)
        return f"mysql://root@127.0.0.1:3306/{name}"

    def drop_all(self) -> None:
        if self.made:
            import pymysql

            with pymysql.connect(**MYSQL) as conn, conn.cursor() as cur:  # type: ignore[arg-type]
                for name in self.made:
                    cur.execute(f"DROP DATABASE IF EXISTS {name}")
            self.made.clear()
        for path in self.dir.glob("*"):
            path.unlink()

    def kinds(self) -> list[str]:
        return ["sqlite", "mysql"] if self.use_mysql else ["sqlite"]


def contend(emu: Emu, who: str, db: str, calendars: list[str], steps: list[str],
            **extra: Any) -> list[dict[str, Any]]:
    """Run one contender process; return its step results plus the correctness verdict."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-run-"))
    spec = {"who": who, "db": db, "calendars": calendars, "steps": steps, "emu": emu.host,
            "mirror_out": str(workdir / "mirror.json"), **extra}
    (workdir / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    proc = subprocess.run([PYTHON, str(HERE / "contend.py"), str(workdir / "spec.json")],
                          capture_output=True, text=True, cwd=HERE, timeout=3600)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise SystemExit(f"bench: contender {who} failed:\n" + "\n".join(tail))
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    mirror = json.loads((workdir / "mirror.json").read_text(encoding="utf-8"))
    problem = verify(emu.truth(calendars), mirror, etags=who != "gcal")
    for result in results:
        result["ok"] = problem is None
        result["problem"] = problem
    if problem:
        print(f"bench: {who} on {db.split(':')[0]} mirrored wrongly: {problem}", file=sys.stderr)
    return results


def verify(truth: dict[str, dict[str, list[str]]], mirror: dict[str, dict[str, list[str]]],
           etags: bool) -> str | None:
    """None when the live rows equal the emulator's live events (ids, etags or summaries)."""
    for cal, events in truth.items():
        got = mirror.get(cal, {})
        live = {i: v for i, v in events.items() if v[1] != "cancelled"}
        have = {i: v for i, v in got.items() if v[1] != "cancelled"}
        if set(live) != set(have):
            return (f"{cal}: {len(set(live) - set(have))} missing, "
                    f"{len(set(have) - set(live))} extra live rows")
        index = 0 if etags else 2
        wrong = [i for i, v in live.items() if have[i][index] != v[index]]
        if wrong:
            return f"{cal}: {len(wrong)} rows with a stale {'etag' if etags else 'summary'}"
    return None


def calendars(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{k:05d}@group.calendar.google.com" for k in range(count)]


def mark(ok: bool) -> str:
    return "yes" if ok else "NO"


# -- the scenarios ---------------------------------------------------------------------


def full_sync(sizes: dict[str, Any], dbs: Databases, out: list[str]) -> dict[str, Any]:
    """Table 1: first sync of one big calendar and of many small ones."""
    facts: dict[str, Any] = {}
    out.append("### 1. Full sync\n")
    out.append("| data | contender | database | seconds | events/s | vs raw loop | API requests "
               "| peak RSS MB | correct |")
    out.append("|---|---|---|---:|---:|---:|---:|---:|---|")
    for label, cals, per in ((f"1 calendar x {sizes['one']:,}", calendars("big", 1), sizes["one"]),
                             (f"{sizes['many']:,} calendars x {per_cal(sizes)}",
                              calendars("small", sizes["many"]), per_cal(sizes))):
        emu = Emu()
        try:
            emu.call("seed", calendars=cals, events=per)
            total = len(cals) * per
            rows: list[tuple[str, str, dict[str, Any]]] = []
            for kind in dbs.kinds():
                for who in ("raw", "project"):
                    rows.append((who, kind, contend(emu, who, dbs.new(kind), cals, ["full"])[0]))
                dbs.drop_all()
            rows.append(("gcal", "in-memory", contend(emu, "gcal", "", cals, ["full"])[0]))
        finally:
            emu.close()
        raw_rate = {kind: total / r["seconds"] for who, kind, r in rows if who == "raw"}
        for who, kind, r in rows:
            rate = total / r["seconds"]
            base = raw_rate.get(kind) or raw_rate["sqlite"]
            out.append(f"| {label} | {NAMES[who]} | {kind} | {r['seconds']:.2f} | {rate:,.0f} | "
                       f"{rate / base:.2f}x | {r['requests']} | {r['rss_mb']:.0f} | {mark(r['ok'])} |")
            facts[(label, who, kind)] = {"rate": rate, **r}
    out.append("")
    return facts


def per_cal(sizes: dict[str, Any]) -> int:
    return int(sizes["per_cal"])


def memory(sizes: dict[str, Any], dbs: Databases, out: list[str]) -> None:
    """Table 2: peak RSS of a first sync at two sizes of one calendar."""
    small, big = sizes["mem"]
    peaks: dict[tuple[str, int], dict[str, Any]] = {}
    for n in (small, big):
        emu = Emu()
        try:
            cals = calendars(f"mem{n}-", 1)
            emu.call("seed", calendars=cals, events=n)
            for who in ("raw", "project", "gcal"):
                db = dbs.new("sqlite") if who != "gcal" else ""
                peaks[(who, n)] = contend(emu, who, db, cals, ["full"])[0]
            dbs.drop_all()
        finally:
            emu.close()
    out.append("### 2. Memory: peak RSS of a first sync of one calendar (SQLite)\n")
    out.append(f"| contender | {small:,} events MB | {big:,} events MB | growth | correct |")
    out.append("|---|---:|---:|---:|---|")
    for who in ("raw", "project", "gcal"):
        a, b = peaks[(who, small)], peaks[(who, big)]
        out.append(f"| {NAMES[who]} | {a['rss_mb']:.0f} | {b['rss_mb']:.0f} | "
                   f"{b['rss_mb'] / a['rss_mb']:.2f}x | {mark(a['ok'] and b['ok'])} |")
    out.append("")


def steady(sizes: dict[str, Any], dbs: Databases, out: list[str]) -> None:
    """Table 3: a pass over calendars where nothing changed."""
    out.append("### 3. Steady state: a pass where nothing changed (SQLite, concurrency 4)\n")
    out.append("| calendars | contender | pass seconds | vs raw loop | API requests / calendar "
               "| SQL statements / calendar | transactions / calendar | polls/s | "
               "CPU s / 1,000 polls | correct |")
    out.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for count in sizes["steady"]:
        emu = Emu()
        try:
            cals = calendars(f"st{count}-", count)
            emu.call("seed", calendars=cals, events=sizes["steady_events"])
            got = {who: contend(emu, who, dbs.new("sqlite"), cals, ["full", "steady"])[1]
                   for who in ("raw", "project")}
            dbs.drop_all()
        finally:
            emu.close()
        for who in ("raw", "project"):
            r = got[who]
            out.append(f"| {count:,} | {NAMES[who]} | {r['seconds']:.2f} | "
                       f"{got['raw']['seconds'] / r['seconds']:.2f}x faster | "
                       f"{r['requests'] / count:.2f} | {r['statements'] / count:.2f} | "
                       f"{r['transactions'] / count:.2f} | {count / r['seconds']:,.0f} | "
                       f"{1000 * r['cpu'] / count:.2f} | {mark(r['ok'])} |")
    out.append("")


def burst(sizes: dict[str, Any], dbs: Databases, out: list[str]) -> None:
    """Table 4: 5,000 changes in one synced calendar."""
    base = sizes["burst_base"]
    changed = sum(BURST.values())
    out.append(f"### 4. Incremental burst: {changed:,} changes ({BURST['updates']:,} edits, "
               f"{BURST['deletes']} deletions, {BURST['inserts']} new) in a synced calendar of "
               f"{base:,}\n")
    out.append("| contender | database | seconds | changes/s | vs raw loop | API requests | "
               "change rows written | correct |")
    out.append("|---|---|---:|---:|---:|---:|---:|---|")
    emu = Emu()
    rows: list[tuple[str, str, dict[str, Any]]] = []
    try:
        runs = [(who, kind) for kind in dbs.kinds() for who in ("raw", "project")]
        runs.append(("gcal", "in-memory"))
        cals = {run: calendars(f"burst-{run[0]}-{run[1]}-", 1) for run in runs}
        emu.call("seed", calendars=[c for cs in cals.values() for c in cs], events=base)
        for who, kind in runs:
            cal = cals[(who, kind)]
            spec = {"calendar": cal[0], "total": base, **BURST}
            db = dbs.new(kind) if who != "gcal" else ""
            rows.append((who, kind, contend(emu, who, db, cal, ["full", "burst"], burst=spec)[1]))
        dbs.drop_all()
    finally:
        emu.close()
    raw = {kind: r["seconds"] for who, kind, r in rows if who == "raw"}
    for who, kind, r in rows:
        ref = raw.get(kind) or raw["sqlite"]
        written = r.get("changes")
        out.append(f"| {NAMES[who]} | {kind} | {r['seconds']:.2f} | {changed / r['seconds']:,.0f} | "
                   f"{ref / r['seconds']:.2f}x | {r['requests']} | "
                   f"{'-' if written is None else f'{written:,}'} | {mark(r['ok'])} |")
    out.append("")


def fleet(sizes: dict[str, Any], dbs: Databases, out: list[str]) -> None:
    """Table 5: a fleet over several accounts with Google-like latency (see fleet.py)."""
    import fleet as fleet_mod

    calendars_, events, accounts = sizes["fleet"]
    opts = sizes.get("fleet_opts", {})
    latency = fleet_mod.Latency(opts.get("fixed_ms", 150.0), opts.get("per_item_ms", 0.1),
                                opts.get("jitter_ms", 20.0))
    fleet_mod.run_fleet(Emu, verify, calendars_, events, accounts, latency, out,
                        only=tuple(opts.get("contenders", ())))


NAMES = {"project": "calendar-reconciler", "raw": "raw sequential loop", "gcal": "gcal-sync 8"}
SCENARIOS = {"full": full_sync, "memory": memory, "steady": steady, "burst": burst, "fleet": fleet}


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def main() -> None:
    """Parse arguments, run the chosen scenarios, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (under 3 minutes)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--no-mysql", action="store_true", help="skip MariaDB rows")
    parser.add_argument("--fleet", metavar="N,M,A",
                        help="fleet size: calendars, events each, accounts (default 400,50,4)")
    parser.add_argument("--latency-ms", type=float, default=150.0,
                        help="fleet: fixed latency per request (default 150)")
    parser.add_argument("--per-item-ms", type=float, default=0.1,
                        help="fleet: extra latency per listed event (default 0.1)")
    parser.add_argument("--jitter-ms", type=float, default=20.0,
                        help="fleet: uniform 0..J ms added per request (default 20)")
    parser.add_argument("--contenders", default="",
                        help="fleet: comma-separated subset of " + ",".join(
                            ["project-default", "project-tuned", "project-warm", "raw-seq", "raw-pool",
                             "gcal"]))
    args = parser.parse_args()
    sizes = dict(QUICK if args.quick else FULL)
    if args.fleet:
        sizes["fleet"] = tuple(int(x) for x in args.fleet.split(","))
    sizes["fleet_opts"] = {"fixed_ms": args.latency_ms, "per_item_ms": args.per_item_ms,
                           "jitter_ms": args.jitter_ms,
                           "contenders": [c for c in args.contenders.split(",") if c]}
    dbs = Databases(use_mysql=not args.no_mysql)
    started = time.monotonic()
    out = [f"## Results ({'quick' if args.quick else 'full'} run, {time.strftime('%Y-%m-%d')}, "
           f"{machine()})\n"]
    try:
        for name in args.only.split(","):
            print(f"bench: {name.strip()} ...", file=sys.stderr, flush=True)
            SCENARIOS[name.strip()](sizes, dbs, out)
    finally:
        dbs.drop_all()
    out.append(f"_Total bench time: {time.monotonic() - started:.0f} s._")
    print("\n".join(out))


if __name__ == "__main__":
    main()
