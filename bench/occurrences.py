"""What the occurrence table costs: the same syncs with ``[store] occurrences`` on and off.

One calendar holds ``--series`` recurring series (half weekly, half daily, open-ended,
in Europe/Berlin, started 60 days ago) and ``--singles`` single events spread over
the window, each ~1.7 KB of JSON (``data.make_event``). For each setting, on a fresh
SQLite file (``--mysql``: a fresh MariaDB database too), the project's own
``Service`` (what ``once`` and ``run`` use) runs, timed one step at a time:

* the full sync (first pass);
* a no-change poll (seconds and SQL statements);
* an incremental page that edits one series (its title);
* the daily roll: the next pass with the clock one day later.

Off and on run alternately, ``--repeat`` times; the table shows medians. The
emulator serves in-process over loopback HTTP (the same for both settings).

    .venv/bin/python bench/occurrences.py                # 2,000 series + 20,000 singles
    .venv/bin/python bench/occurrences.py --series 200 --singles 2000 --repeat 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import data
from playhouse.test_utils import count_queries

from reconciler import engine
from reconciler.config import load_config
from reconciler.emulator import Emulator
from reconciler.emulator.server import running_emulator
from reconciler.service import Service
from reconciler.store import open_store

CAL = "team@group.calendar.google.com"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _z(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def seed(emu: Emulator, series: int, singles: int) -> list[str]:
    """The calendar's events; returns the series ids."""
    emu.add_calendar(CAL, owners=["user@example.com"])
    first = NOW.replace(hour=0, minute=0, second=0) - dt.timedelta(days=60)
    batch: list[dict[str, Any]] = []
    ids = []
    for n in range(series + singles):
        event = data.make_event(CAL, n)
        if n < series:
            start = first + dt.timedelta(hours=7 + n % 11, minutes=30 * (n % 2),
                                         days=n % 7)
            event["recurrence"] = ["RRULE:FREQ=WEEKLY" if n % 2 else "RRULE:FREQ=DAILY"]
            ids.append(event["id"])
        else:
            start = first + dt.timedelta(minutes=37 * (n - series) * 30 % (460 * 24 * 60))
        end = start + dt.timedelta(minutes=30 + 30 * (n % 3))
        event["start"] = {"dateTime": _z(start), "timeZone": "Europe/Berlin"}
        event["end"] = {"dateTime": _z(end), "timeZone": "Europe/Berlin"}
        batch.append(event)
        if len(batch) == 5000:
            emu.seed_raw(CAL, batch)
            batch = []
    emu.seed_raw(CAL, batch)
    return ids


WINDOW = {"past": 30, "future": 400}


def _config(folder: Path, url: str, emu: Emulator, occurrences: bool) -> Any:
    path = folder / f"{secrets.token_hex(4)}.toml"
    path.write_text("\n".join([
        "[database]", f"url = {json.dumps(url)}", "",
        "[sync]", "page_size = 2500", "",
        "[store]", f"occurrences = {'true' if occurrences else 'false'}",
        f"occurrences_past_days = {WINDOW['past']}", f"occurrences_future_days = {WINDOW['future']}",
        "",
        "[[accounts]]", 'name = "ops"', f"calendars = [{json.dumps(CAL)}]", ""]))
    config = load_config(path, env={"GOOGLE_CALENDAR_EMULATOR_HOST": emu.host})
    open_store(config.database.url)
    return config


def _timed(step: Any) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def one_run(emu: Emulator, url: str, occurrences: bool, series_ids: list[str],
            folder: Path) -> dict[str, float]:
    """Every step once, on an empty database at ``url``."""
    svc = Service(_config(folder, url, emu, occurrences))
    out: dict[str, float] = {}
    try:
        rows, _ = svc.resolve_calendars()

        def sync() -> None:
            report = svc.run_pass(rows)
            assert report.ok, report.failures

        out["full"] = _timed(sync)
        sync()  # warm: the account is known to be fine
        with count_queries() as counter:
            out["poll"] = _timed(sync)
        out["poll_statements"] = counter.count
        target = series_ids[len(series_ids) // 2]
        emu.patch_event(CAL, target, {"summary": f"edited {secrets.token_hex(2)}"})
        out["edit"] = _timed(sync)
        real = engine.utcnow
        engine.utcnow = lambda: real() + dt.timedelta(days=1)  # type: ignore[assignment]
        try:
            out["roll"] = _timed(sync)
        finally:
            engine.utcnow = real  # type: ignore[assignment]
        db = open_store(url, run_migrations=False)
        out["rows"] = db.execute_sql("SELECT COUNT(*) FROM occurrence").fetchone()[0]
    finally:
        svc.close()
    return out


def _mysql_url() -> Any:
    from playhouse.db_url import connect

    name = f"bench_occ_{secrets.token_hex(4)}"
    admin = connect("mysql://root@127.0.0.1:3306/mysql")
    admin.execute_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    return admin, name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--singles", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--past-days", type=int, default=30)
    parser.add_argument("--future-days", type=int, default=400)
    parser.add_argument("--mysql", action="store_true", help="also on MariaDB (root@127.0.0.1)")
    args = parser.parse_args()
    WINDOW.update(past=args.past_days, future=args.future_days)
    engines = ["sqlite"] + (["mysql"] if args.mysql else [])
    results: dict[tuple[str, bool], list[dict[str, float]]] = {}
    with running_emulator() as emu, tempfile.TemporaryDirectory() as tmp:
        series_ids = seed(emu, args.series, args.singles)
        for n in range(args.repeat):
            for kind in engines:
                for occurrences in ((False, True) if n % 2 == 0 else (True, False)):
                    admin = None
                    if kind == "sqlite":
                        url = f"sqlite:///{tmp}/{secrets.token_hex(4)}.db"
                    else:
                        admin, name = _mysql_url()
                        url = f"mysql://root@127.0.0.1:3306/{name}"
                    try:
                        got = one_run(emu, url, occurrences, series_ids, Path(tmp))
                    finally:
                        if admin is not None:
                            admin.execute_sql(f"DROP DATABASE IF EXISTS {name}")
                    results.setdefault((kind, occurrences), []).append(got)
                    print(kind, "on" if occurrences else "off", got, file=sys.stderr)
    print(f"\n{args.series} series (half weekly, half daily, open-ended) + {args.singles} "
          f"single events, one calendar; window {args.past_days} days back, "
          f"{args.future_days} ahead; medians of {args.repeat}\n")
    print("| engine | occurrences | rows | full sync s | no-change poll s | poll statements "
          "| edit one series s | daily roll s |")
    print("|---|---|---|---|---|---|---|---|")
    for (kind, occurrences), runs in sorted(results.items()):
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"| {kind} | {'on' if occurrences else 'off'} | {int(med['rows'])} "
              f"| {med['full']:.2f} | {med['poll']:.3f} | {int(med['poll_statements'])} "
              f"| {med['edit']:.3f} | {med['roll']:.3f} |")
    for kind in engines:
        off = statistics.median(r["full"] for r in results[(kind, False)])
        on = statistics.median(r["full"] for r in results[(kind, True)])
        print(f"\n{kind}: occurrences add {100 * (on - off) / off:+.0f}% to the full sync")


if __name__ == "__main__":
    main()
