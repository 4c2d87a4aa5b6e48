"""One contender in its own process: sync, time it, and dump what it mirrored.

``python bench/contend.py SPEC.json`` runs the steps of SPEC against the
emulator at ``spec["emu"]`` and prints one JSON line per step. A separate
process per contender keeps peak RSS and CPU time its own. Correctness is not
judged here: the contender writes what it mirrored to ``spec["mirror_out"]``
after the timed steps, and ``run.py`` compares that with the emulator's truth.

Contenders:

* ``project``: :class:`reconciler.service.Service` (what ``once``/``run`` use);
* ``raw``: google-api-python-client paging ``events.list(maxResults=2500,
  showDeleted=True)``, one bare ``executemany`` per page, commit per page;
* ``gcal``: gcal-sync 8.x ``CalendarEventSyncManager`` with its in-memory store.

Steps: ``full`` (first sync), ``steady`` (a pass where nothing changed),
``burst`` (change events through the emulator's control API, untimed, then an
incremental pass).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import data

Mirror = dict[str, dict[str, list[str]]]


def control(host: str, op: str, body: Any = None) -> Any:
    """Call the emulator's control API (setup and request counting; never timed)."""
    payload = json.dumps(body or {}).encode()
    req = urllib.request.Request(f"http://{host}/_emulator/{op}", data=payload, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.loads(resp.read() or b"{}")


def api_requests(host: str) -> int:
    """API requests served since the last call, then forget them."""
    with urllib.request.urlopen(f"http://{host}/_emulator/requests", timeout=600) as resp:
        count = len(json.loads(resp.read()))
    control(host, "clear_request_log")
    return count


def peak_rss_mb() -> float:
    """This process's peak resident set so far, in MiB.

    ``VmHWM`` belongs to this process image; ``ru_maxrss`` would not do: Linux
    carries it across fork and exec, so a child started by a big parent
    reports the parent's peak.
    """
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User plus system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def apply_burst(host: str, burst: dict[str, Any]) -> None:
    """Change events of the burst calendar through the control API (same shape as emuhost)."""
    cal, total = burst["calendar"], burst["total"]
    updates, deletes, inserts = burst["updates"], burst["deletes"], burst["inserts"]
    step = max(1, total // max(1, updates + deletes))
    picks = list(range(0, total, step))[:updates + deletes]
    batch = [data.make_event(cal, n, 1) for n in picks[:updates]]
    batch += [data.cancelled_stub(n, 1) for n in picks[updates:]]
    batch += [data.make_event(cal, total + k) for k in range(inserts)]
    batch.sort(key=lambda r: r["id"])
    control(host, "seed_raw", {"calendar_id": cal, "resources": batch})


# -- the project ----------------------------------------------------------------


class Project:
    """This project, driven in-process through ``Service`` as ``once`` drives it."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from reconciler.config import parse_config
        from reconciler.process import tune_for_sync
        from reconciler.service import Service
        from reconciler.store import open_store

        tune_for_sync()  # as the `reconciler` command does at start
        env = {"GOOGLE_CALENDAR_EMULATOR_HOST": spec["emu"]}
        cals = json.dumps(spec["calendars"])
        text = (f'[database]\nurl = {json.dumps(spec["db"])}\n\n[sync]\n'
                f'concurrency = {spec.get("concurrency", 4)}\npage_size = 2500\n\n'
                f'[[accounts]]\nname = "bench"\ncalendars = {cals}\n')
        workdir = Path(tempfile.mkdtemp(prefix="bench-project-"))
        self.config = parse_config(text, path=workdir / "reconciler.toml", env=env)
        self.db = open_store(self.config.database.url)
        self.statements = 0
        self.transactions = 0
        self._count_sql()
        self.service = Service(self.config)
        self.rows: list[Any] = []

    def _count_sql(self) -> None:
        execute_sql: Callable[..., Any] = self.db.execute_sql
        begin: Callable[..., Any] = self.db.begin

        def counted_execute(*args: Any, **kwargs: Any) -> Any:
            self.statements += 1
            return execute_sql(*args, **kwargs)

        def counted_begin(*args: Any, **kwargs: Any) -> Any:
            self.transactions += 1
            return begin(*args, **kwargs)

        self.db.execute_sql = counted_execute
        self.db.begin = counted_begin

    def sync(self) -> None:
        """One pass over every calendar (resolving the set once per process, as ``run`` does)."""
        if not self.rows:
            self.rows, failures = self.service.resolve_calendars()
            if failures:
                raise SystemExit(f"resolve failed: {failures[0].message}")
        report = self.service.run_pass(self.rows)
        if not report.ok:
            raise SystemExit(f"pass failed: {report.failures[0].subject}: {report.failures[0].message}")

    def change_rows(self) -> int:
        """Rows in the change feed (read outside the timed part)."""
        from reconciler.store.models import Change

        return int(Change.select().count())

    def mirror(self) -> Mirror:
        from reconciler.store.models import Calendar, Event

        out: Mirror = {}
        query = (Event.select(Calendar.calendar_id, Event.event_id, Event.etag, Event.status,
                              Event.summary).join(Calendar).tuples())
        for cal, eid, etag, status, summary in query.iterator():
            out.setdefault(cal, {})[eid] = [etag, status, summary or ""]
        return out

    def close(self) -> None:
        self.service.close()


# -- the raw sequential loop ----------------------------------------------------------


class RawLoop:
    """The baseline: page through events.list and executemany each page, one calendar at a time."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from google.auth.credentials import AnonymousCredentials
        from googleapiclient.discovery import build

        self.calendars: list[str] = spec["calendars"]
        self.service = build("calendar", "v3", credentials=AnonymousCredentials(),
                             static_discovery=True, cache_discovery=False,
                             client_options={"api_endpoint": f"http://{spec['emu']}/calendar/v3/"})
        url: str = spec["db"]
        self.statements = 0
        self.transactions = 0
        if url.startswith("sqlite"):
            import sqlite3

            self.conn: Any = sqlite3.connect(url.split(":///", 1)[1])
            self.conn.execute("PRAGMA journal_mode=wal")
            self.conn.execute("PRAGMA synchronous=normal")
            self.ph = "?"
            raw_type, key_type = "TEXT", "TEXT"
            self.upsert = ("INSERT OR REPLACE INTO raw_event (calendar, id, etag, status, updated, raw)"
                           " VALUES (?, ?, ?, ?, ?, ?)")
            self.save_token = "INSERT OR REPLACE INTO raw_state (calendar, token) VALUES (?, ?)"
        else:
            import pymysql

            rest = url.split("://", 1)[1]
            cred, _, hostpart = rest.rpartition("@")
            hostport, _, name = hostpart.partition("/")
            host, _, port = hostport.partition(":")
            self.conn = pymysql.connect(host=host, port=int(port or 3306), user=cred.split(":")[0],
                                        database=name, charset="utf8mb4", autocommit=False)
            self.ph = "%s"
            raw_type, key_type = "LONGTEXT", "VARCHAR(255)"
            self.upsert = (
                "INSERT INTO raw_event (calendar, id, etag, status, updated, raw) VALUES "
                "(%s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE etag = VALUES(etag), "
                "status = VALUES(status), updated = VALUES(updated), raw = VALUES(raw)")
            self.save_token = ("INSERT INTO raw_state (calendar, token) VALUES (%s, %s) "
                               "ON DUPLICATE KEY UPDATE token = VALUES(token)")
        cur = self.conn.cursor()
        cur.execute(f"CREATE TABLE IF NOT EXISTS raw_event (calendar {key_type} NOT NULL, "
                    f"id {key_type} NOT NULL, etag {key_type}, status {key_type}, "
                    f"updated {key_type}, raw {raw_type}, PRIMARY KEY (calendar, id))")
        cur.execute(f"CREATE TABLE IF NOT EXISTS raw_state (calendar {key_type} PRIMARY KEY, "
                    "token TEXT)")
        self.conn.commit()
        self.tokens: dict[str, str] = {}

    def sync(self) -> None:
        """Every calendar in turn; the sync token is saved with the last page."""
        events = self.service.events()
        cur = self.conn.cursor()
        for cal in self.calendars:
            token = self.tokens.get(cal)
            page_token = None
            while True:
                params: dict[str, Any] = {"calendarId": cal, "maxResults": 2500, "showDeleted": True}
                if token:
                    params["syncToken"] = token
                if page_token:
                    params["pageToken"] = page_token
                page = events.list(**params).execute()
                rows = [(cal, item["id"], item.get("etag"), item.get("status"), item.get("updated"),
                         json.dumps(item)) for item in page.get("items", [])]
                if rows:
                    cur.executemany(self.upsert, rows)
                    self.statements += 1
                page_token = page.get("nextPageToken")
                if not page_token:
                    self.tokens[cal] = page["nextSyncToken"]
                    cur.execute(self.save_token, (cal, page["nextSyncToken"]))
                    self.statements += 1
                self.conn.commit()
                self.transactions += 1
                if not page_token:
                    break

    def mirror(self) -> Mirror:
        out: Mirror = {}
        cur = self.conn.cursor()
        cur.execute("SELECT calendar, id, etag, status, raw FROM raw_event")
        for cal, eid, etag, status, raw in cur.fetchall():
            out.setdefault(cal, {})[eid] = [etag, status, json.loads(raw).get("summary", "")]
        return out

    def close(self) -> None:
        self.conn.close()


# -- gcal-sync ------------------------------------------------------------------------


class GcalSync:
    """gcal-sync's CalendarEventSyncManager per calendar, in-memory store, same concurrency."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import asyncio

        self.loop = asyncio.new_event_loop()
        self.calendars: list[str] = spec["calendars"]
        self.concurrency = int(spec.get("concurrency", 4))
        self.host = f"http://{spec['emu']}/calendar/v3"
        self.managers: dict[str, Any] = {}
        self.session: Any = None
        self.statements = 0
        self.transactions = 0

    async def _sync(self) -> None:
        import asyncio

        import aiohttp
        from gcal_sync.api import GoogleCalendarService
        from gcal_sync.auth import AbstractAuth
        from gcal_sync.sync import CalendarEventSyncManager

        class Auth(AbstractAuth):
            async def async_get_access_token(self) -> str:
                return "anonymous"

        if self.session is None:
            self.session = aiohttp.ClientSession()
            api = GoogleCalendarService(Auth(self.session, host=self.host))
            self.managers = {c: CalendarEventSyncManager(api, calendar_id=c) for c in self.calendars}
        gate = asyncio.Semaphore(self.concurrency)

        async def one(cal: str) -> None:
            async with gate:
                await self.managers[cal].run()

        await asyncio.gather(*(one(c) for c in self.calendars))

    def sync(self) -> None:
        self.loop.run_until_complete(self._sync())

    def mirror(self) -> Mirror:
        out: Mirror = {}
        for cal, manager in self.managers.items():
            stored = self.loop.run_until_complete(manager._store.async_load()) or {}
            out[cal] = {eid: ["", item.get("status") or "confirmed", item.get("summary") or ""]
                        for eid, item in (stored.get("items") or {}).items()}
        return out

    def close(self) -> None:
        if self.session is not None:
            self.loop.run_until_complete(self.session.close())
        self.loop.close()


CONTENDERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "project": Project, "raw": RawLoop, "gcal": GcalSync}


def main() -> None:
    """Run the steps of the spec file named on the command line."""
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    if spec.get("profile"):
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.002)
    contender = CONTENDERS[spec["who"]](spec)
    host = spec["emu"]
    api_requests(host)
    for step in spec["steps"]:
        if step == "burst":
            apply_burst(host, spec["burst"])
            api_requests(host)
        changes = contender.change_rows() if hasattr(contender, "change_rows") else None
        statements, transactions = contender.statements, contender.transactions
        profiling = spec.get("profile") == step
        if profiling:
            profiler.start()
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        contender.sync()
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        if profiling:
            profiler.stop()
            Path(spec["profile_out"]).write_text(profiler.output_text(unicode=True, color=False),
                                                 encoding="utf-8")
        print(json.dumps({"step": step, "seconds": seconds, "cpu": cpu, "rss_mb": peak_rss_mb(),
                          "requests": api_requests(host),
                          "statements": contender.statements - statements,
                          "transactions": contender.transactions - transactions,
                          "changes": None if changes is None else contender.change_rows() - changes}),
              flush=True)
    with open(spec["mirror_out"], "w", encoding="utf-8") as handle:
        json.dump(contender.mirror(), handle)
    contender.close()
    os._exit(0)  # skip interpreter teardown of large heaps; results are flushed


if __name__ == "__main__":
    main()
