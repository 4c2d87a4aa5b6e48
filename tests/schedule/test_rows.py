"""The adaptive schedule in the calendar rows, on every database engine.

A pass's change-rate estimate rides in the UPDATE that records the pass (the
no-change poll's statement count stays pinned in tests/test_pass_contract.py);
the fleet's estimates are read in one SELECT and planned intervals written
in one UPDATE.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from playhouse.test_utils import count_queries

from reconciler import status
from reconciler.emulator import Emulator
from reconciler.schedule.plan import replan
from reconciler.service import Service
from reconciler.store import calendars
from reconciler.store import schedule as rows
from tests.helpers import config_for, write_config

BUSY = "busy@group.calendar.google.com"
QUIET = "quiet@group.calendar.google.com"


def _event(n: int) -> dict[str, object]:
    return {"summary": f"e{n}", "start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"}}


def test_passes_learn_estimates_and_plans_round_trip(calendar_emulator: Emulator, tmp_path: Path,
                                                     database_url: str) -> None:
    emu = calendar_emulator
    for cid in (BUSY, QUIET):
        emu.add_calendar(cid, summary=cid, owners=["user@example.com"])
        emu.insert_event(cid, _event(0))
    path = write_config(tmp_path, database_url, [{"name": "ops", "calendars": [BUSY, QUIET]}],
                        {"interval": 30})
    config = config_for(emu, path)
    svc = Service(config)
    try:
        found, _ = svc.resolve_calendars()
        svc.run_pass(found)  # first (full) passes: no observation
        assert all(not r.observed for r in rows.fleet_estimates())
        for n in range(1, 4):
            emu.insert_event(BUSY, _event(n))
        svc.run_pass(found)
        fleet = {r.calendar_id: r for r in rows.fleet_estimates()}
        assert fleet[BUSY].observed and fleet[BUSY].rate > 0
        assert fleet[QUIET].observed and fleet[QUIET].rate == 0.0
        state = calendars.read_state(fleet[BUSY].pk)
        assert state is not None and state.change_rate == pytest.approx(fleet[BUSY].rate)

        plan = replan(((r.pk, r.rate, r.observed) for r in fleet.values()), interval=30,
                      requests_per_minute=600, bounds=(10, 60))
        assert plan[fleet[QUIET].pk] == pytest.approx(60)  # idle: max_interval
        assert plan[fleet[BUSY].pk] is not None and plan[fleet[BUSY].pk] < 60
        with count_queries() as counter:
            rows.write_planned_intervals(rows.moved(list(fleet.values()), plan))
        assert counter.count == 1
        again = rows.fleet_estimates()
        assert {r.pk: r.planned_interval for r in again} == pytest.approx(plan)
        assert rows.moved(again, plan) == {}  # nothing moved: nothing to write

        # status: the plan, the estimate and the expected staleness, per calendar
        adaptive = dataclasses.replace(config, sync=dataclasses.replace(config.sync,
                                                                        schedule="adaptive"))
        shown = {r["calendar"]: r for r in status.calendar_status(adaptive)}
        assert shown[QUIET]["interval_s"] == pytest.approx(60)
        assert shown[QUIET]["expected_staleness_s"] == pytest.approx(30)
        assert shown[BUSY]["changes_per_hour"] == pytest.approx(fleet[BUSY].rate * 3600)
        assert "CHG/H" in status.render_table(list(shown.values()))
        fixed = {r["calendar"]: r for r in status.calendar_status(config)}
        assert fixed[QUIET]["interval_s"] == 30 and "CHG/H" not in status.render_table(
            list(fixed.values()))
    finally:
        svc.close()
