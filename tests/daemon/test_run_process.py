"""``reconciler run`` as a subprocess: SIGTERM/SIGINT, SIGHUP reload, one run per SQLite file."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from reconciler.emulator import Emulator
from reconciler.store import calendars, open_store
from reconciler.store.models import Calendar
from tests.daemon.support import write_daemon_config
from tests.faults.support import Proc
from tests.helpers import (
    assert_mirror_exact,
    lists_of,
    mirror,
    reconciler_run,
    run_cli,
    timed,
    wait_for,
)

A = "alpha@group.calendar.google.com"
B = "beta@group.calendar.google.com"


def synced(calendar_id: str) -> bool:
    row = calendars.get_calendar(calendar_id)
    return row is not None and row.last_success is not None


def test_sigterm_to_the_group_commits_the_page_in_flight_and_exits_0(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    emu.add_calendar(A)
    for i in range(30):
        emu.insert_event(A, timed(f"e{i}", hour=i % 20, day=1 + i % 27))
    url = f"sqlite:///{tmp_path}/mirror.db"
    path = write_daemon_config(tmp_path, url, [{"name": "ops", "calendars": [A]}],
                               {"sync": {"interval": 60, "page_size": 10, "jitter": 0}})
    open_store(url)
    # The first two page requests of the first listing stall for 3 s each.
    emu.inject_fault(A, kind="stall", stall_seconds=3.0, methods=["events.list"], count=2)
    with reconciler_run(emu, path) as proc:
        # The first page is answered and the second is stalled inside events.list.
        wait_for(lambda: len(lists_of(emu, A)) >= 1 and emu.in_flight.current > 0, 10,
                 "the second page request in flight")
        asked = time.monotonic()
        os.killpg(proc.pid, signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
        took = time.monotonic() - asked
    assert proc.returncode == 0, err
    assert took < 15, took
    print(f"SIGTERM to exit: {took:.2f}s")
    assert "Traceback" not in err
    row = Calendar.get(Calendar.calendar_id == A)
    assert row.lease_owner is None and row.lease_expires is None  # leases released
    assert row.sync_token is None  # the listing did not finish: no cursor stored
    stored = len(mirror(A))
    assert stored in (10, 20), stored  # whole pages only: the page in flight was committed
    # The next process resumes and finishes exactly.
    assert run_cli(emu, "-c", str(path), "once").returncode == 0
    assert_mirror_exact(emu, A)


def test_sigint_exits_0_quickly_when_idle(calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    emu.add_calendar(A)
    url = f"sqlite:///{tmp_path}/mirror.db"
    path = write_daemon_config(tmp_path, url, [{"name": "ops", "calendars": [A]}],
                               {"sync": {"interval": 1}})
    open_store(url)
    with reconciler_run(emu, path) as proc:
        wait_for(lambda: synced(A), 10, "first pass")
        asked = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
        assert proc.returncode == 0 and time.monotonic() - asked < 3
    assert Calendar.select().where(Calendar.lease_owner.is_null(False)).count() == 0


def test_sighup_reloads_the_config_and_survives_a_bad_one(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    emu.add_calendar(A)
    emu.add_calendar(B)
    emu.insert_event(B, timed("in beta"))
    url = f"sqlite:///{tmp_path}/mirror.db"
    sections = {"sync": {"interval": 1}}
    path = write_daemon_config(tmp_path, url, [{"name": "ops", "calendars": [A]}], sections)
    open_store(url)
    with reconciler_run(emu, path) as proc:
        log = Proc(proc)  # stderr read as it comes, so the test can wait for a log line
        wait_for(lambda: synced(A), 10, "first pass")
        write_daemon_config(tmp_path, url, [{"name": "ops", "calendars": [A, B]}], sections)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: synced(B), 8, "the calendar added by the reload")
        assert_mirror_exact(emu, B)
        path.write_text(path.read_text() + "\n[sync]\nintervall = 3\n")  # broken TOML
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: log.count("config reload failed"), 10, "the failed reload logged")
        seen = len(lists_of(emu, A))
        wait_for(lambda: len(lists_of(emu, A)) >= seen + 2, 10, "polls after the failed reload")
        assert proc.poll() is None  # still running, polling
        proc.send_signal(signal.SIGTERM)
        err = log.finish(20)
    assert proc.returncode == 0
    errors = [line for line in err.splitlines() if "config reload failed" in line]
    assert len(errors) == 1 and "ERROR" in errors[0]
    assert "Traceback" not in err


def test_second_run_on_one_sqlite_file_is_refused(calendar_emulator: Emulator,
                                                 tmp_path: Path) -> None:
    emu = calendar_emulator
    emu.add_calendar(A)
    url = f"sqlite:///{tmp_path}/mirror.db"
    path = write_daemon_config(tmp_path, url, [{"name": "ops", "calendars": [A]}],
                               {"sync": {"interval": 5}})
    open_store(url)
    with reconciler_run(emu, path) as proc:
        wait_for(lambda: synced(A), 10, "first pass")
        second = run_cli(emu, "-c", str(path), "run", timeout=30)
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "only one run per SQLite file" in lines[0], second.stderr
        assert f"pid {proc.pid}" in lines[0]
        assert proc.poll() is None  # the first one is untouched
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
        assert proc.returncode == 0
    # Once the first is gone (even killed), the lock is free again.
    with reconciler_run(emu, path) as proc:
        wait_for(lambda: len(lists_of(emu, A)) >= 2, 10, "a pass by the new process")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    polled = len(lists_of(emu, A))
    with reconciler_run(emu, path) as proc:
        # It got the lock: it polls (a refused run would exit 1 before any request).
        wait_for(lambda: len(lists_of(emu, A)) > polled or proc.poll() is not None, 15,
                 "a pass by the third process")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
        assert proc.returncode == 0
