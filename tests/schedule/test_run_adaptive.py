"""``run`` with ``[sync] schedule = "adaptive"``: the busy calendar is polled more often,
idle ones sit at ``max_interval``, and a quota-limited run logs no scheduler warnings.

Real HTTP to the emulator, a real SQLite database, an in-process daemon;
waits for events in the database, never fixed sleeps.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from reconciler.schedule.allocate import RUNGS
from reconciler.store import calendars
from reconciler.store import schedule as rows
from tests.daemon.support import load, running_daemon, write_daemon_config
from tests.helpers import wait_for
from tests.schedule.listing import raw_event

BUSY = "busy@group.calendar.google.com"
IDLE = [f"idle{n}@group.calendar.google.com" for n in range(5)]
RUNG = 2 ** (1 / RUNGS)  # one step of the planned intervals' ladder


def _event(n: int) -> dict[str, object]:
    return {"summary": f"e{n}", "start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"}}


@pytest.mark.slow
def test_adaptive_run_polls_the_busy_calendar_more_often_without_scheduler_warnings(
        calendar_emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    emu = calendar_emulator
    for cid in [BUSY, *IDLE]:
        emu.add_calendar(cid, summary=cid, owners=["user@example.com"])
        emu.insert_event(cid, _event(0))
    # 6 calendars every 2 s would be 180 a minute; the quota allows 120: the
    # bucket and the plan must agree on 2 a second without APScheduler complaints.
    path = write_daemon_config(
        tmp_path, f"sqlite:///{tmp_path}/m.db",
        [{"name": "ops", "calendars": [BUSY, *IDLE]}],
        {"sync": {"interval": 2, "schedule": "adaptive", "min_interval": 1, "max_interval": 4},
         "quota": {"requests_per_minute": 120, "burst": 2}})
    config = load(emu, path)
    caplog.set_level(logging.WARNING, logger="apscheduler")
    edits = iter(range(1, 10_000))

    def planned() -> dict[str, float | None]:
        emu.insert_event(BUSY, _event(next(edits)))  # the busy calendar keeps changing
        return {r.calendar_id: r.planned_interval for r in rows.fleet_estimates()}

    seen: list[dict[str, float | None]] = [{}]

    def learned() -> bool:
        plan = seen[0] = planned()
        idle = [plan[c] for c in IDLE]
        busy = plan[BUSY]
        # Idle ones sit at max_interval, or one rung below it: budget the ladder leaves
        # over goes one rung down to the busiest calendars that can take it, and the
        # idle ones' first listings (an event written just now) gave them a small rate.
        return (busy is not None and all(i is not None and 4 / RUNG * 0.9999 <= i <= 4 * 1.0001
                                         and busy < i for i in idle))

    with running_daemon(config):
        try:
            wait_for(learned, 60, "a plan: the busy calendar polled most often, "
                                  "idle ones at max_interval (or one rung below)")
        except AssertionError as error:
            raise AssertionError(f"{error}; the last plan: {seen[0]}; the estimates: "
                                 f"{[(r.calendar_id, r.rate) for r in rows.fleet_estimates()]}"
                                 ) from None
    plan = planned()
    busy = plan[BUSY]
    assert busy is not None and busy * 1.0001 >= 1  # min_interval holds
    spend = sum(1 / i for i in plan.values() if i is not None)
    assert spend <= 120 / 60 * 1.0001  # the quota is the budget
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("apscheduler")
                and r.levelno >= logging.WARNING]
    assert warnings == []


def test_a_plan_moves_the_next_polls_both_ways(calendar_emulator: Emulator,
                                               tmp_path: Path) -> None:
    """The first listing shows one calendar busy and the others idle: the replanning moves
    the idle calendars' next polls later (to max_interval) and the busy one's sooner, in
    the rows (what a job checks when it fires), without waiting out the configured interval."""
    emu = calendar_emulator
    now = time.time()
    emu.add_calendar(BUSY, summary=BUSY, owners=["user@example.com"])
    emu.seed_raw(BUSY, [raw_event(k, now - 10 * k) for k in range(30)])  # one every 10 s
    for cid in IDLE:
        emu.add_calendar(cid, summary=cid, owners=["user@example.com"])
        emu.seed_raw(cid, [raw_event(k, 1_704_067_200 + k) for k in range(10)])  # 2024
    path = write_daemon_config(
        tmp_path, f"sqlite:///{tmp_path}/m.db", [{"name": "ops", "calendars": [BUSY, *IDLE]}],
        {"sync": {"interval": 20, "schedule": "adaptive", "min_interval": 2,
                  "max_interval": 60}})
    config = load(emu, path)

    def gaps() -> dict[str, float]:
        found: dict[str, float] = {}
        for row in rows.fleet_estimates():
            state = calendars.read_state(row.pk)
            if state is None or state.next_due is None or state.last_success is None:
                return {}
            found[row.calendar_id] = (state.next_due - state.last_success).total_seconds()
        return found

    with running_daemon(config):
        # Without a plan every calendar would poll 15-25 s after its first pass.
        # (at max_interval a calendar moves toward its grid point before: 30-60 s)
        moved = wait_for(lambda: (g := gaps()) and g[BUSY] < 10
                         and all(g[c] > 25 for c in IDLE) and g, 30,
                         "the busy calendar's next poll sooner, the idle ones' later")
    assert all(moved[c] <= 61 for c in IDLE), moved  # never past max_interval


def test_a_failing_replan_is_one_line_not_one_per_replan(
        calendar_emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The database refuses to store the plan (a trigger here; a revoked grant in life):
    one WARNING for the cause, however many replans meet it, and one INFO when it clears;
    the calendars keep polling meanwhile."""
    emu = calendar_emulator
    now = time.time()
    emu.add_calendar(BUSY, summary=BUSY, owners=["user@example.com"])
    emu.seed_raw(BUSY, [raw_event(k, now - 10 * k) for k in range(30)])
    emu.add_calendar(IDLE[0], summary=IDLE[0], owners=["user@example.com"])
    emu.seed_raw(IDLE[0], [raw_event(k, 1_704_067_200 + k) for k in range(10)])
    database = tmp_path / "m.db"
    path = write_daemon_config(
        tmp_path, f"sqlite:///{database}", [{"name": "ops", "calendars": [BUSY, IDLE[0]]}],
        {"sync": {"interval": 2, "schedule": "adaptive", "min_interval": 1,
                  "max_interval": 8}})
    config = load(emu, path)  # migrated: the trigger below has its table
    with sqlite3.connect(database) as raw:
        raw.execute("CREATE TRIGGER no_plans BEFORE UPDATE OF planned_interval ON calendar "
                    "BEGIN SELECT RAISE(ABORT, 'planned_interval is read-only here'); END")
    caplog.set_level(logging.INFO, logger="reconciler.daemon")

    def lists() -> int:
        return sum(r.method == "events.list" for r in emu.request_log)

    def replan_lines() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "adaptive schedule" in r.getMessage()]

    with running_daemon(config):
        # 8 passes at a 2 s interval: about 8 replans (every second) met the refusal.
        wait_for(lambda: lists() >= 8, 30, "eight polls while the plan cannot be stored")
        assert all(r.planned_interval is None for r in rows.fleet_estimates())
        with sqlite3.connect(database) as raw:
            raw.execute("DROP TRIGGER no_plans")
        wait_for(lambda: all(r.planned_interval is not None for r in rows.fleet_estimates()),
                 30, "the plan stored once the database takes it")
        wait_for(lambda: len(replan_lines()) >= 2, 10, "the line saying replanning works")
    lines = [(r.levelno, r.getMessage()) for r in replan_lines()]
    assert len(lines) == 2, lines
    (warned, warning), (told, recovery) = lines
    assert warned == logging.WARNING and "could not replan" in warning, warning
    assert "planned_interval is read-only here" in warning
    assert told == logging.INFO and "works again" in recovery
