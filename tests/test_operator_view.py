"""The operator's view through the real CLI: progress, JSON log fields, quiet polls,
the heartbeat, ``config check`` and syncs in flight (issue 11, items 1, 3 and 4)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import Emulator
from reconciler.store.readonly import inspect_database
from tests.daemon.support import load, running_daemon, write_daemon_config
from tests.faults.support import Proc
from tests.helpers import REPO, emulator_env, run_cli, wait_for, write_config

TEAM = "team@group.calendar.google.com"
GONE = "gone@group.calendar.google.com"


def seed(emu: Emulator, calendar_id: str, count: int) -> None:
    emu.add_calendar(calendar_id, summary="Team", owners=["user@example.com"])
    emu.seed_raw(calendar_id, [{
        "kind": "calendar#event", "etag": f'"{n}"', "id": f"evt{n:05d}", "status": "confirmed",
        "updated": "2025-01-01T00:00:00.000Z", "summary": f"event {n}",
        "start": {"dateTime": "2025-01-01T10:00:00Z"}, "end": {"dateTime": "2025-01-01T11:00:00Z"},
    } for n in range(count)])


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every stderr line parsed as JSON (fails on a line that is not JSON)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@contextmanager
def cli_process(emu: Emulator, *args: str) -> Iterator[Proc]:
    """``reconciler ARGS`` as a subprocess whose stderr is read while it runs."""
    popen = subprocess.Popen([sys.executable, "-m", "reconciler.cli", *args],
                             env={**os.environ, **emulator_env(emu)}, cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    proc = Proc(popen)
    try:
        yield proc
    finally:
        if proc.alive():
            popen.terminate()
        proc.finish(30)


# -- once ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_progress_lines_appear_while_a_stalled_multi_page_sync_runs(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    seed(calendar_emulator, TEAM, 60)
    # Every page stalls 3 s: 6 pages take 18 s, so a line every 10 s must come mid-sync.
    calendar_emulator.inject_fault(TEAM, kind="stall", stall_seconds=3.0, methods=["events.list"],
                                   count=None)
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'm.db'}", sync={"page_size": 10})
    with cli_process(calendar_emulator, "-c", str(path), "once") as proc:
        wait_for(lambda: proc.count(f"{TEAM}: page ") or not proc.alive(), 60, "a progress line")
        assert proc.alive(), f"the sync ended before any progress line:\n{proc.log}"
        line = next(x for x in proc.log.splitlines() if f"{TEAM}: page " in x)
        assert "INFO reconciler.progress" in line and " events, " in line and "/s" in line
        wait_for(lambda: not proc.alive(), 60, "once to finish")
    assert proc.popen.returncode == 0, proc.log
    last = proc.log.strip().splitlines()[-1]
    assert last.startswith("synced 1 calendar, 0 failed; 60 created, 0 updated, 0 deleted; ")


def test_once_json_lines_carry_the_fields(calendar_emulator: Emulator, tmp_path: Path) -> None:
    seed(calendar_emulator, TEAM, 3)
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'm.db'}",
                        accounts=[{"name": "ops", "calendars": [TEAM, GONE]}])
    result = run_cli(calendar_emulator, "-c", str(path), "once", "--log-format", "json",
                     "--verify")
    assert result.returncode == 1, result.stderr
    lines = json_lines(result.stderr)
    synced = [x for x in lines if x["event"] == "synced"]
    assert [(x["calendar"], x["account"], x["created"], x["updated"], x["deleted"])
            for x in synced] == [(TEAM, "ops", 3, 0, 0)]
    assert synced[0]["level"] == "INFO" and synced[0]["mode"] == "full"
    assert {"requests", "seconds"} <= set(synced[0])
    failed = [x for x in lines if x["event"] == "sync failed"]
    assert len(failed) == 1 and failed[0]["calendar"] == GONE and failed[0]["account"] == "ops"
    assert failed[0]["error_kind"] == "CalendarNotFound" and failed[0]["level"] == "ERROR"
    summary = lines[-1]
    assert summary["event"].startswith("synced 1 calendar, 1 failed; 3 created")
    assert (summary["calendars"], summary["failed"], summary["created"]) == (1, 1, 3)
    assert {"updated", "deleted", "requests", "seconds"} <= set(summary)


def test_once_text_mode_keeps_the_reconciler_lines_and_ends_with_the_summary(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    seed(calendar_emulator, TEAM, 2)
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'm.db'}",
                        accounts=[{"name": "ops", "calendars": [TEAM, GONE]}])
    result = run_cli(calendar_emulator, "-c", str(path), "once")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert [x for x in lines if x.startswith("reconciler: ")] == [
        x for x in lines if x.startswith(f"reconciler: {GONE}: ")]
    assert lines[-1].startswith("synced 1 calendar, 1 failed; 2 created, 0 updated, 0 deleted; ")
    quiet = run_cli(calendar_emulator, "-c", str(path), "once", "--calendar", TEAM,
                    "--log-level", "warning")
    assert quiet.returncode == 0 and quiet.stderr == ""


# -- run ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_run_logs_changes_at_info_quiet_polls_at_debug_and_failures_with_their_kind(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    seed(calendar_emulator, TEAM, 2)
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'm.db'}",
                        accounts=[{"name": "ops", "calendars": [TEAM, GONE]}],
                        sync={"interval": 1, "jitter": 0})
    with cli_process(calendar_emulator, "-c", str(path), "run", "--log-format", "json",
                     "--log-level", "debug") as proc:
        wait_for(lambda: proc.count('"event": "synced"') >= 3 or not proc.alive(), 60,
                 "three passes")
    lines = json_lines(proc.log)
    synced = [x for x in lines if x["event"] == "synced"]
    assert synced[0]["created"] == 2 and synced[0]["level"] == "INFO"
    quiet = synced[1:]
    assert quiet and all(x["created"] + x["updated"] + x["deleted"] == 0 for x in quiet)
    assert {x["level"] for x in quiet} == {"DEBUG"}
    assert all(x["calendar"] == TEAM and x["account"] == "ops" and x["mode"] == "incremental"
               and {"requests", "seconds"} <= set(x) for x in quiet)
    failures = [x for x in lines if x.get("calendar") == GONE and x["level"] == "WARNING"]
    assert failures and failures[0]["error_kind"] == "CalendarNotFound"
    assert failures[0]["account"] == "ops"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_run_heartbeat_once_a_minute_counts_polls_changes_and_failing(
        calendar_emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    seed(calendar_emulator, TEAM, 2)
    path = write_daemon_config(tmp_path, f"sqlite:///{tmp_path / 'm.db'}",
                               [{"name": "ops", "calendars": [TEAM, GONE]}])
    clock = FakeClock()
    caplog.set_level(logging.DEBUG, logger="reconciler")

    def beats() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "polled" in r.getMessage()]

    with running_daemon(load(calendar_emulator, path), clock=clock) as daemon:
        wait_for(lambda: daemon.heartbeat._polls >= 2, 30, "both calendars polled")
        assert not daemon.beat() and not beats(), "no beat before a minute passed"
        clock.now += 60
        wait_for(beats, 10, "the heartbeat line")
        assert not daemon.beat(), "one beat per minute"
    [beat] = beats()
    assert beat.levelno == logging.INFO
    assert beat.getMessage() == "2 calendars polled, 2 changes, 1 failing"
    assert beat.__dict__["failing_kinds"] == {"CalendarNotFound": 1}


# -- config check -----------------------------------------------------------------------------

def test_config_check_exit_statuses_and_it_creates_nothing(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    seed(calendar_emulator, TEAM, 1)
    db = tmp_path / "m.db"
    path = write_config(tmp_path, f"sqlite:///{db}")
    fresh = run_cli(calendar_emulator, "-c", str(path), "config", "check")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    lines = fresh.stdout.strip().splitlines()
    assert lines[0].startswith(f"config {path}: ok (1 account, 1 configured calendar")
    assert lines[1] == (f"database {db}: does not exist yet (the first `reconciler once`, "
                        "`run` or `init-db` creates it)")
    assert lines[2].startswith("account ops: ok") and len(lines) == 3
    assert not db.exists(), "config check created the database"
    assert not [r for r in calendar_emulator.request_log if r.method == "events.list"]

    assert run_cli(calendar_emulator, "-c", str(path), "once").returncode == 0
    before = db.stat().st_mtime_ns
    synced = run_cli(calendar_emulator, "-c", str(path), "config", "check", "--skip-credentials")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    version = inspect_database(f"sqlite:///{db}").version
    assert version and f"database {db}: exists, schema {version} (up to date)" in synced.stdout
    assert db.stat().st_mtime_ns == before

    down = write_config(tmp_path, "mysql://root@127.0.0.1:1/nothing_here")
    failing = run_cli(calendar_emulator, "-c", str(down), "config", "check")
    assert failing.returncode == 1
    assert any(x.startswith("database: cannot open database mysql://root@127.0.0.1:1/")
               for x in failing.stdout.splitlines())
    assert "account ops: ok" in failing.stdout, "the other checks still run"

    bad = tmp_path / "bad.toml"
    bad.write_text("[sync]\ninterval = 0\nbogus = 1\n", encoding="utf-8")
    usage = run_cli(calendar_emulator, "-c", str(bad), "config", "check")
    assert usage.returncode == 2 and usage.stdout == ""
    problems = usage.stderr.strip().splitlines()
    assert len(problems) >= 2 and all(x.startswith("reconciler: error: ") for x in problems)


# -- status: syncs in flight --------------------------------------------------------------------

def test_status_shows_syncs_in_flight_with_owner_and_since(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    from freezegun import freeze_time

    from reconciler.store import calendars, leases, open_store

    seed(calendar_emulator, TEAM, 1)
    db = f"sqlite:///{tmp_path / 'm.db'}"
    path = write_config(tmp_path, db)
    assert run_cli(calendar_emulator, "-c", str(path), "once").returncode == 0
    idle = run_cli(calendar_emulator, "-c", str(path), "status")
    assert "syncing" not in idle.stdout
    open_store(db)
    [row] = calendars.all_calendars()
    with freeze_time("2030-01-01 12:00:00"):  # the lease outlives the test by years
        assert leases.claim(row.id, "elsewhere:4242:cafe", 60)
    shown = run_cli(calendar_emulator, "-c", str(path), "status")
    assert shown.returncode == 0, shown.stderr
    [line] = [x for x in shown.stdout.splitlines() if x.startswith(f"{TEAM} (account ops)")]
    assert line.endswith("since 2030-01-01 12:00:00Z, by elsewhere:4242:cafe")
    assert "1 syncing now" in shown.stdout.splitlines()[0]
    [as_json] = [json.loads(x) for x in run_cli(calendar_emulator, "-c", str(path), "status",
                                                "--json").stdout.splitlines()]
    assert as_json["syncing"] is True and as_json["lease_since"] == "2030-01-01T12:00:00Z"
    assert as_json["lease_owner"] == "elsewhere:4242:cafe"
