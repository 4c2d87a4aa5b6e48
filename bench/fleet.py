"""The fleet scenario: many calendars over several accounts, with Google-like latency.

Against Google a request waits 100-300 ms and the ceilings are quotas (600
requests per minute per user, 10,000 per minute per project, counted over a
sliding minute), so a zero-latency bench measures the wrong thing. Here the
emulator waits ``fixed + per_item x items + jitter`` per request and every
contender syncs the same fleet (N calendars x M events, spread over several
users of the emulator) in three passes: a first sync, a pass where nothing
changed, and a small burst (a few edits in every tenth calendar, then a pass).

Each contender gets a fresh emulator seeded with the same data, so request
counts and edits never mix. After every pass its mirror is compared with the
emulator's truth (live ids and etags; gcal-sync keeps no etags, so the
summaries, which carry the version number). A pass counts only when correct.

The floor of a pass is what 32 requests in flight allow: total request
latency / 32 (at least one request's wait); or, when the pass sends more than a minute's quota for one user
or for the project, the time the sliding window needs to let them through
(the last request can start only ``60 x floor((R - 1) / quota)`` seconds after
the first). The project's ``once`` rows are ``reconciler once`` as a fresh
process per pass (start-up included); ``project-warm`` (the pass ``once`` runs,
in a long-lived process), the raw loops and gcal-sync run in one process each
and only their pass is timed, so ``project-warm`` against ``raw-pool`` is like
for like.

``python bench/fleet.py worker SPEC.json`` is the child side of one in-process
contender: it reads ``sync``/``mirror PATH``/``quit`` lines on stdin.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
USER_QUOTA = 600  # requests per minute per user (Google's default)
PROJECT_QUOTA = 10_000  # requests per minute per project (Google's default)
WIDTH = 32  # requests in flight the floor assumes
TOKEN_PREFIX = "emulator-user:"  # the emulator's "act as this user" bearer token
EDIT = {"updates": 2, "deletes": 1, "inserts": 1}  # per edited calendar in the burst
EDIT_EVERY = 10  # every tenth calendar is edited

Mirror = dict[str, dict[str, list[str]]]
Fleet = list[tuple[str, str]]  # (user, calendar id)


@dataclass(frozen=True)
class Latency:
    """The emulator's per-request latency, in milliseconds."""

    fixed_ms: float = 150.0
    per_item_ms: float = 0.1
    jitter_ms: float = 20.0

    def mean_seconds(self, items: float = 0.0) -> float:
        """Expected wait of one request listing ``items`` events (jitter is 0..jitter_ms)."""
        return (self.fixed_ms + self.per_item_ms * items + self.jitter_ms / 2) / 1000

    def label(self) -> str:
        return (f"{self.fixed_ms:g} ms fixed + {self.per_item_ms:g} ms per event + "
                f"0-{self.jitter_ms:g} ms jitter")


def make_fleet(calendars: int, accounts: int, prefix: str = "fleet") -> Fleet:
    """``calendars`` calendar ids dealt round-robin over ``accounts`` emulator users."""
    users = [f"{prefix}-user{k}@example.com" for k in range(accounts)]
    return [(users[n % accounts], f"{prefix}{n:05d}@group.calendar.google.com")
            for n in range(calendars)]


def edited(fleet: Fleet) -> list[str]:
    """The calendars the burst edits."""
    return [cal for n, (_, cal) in enumerate(fleet) if n % EDIT_EVERY == 0]


def floor(per_user: dict[str, int], items: int, latency: Latency) -> tuple[float, str]:
    """The least time a pass of these requests can take, and what sets it.

    ``per_user`` is the number of requests each user must send, ``items`` the
    events listed in the whole pass (per-item latency). Never below one
    request's wait.
    """
    total = sum(per_user.values())
    waiting = total * latency.mean_seconds() + items * latency.per_item_ms / 1000
    last = latency.mean_seconds()
    best, why = max(waiting / WIDTH, last if total else 0.0), f"latency / {WIDTH}"
    for count, quota, what in ([(n, USER_QUOTA, "user quota") for n in per_user.values()]
                               + [(total, PROJECT_QUOTA, "project quota")]):
        if count > quota:
            needed = 60.0 * ((count - 1) // quota) + last
            if needed > best:
                best, why = needed, what
    return best, why


# -- the child side: in-process contenders ----------------------------------------------


def _sqlite(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=normal")
    conn.execute("CREATE TABLE IF NOT EXISTS raw_event (calendar TEXT NOT NULL, id TEXT NOT NULL, "
                 "etag TEXT, status TEXT, updated TEXT, raw TEXT, PRIMARY KEY (calendar, id))")
    conn.execute("CREATE TABLE IF NOT EXISTS raw_state (calendar TEXT PRIMARY KEY, token TEXT)")
    conn.commit()
    return conn


class RawFleet:
    """What a competent engineer writes: events.list per calendar, one Http per thread.

    ``threads == 1`` is the sequential loop. Each worker thread builds its own
    client (httplib2 is not thread-safe) and names the user in the bearer
    token of each request; writes go through one SQLite connection under a lock.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self.fleet: Fleet = [(u, c) for u, c in spec["fleet"]]
        self.conn = _sqlite(spec["db"])
        self.lock = threading.Lock()
        self.local = threading.local()
        self.endpoint = f"http://{spec['emu']}/calendar/v3/"
        self.tokens: dict[str, str] = {}
        threads = int(spec["threads"])
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None
        # Build every thread's client now, before any timed pass: the project's
        # warm worker builds its API handles before its first pass too, so the
        # first sync compares syncing, not set-up. The barrier makes each of the
        # ``threads`` tasks run on its own thread.
        if self.pool is None:
            self._events()
        else:
            barrier = threading.Barrier(threads)

            def warm(_: int) -> None:
                self._events()
                barrier.wait()

            list(self.pool.map(warm, range(threads)))

    def _events(self) -> Any:
        events = getattr(self.local, "events", None)
        if events is None:
            from google.auth.credentials import AnonymousCredentials
            from googleapiclient.discovery import build

            events = build("calendar", "v3", credentials=AnonymousCredentials(),
                           static_discovery=True, cache_discovery=False,
                           client_options={"api_endpoint": self.endpoint}).events()
            self.local.events = events
        return events

    def _one(self, user: str, cal: str) -> None:
        events, page_token = self._events(), None
        while True:
            params: dict[str, Any] = {"calendarId": cal, "maxResults": 2500, "showDeleted": True}
            if cal in self.tokens:
                params["syncToken"] = self.tokens[cal]
            if page_token:
                params["pageToken"] = page_token
            request = events.list(**params)
            request.headers["authorization"] = f"Bearer {TOKEN_PREFIX}{user}"
            page = request.execute()
            rows = [(cal, i["id"], i.get("etag"), i.get("status"), i.get("updated"), json.dumps(i))
                    for i in page.get("items", [])]
            page_token = page.get("nextPageToken")
            with self.lock:
                if rows:
                    self.conn.executemany("INSERT OR REPLACE INTO raw_event VALUES (?, ?, ?, ?, ?, ?)",
                                          rows)
                if not page_token:
                    self.tokens[cal] = page["nextSyncToken"]
                    self.conn.execute("INSERT OR REPLACE INTO raw_state VALUES (?, ?)",
                                      (cal, page["nextSyncToken"]))
                self.conn.commit()
            if not page_token:
                return

    def sync(self) -> None:
        """One pass over the fleet."""
        if self.pool is None:
            for user, cal in self.fleet:
                self._one(user, cal)
        else:
            list(self.pool.map(lambda uc: self._one(*uc), self.fleet))

    def mirror(self) -> Mirror:
        out: Mirror = {}
        for cal, eid, etag, status, raw in self.conn.execute(
                "SELECT calendar, id, etag, status, raw FROM raw_event"):
            out.setdefault(cal, {})[eid] = [etag, status, json.loads(raw).get("summary", "")]
        return out


class GcalFleet:
    """gcal-sync 8's CalendarEventSyncManager per calendar under an asyncio.Semaphore."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import asyncio

        self.loop = asyncio.new_event_loop()
        self.fleet: Fleet = [(u, c) for u, c in spec["fleet"]]
        self.width = int(spec["threads"])
        self.host = f"http://{spec['emu']}/calendar/v3"
        self.managers: dict[str, Any] = {}
        self.session: Any = None

    async def _sync(self) -> None:
        import asyncio

        import aiohttp
        from gcal_sync.api import GoogleCalendarService
        from gcal_sync.auth import AbstractAuth
        from gcal_sync.sync import CalendarEventSyncManager

        class Auth(AbstractAuth):
            def __init__(self, session: Any, host: str, user: str) -> None:
                super().__init__(session, host=host)
                self.user = user

            async def async_get_access_token(self) -> str:
                return TOKEN_PREFIX + self.user

        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.width))
            apis = {u: GoogleCalendarService(Auth(self.session, self.host, u))
                    for u in {u for u, _ in self.fleet}}
            self.managers = {c: CalendarEventSyncManager(apis[u], calendar_id=c)
                             for u, c in self.fleet}
        gate = asyncio.Semaphore(self.width)

        async def one(cal: str) -> None:
            async with gate:
                await self.managers[cal].run()

        await asyncio.gather(*(one(c) for _, c in self.fleet))

    def sync(self) -> None:
        """One pass over the fleet."""
        self.loop.run_until_complete(self._sync())

    def mirror(self) -> Mirror:
        out: Mirror = {}
        for cal, manager in self.managers.items():
            stored = self.loop.run_until_complete(manager._store.async_load()) or {}
            out[cal] = {eid: ["", item.get("status") or "confirmed", item.get("summary") or ""]
                        for eid, item in (stored.get("items") or {}).items()}
        return out


class ProjectFleet:
    """calendar-reconciler in a long-lived process: ``reconciler once``'s pass, kept warm.

    At start it does what one ``reconciler once`` process does before its pass
    (``tune_for_sync``, INFO text logging, ``load_config`` of the same config
    ``project-default`` uses, ``open_store``, and ``run_once``'s ``QuotaBudget``,
    ``Service``, ``check_credentials``, ``resolve_calendars``), once. Each
    ``sync`` is then the pass of ``reconciler.once.run_once``: ``run_pass`` over
    the resolved rows with its progress object (log lines, no terminal) and its
    failure and summary lines; every calendar is still claimed, re-read under
    the lease, listed, written and recorded. Differences from ``once``, all
    start-up: calendars are resolved once, not per pass; the ``Service`` (its
    pass threads, API handles and engines) and the ``[quota]`` budget live as
    long as the process. Any failure in a pass fails the sync.

    The project's log lines (``once`` writes them to its stderr, a pipe in
    ``OnceProcess``) go to ``reconciler.log`` in the worker's directory.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        # Before the project is imported: the loader reads the emulator endpoint
        # (and would read a database override) from the environment, as for ``once``.
        os.environ["GOOGLE_CALENDAR_EMULATOR_HOST"] = spec["emu"]
        os.environ.pop("RECONCILER_DATABASE_URL", None)
        workdir = Path(spec["dir"])
        self.log_path = workdir / "reconciler.log"
        sys.stderr = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 (open for the process's life)

        from reconciler.config import load_config
        from reconciler.daemon.quota import QuotaBudget
        from reconciler.logsetup import configure_logging
        from reconciler.once import report_failures, report_summary
        from reconciler.outcome import SyncRequest
        from reconciler.process import tune_for_sync
        from reconciler.progress import PassSummary, make_progress
        from reconciler.service import Service
        from reconciler.store import open_store

        tune_for_sync()  # as ``reconciler.cli.main`` does
        configure_logging("INFO", "text")  # the CLI's defaults (``Context.apply_logging``)
        config_path = workdir / "reconciler.toml"
        config_path.write_text(project_config([(u, c) for u, c in spec["fleet"]], spec["db_url"],
                                              tuned=False), encoding="utf-8")
        self.config = load_config(config_path)
        self.db_url = self.config.database.url
        open_store(self.db_url)  # ``once`` opens (creates, migrates) the store before its pass
        self.budget = QuotaBudget(self.config.quota, threading.Event())
        self.service = Service(self.config, before_request=self.budget.before_request)
        self.service.check_credentials()
        self.rows, failures = self.service.resolve_calendars()
        if failures:
            raise RuntimeError(f"resolve_calendars: {failures[0].subject}: {failures[0].message}")
        self.request = SyncRequest(full=False, audit=False, lease_wait=self.config.sync.lease_time)
        self.make_progress = make_progress
        self.summary_of = PassSummary.of
        self.report_failures = report_failures
        self.report_summary = report_summary

    def sync(self) -> None:
        """One pass over the fleet, as ``run_once`` runs it (no ``--full``, no ``--verify``)."""
        started = time.monotonic()
        with self.make_progress(len(self.rows)) as progress:
            report = self.service.run_pass(self.rows, self.request, concurrency=None,
                                           observer=progress)
        self.report_failures(report)
        self.report_summary(self.summary_of(report, time.monotonic() - started))
        sys.stderr.flush()
        if not report.ok:
            first = report.failures[0]
            raise RuntimeError(f"{len(report.failures)} calendars failed; first "
                               f"{first.subject}: {first.message}")

    def mirror(self) -> Mirror:
        return mirror_of_store(self.db_url)

    def close(self) -> None:
        self.budget.stop()
        self.service.close()


WORKERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "raw": RawFleet, "gcal": GcalFleet, "project": ProjectFleet}


def worker(spec_path: str) -> None:
    """Child process: obey ``sync``, ``mirror PATH`` and ``quit`` lines, one JSON answer each.

    A ``sync`` that raises answers ``{"error": ...}`` and ends the process: a
    failed pass is never timed as a success.
    """
    from contend import cpu_seconds, peak_rss_mb

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    contender = WORKERS[spec["kind"]](spec)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "sync":
            cpu0, t0 = cpu_seconds(), time.perf_counter()
            try:
                contender.sync()
            except Exception as exc:
                print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
                os._exit(1)
            print(json.dumps({"seconds": time.perf_counter() - t0, "cpu": cpu_seconds() - cpu0,
                              "rss_mb": peak_rss_mb()}), flush=True)
        elif cmd == "mirror":
            Path(arg).write_text(json.dumps(contender.mirror()), encoding="utf-8")
            print(json.dumps({"ok": True}), flush=True)
        else:
            break
    close = getattr(contender, "close", None)
    if close is not None:
        close()
    os._exit(0)


# -- the parent side -------------------------------------------------------------------


class InProcess:
    """A worker child process driven over stdin/stdout."""

    def __init__(self, kind: str, threads: int, emu_host: str, fleet: Fleet, db: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
        spec = {"kind": kind, "threads": threads, "emu": emu_host, "fleet": fleet,
                "db": db.removeprefix("sqlite:///"), "db_url": db, "dir": str(self.dir)}
        self.kind = kind
        (self.dir / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        self.proc = subprocess.Popen([PYTHON, str(HERE / "fleet.py"), "worker",
                                      str(self.dir / "spec.json")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=HERE)
        self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            log = self.dir / "reconciler.log"  # ProjectFleet's stderr
            tail = ("\n" + "\n".join(log.read_text(encoding="utf-8").strip().splitlines()[-5:])
                    if log.exists() else "")
            raise SystemExit(f"bench: a fleet contender process ({self.kind}) died{tail}")
        return dict(json.loads(line))

    def _say(self, text: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return self._read()

    def sync(self) -> dict[str, Any]:
        got = self._say("sync")
        if "error" in got:
            raise SystemExit(f"bench: fleet contender {self.kind} failed a pass: {got['error']}")
        return got

    def mirror(self) -> Mirror:
        path = self.dir / "mirror.json"
        self._say(f"mirror {path}")
        return dict(json.loads(path.read_text(encoding="utf-8")))

    def close(self) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except OSError:  # it already ended (a failed pass)
            pass
        self.proc.wait(timeout=60)


def project_config(fleet: Fleet, db: str, tuned: bool) -> str:
    """A config for ``reconciler once``: one account per user (``subject`` = that user)."""
    lines = [f"[database]\nurl = {json.dumps(db)}\n"]
    if tuned:
        lines.append(f"[sync]\nconcurrency = {WIDTH}\n")
        lines.append(f"[quota]\nrequests_per_minute = {PROJECT_QUOTA}\n"
                     f"per_user_requests_per_minute = {USER_QUOTA}\n")
    users: dict[str, list[str]] = {}
    for user, cal in fleet:
        users.setdefault(user, []).append(cal)
    for k, (user, cals) in enumerate(users.items()):
        lines.append(f"[[accounts]]\nname = \"acct{k}\"\nsubject = {json.dumps(user)}\n"
                     f"calendars = {json.dumps(cals)}\n")
    return "\n".join(lines)


class OnceProcess:
    """``reconciler once`` as a fresh process per pass (start-up included in the time)."""

    def __init__(self, emu_host: str, fleet: Fleet, db: str, tuned: bool) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-once-"))
        self.config = self.dir / "reconciler.toml"
        self.config.write_text(project_config(fleet, db, tuned), encoding="utf-8")
        self.db = db
        self.env = {**os.environ, "GOOGLE_CALENDAR_EMULATOR_HOST": emu_host}
        self.env.pop("RECONCILER_DATABASE_URL", None)
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)  # installed packages run from cached bytecode

    def sync(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        proc = subprocess.run([PYTHON, "-m", "reconciler.cli", "-c", str(self.config), "once"],
                              capture_output=True, text=True, env=self.env, cwd=self.dir,
                              timeout=3600)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-3:])
            raise SystemExit(f"bench: reconciler once failed ({proc.returncode}):\n{tail}")
        return {"seconds": seconds}

    def mirror(self) -> Mirror:
        return mirror_of_store(self.db)

    def close(self) -> None:
        pass


def mirror_of_store(url: str) -> Mirror:
    """What the project mirrored, read straight from its database (SQLite or MariaDB)."""
    query = ("SELECT c.calendar_id, e.event_id, e.etag, e.status, e.summary FROM event e "
             "JOIN calendar c ON e.calendar_id = c.id")
    if url.startswith("sqlite"):
        conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"))
        rows = conn.execute(query).fetchall()
    else:
        import pymysql

        rest = url.split("://", 1)[1]
        hostpart = rest.rpartition("@")[2]
        hostport, _, name = hostpart.partition("/")
        host, _, port = hostport.partition(":")
        conn = pymysql.connect(host=host, port=int(port or 3306), user="root", database=name)
        with conn.cursor() as cur:
            cur.execute(query)
            rows = cur.fetchall()
    conn.close()
    out: Mirror = {}
    for cal, eid, etag, status, summary in rows:
        out.setdefault(cal, {})[eid] = [etag, status, summary or ""]
    return out


CONTENDERS = (
    ("project-default", "calendar-reconciler, defaults (`once`: concurrency 32, [quota] 6,000/500)"),
    ("project-tuned", f"calendar-reconciler, tuned (`once`, concurrency {WIDTH}, [quota] at "
                      f"Google's {PROJECT_QUOTA:,}/{USER_QUOTA})"),
    ("project-warm", "calendar-reconciler, warm process (`once`'s `Service.run_pass`, defaults; "
                     "start-up and calendar resolution excluded, like the raw loop's)"),
    ("raw-seq", "raw sequential loop"),
    ("raw-pool", f"raw loop, {WIDTH}-thread pool"),
    ("gcal", f"gcal-sync 8, semaphore {WIDTH}"),
)
PASSES = ("first sync", "no change", "burst")


def run_fleet(emu_factory: Callable[[], Any], verify: Callable[..., str | None], calendars: int,
              events: int, accounts: int, latency: Latency, out: list[str],
              only: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run every contender over a fresh, identical fleet; append the table to ``out``.

    ``emu_factory`` starts an emulator host (``run.Emu``); ``verify`` is
    ``run.verify`` (None when a mirror matches the truth).
    """
    fleet = make_fleet(calendars, accounts)
    by_user: dict[str, list[str]] = {}
    for user, cal in fleet:
        by_user.setdefault(user, []).append(cal)
    cals = [c for _, c in fleet]
    touched = edited(fleet)
    changes = len(touched) * sum(EDIT.values())
    per_user = {u: len(c) for u, c in by_user.items()}
    floors = {"first sync": floor(per_user, calendars * events, latency),
              "no change": floor(per_user, 0, latency),
              "burst": floor(per_user, len(touched) * (EDIT["updates"] + EDIT["deletes"]
                                                         + EDIT["inserts"]), latency)}
    results: dict[tuple[str, str], dict[str, Any]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="bench-fleetdb-"))
    for key, _ in CONTENDERS:
        if only and key not in only:
            continue
        print(f"bench: fleet {key} ...", file=sys.stderr, flush=True)
        emu = emu_factory()
        contender: Any = None
        try:
            for user, owned in by_user.items():
                emu.call("seed", calendars=owned, events=events, owner=user)
            emu.call("set_latency", fixed_ms=latency.fixed_ms, per_item_ms=latency.per_item_ms,
                     jitter_ms=latency.jitter_ms)
            db = f"sqlite:///{workdir}/{key}.sqlite"
            if key == "project-warm":  # concurrency and [quota] from the config, as project-default
                contender = InProcess("project", WIDTH, emu.host, fleet, db)
            elif key.startswith("project"):
                contender = OnceProcess(emu.host, fleet, db, tuned=key == "project-tuned")
            else:
                contender = InProcess("gcal" if key == "gcal" else "raw",
                                      1 if key == "raw-seq" else WIDTH, emu.host, fleet, db)
            emu.call("requests")
            for name in PASSES:
                if name == "burst":
                    emu.call("burst", calendars=touched, total=events, **EDIT)
                    emu.call("requests")
                got = contender.sync()
                got["requests"] = emu.call("requests")
                problem = verify(emu.truth(cals), contender.mirror(), etags=key != "gcal")
                got["ok"], got["problem"] = problem is None, problem
                if problem:
                    print(f"bench: fleet {key} {name}: mirrored wrongly: {problem}",
                          file=sys.stderr)
                results[(key, name)] = got
        finally:
            if contender is not None:
                contender.close()
            emu.close()
    for path in workdir.glob("*"):
        path.unlink()
    out.append(f"### 5. Fleet: {calendars:,} calendars x {events} events over {accounts} accounts, "
               f"latency {latency.label()}\n")
    out.append(f"Burst: {EDIT['updates']} edits, {EDIT['deletes']} deletion and {EDIT['inserts']} "
               f"new event in each of {len(touched)} calendars ({changes} changes). Floor: "
               f"{WIDTH} requests in flight, or the quota ({USER_QUOTA}/min per user, "
               f"{PROJECT_QUOTA:,}/min per project, sliding window) when a pass exceeds it. "
               "The `once` rows are a fresh `reconciler once` process each (start-up "
               "included); the warm project process, the raw loops and gcal-sync are "
               "long-lived processes timed around one pass (start-up excluded).\n")
    out.append("| pass | floor s | floor set by | contender | seconds | x floor | API requests "
               "| peak in flight | errors | correct |")
    out.append("|---|---:|---|---|---:|---:|---:|---:|---:|---|")
    names = dict(CONTENDERS)
    for name in PASSES:
        best, why = floors[name]
        for key, _ in CONTENDERS:
            r = results.get((key, name))
            if r is None:
                continue
            req = r["requests"]
            out.append(f"| {name} | {best:.2f} | {why} | {names[key]} | {r['seconds']:.2f} | "
                       f"{r['seconds'] / best:.2f}x | {req['total']} | {req['max_in_flight']} | "
                       f"{req['errors']} | "
                       f"{'yes' if r['ok'] else 'NO'} |")
    out.append("")
    return {"floors": floors, "results": results}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        worker(sys.argv[2])
    else:
        raise SystemExit("usage: fleet.py worker SPEC.json (run.py drives the fleet scenario)")
