"""One cause, one line: Google unreachable (every connection dropped) is one WARNING for the
fleet and one INFO when a pass gets through again, not a line per calendar per attempt
(three calendars failing for 30 s logged 13 WARNING lines before), nor a second line from
the calendar-set refresh's ``calendarList`` read of a discovering account."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from tests.daemon.support import load, running_daemon, write_daemon_config
from tests.daemon.test_daemon import group, synced
from tests.helpers import wait_for


@pytest.mark.parametrize("discover", [False, True], ids=["listed", "discovered"])
def test_google_unreachable_is_one_line_for_the_fleet(
        calendar_emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        discover: bool) -> None:
    emu = calendar_emulator
    mine = [group(f"u{i}") for i in range(3)]
    for cid in mine:
        emu.add_calendar(cid, owners=["user@example.com"])
    account = {"name": "ops", "discover": True} if discover else {"name": "ops", "calendars": mine}
    path = write_daemon_config(tmp_path, f"sqlite:///{tmp_path}/m.db", [account],
                               {"sync": {"interval": 1, "jitter": 0}})
    config = load(emu, path)
    caplog.set_level(logging.DEBUG, logger="reconciler.daemon")

    def attempts() -> int:
        return sum("Google unreachable; next attempt" in r.getMessage() for r in caplog.records)

    with running_daemon(config):
        wait_for(lambda: synced(*mine), 10, "first passes")
        emu.inject_fault(None, kind="drop", count=None)  # every request: connection dropped
        wait_for(lambda: attempts() >= 6, 60, "six failed attempts over three calendars")
        if discover:  # the calendar set is refreshed every interval: calendarList fails too
            listed = len([r for r in emu.request_log if r.method == "calendarList.list"])
            wait_for(lambda: len([r for r in emu.request_log
                                  if r.method == "calendarList.list"]) > listed + 1, 30,
                     "two calendar-set refreshes during the outage")
        emu.faults.clear()
        wait_for(lambda: any("reachable again" in r.getMessage() for r in caplog.records), 60,
                 "a pass through again")
    lines = [(r.levelname, r.getMessage()) for r in caplog.records
             if r.levelno >= logging.INFO and r.name == "reconciler.daemon"
             and "calendar(s) scheduled" not in r.getMessage()
             and not r.getMessage().startswith("run: stop")]
    assert len(lines) == 2, lines
    (warned, warning), (told, recovery) = lines
    assert warned == "WARNING"
    assert warning.startswith("Google Calendar API unreachable: connection problem: "), warning
    assert warning.endswith("; passes retry with backoff")
    assert told == "INFO" and recovery.startswith("Google Calendar API reachable again after ")
    assert recovery.endswith(" calendar(s) resume"), recovery
