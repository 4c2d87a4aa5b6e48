"""The adaptive schedule in the calendar rows, on every database engine.

A pass's change-rate estimate rides in the UPDATE that records the pass (the
no-change poll's statement count stays pinned in tests/test_pass_contract.py);
the fleet's estimates are read in one SELECT and planned intervals written
in one UPDATE.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from playhouse.test_utils import count_queries

from reconciler import status
from reconciler.emulator import Emulator
from reconciler.schedule.estimate import LISTING_WINDOW, from_listing
from reconciler.schedule.plan import replan
from reconciler.service import Service
from reconciler.store import calendars, fleet, open_store
from reconciler.store import schedule as rows
from tests.helpers import config_for, write_config
from tests.schedule.listing import raw_event

BUSY = "busy@group.calendar.google.com"
QUIET = "quiet@group.calendar.google.com"


def _event(n: int) -> dict[str, object]:
    return {"summary": f"e{n}", "start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"}}


def test_a_first_listing_reads_the_rate_from_updated_times(calendar_emulator: Emulator,
                                                           tmp_path: Path,
                                                           database_url: str) -> None:
    """Events changed long ago: idle (rate 0, measured); changed recently at distinct
    moments: busy; a thousand-event import in one second: one change, not a thousand."""
    emu = calendar_emulator
    old, busy, bulk = "old@group.calendar.google.com", BUSY, "bulk@group.calendar.google.com"
    now = time.time()
    for cid in (old, busy, bulk):
        emu.add_calendar(cid, summary=cid, owners=["user@example.com"])
    emu.seed_raw(old, [raw_event(k, 1_704_067_200 + k) for k in range(20)])  # in 2024
    emu.seed_raw(busy, [raw_event(k, now - 15 * k) for k in range(20)])  # every 15 s
    emu.seed_raw(bulk, [raw_event(k, now - 5) for k in range(200)])
    path = write_config(tmp_path, database_url,
                        [{"name": "ops", "calendars": [old, busy, bulk]}], {"interval": 30})
    svc = Service(config_for(emu, path))
    try:
        found, _ = svc.resolve_calendars()
        svc.run_pass(found)
        fleet = {r.calendar_id: r for r in rows.fleet_estimates()}
    finally:
        svc.close()
    assert all(r.weight == pytest.approx(LISTING_WINDOW) for r in fleet.values())
    assert fleet[old].rate == 0.0
    # 20 changes in 300 s, every event changed: saturated, read as "at least" that
    assert fleet[busy].rate >= 1 / 15
    assert fleet[busy].rate == pytest.approx(from_listing(20, 20).rate,  # type: ignore[union-attr]
                                             rel=1e-5)  # MariaDB: a FLOAT
    assert fleet[bulk].rate == pytest.approx(from_listing(1, 200).rate,  # type: ignore[union-attr]
                                             rel=1e-5)
    assert fleet[bulk].rate < fleet[busy].rate / 10


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
        svc.run_pass(found)  # first (full) passes: a first estimate from the listing
        first = from_listing(1, 1)  # one event, changed just now
        assert first is not None
        estimates = rows.fleet_estimates()
        assert [r.rate for r in estimates] == pytest.approx([first.rate] * 2, rel=1e-5)
        assert [r.weight for r in estimates] == pytest.approx([first.weight] * 2, rel=1e-5)
        for n in range(1, 4):
            emu.insert_event(BUSY, _event(n))
        svc.run_pass(found)
        fleet = {r.calendar_id: r for r in rows.fleet_estimates()}
        assert fleet[BUSY].observed and fleet[QUIET].observed
        assert fleet[BUSY].rate > 5 * fleet[QUIET].rate > 0
        state = calendars.read_state(fleet[BUSY].pk)
        assert state is not None and state.change_rate == pytest.approx(fleet[BUSY].rate)

        plan = replan(((r.pk, r.rate, r.weight) for r in fleet.values()), interval=30,
                      requests_per_minute=600, bounds=(10, 60))
        busy, quiet = plan[fleet[BUSY].pk], plan[fleet[QUIET].pk]
        # one quiet pass is weak evidence: shrunk toward the fleet, still polled less often
        assert busy is not None and quiet is not None and 10 <= busy < quiet <= 60
        with count_queries() as counter:
            rows.write_planned_intervals(rows.moved(list(fleet.values()), plan))
        assert counter.count == 1
        again = rows.fleet_estimates()
        # (MariaDB keeps a FLOAT column to about six digits)
        assert {r.pk: r.planned_interval for r in again} == pytest.approx(plan, rel=1e-5)
        assert rows.moved(again, plan) == {}  # nothing moved: nothing to write

        # status: the plan, the estimate and the expected staleness, per calendar
        adaptive = dataclasses.replace(config, sync=dataclasses.replace(config.sync,
                                                                        schedule="adaptive"))
        shown = {r["calendar"]: r for r in status.calendar_status(adaptive)}
        assert shown[QUIET]["interval_s"] == pytest.approx(quiet, rel=1e-5)
        assert shown[QUIET]["expected_staleness_s"] == pytest.approx(quiet / 2, rel=1e-5)
        assert shown[BUSY]["changes_per_hour"] == pytest.approx(fleet[BUSY].rate * 3600)
        assert "CHG/H" in status.render_table(list(shown.values()))
        fixed = {r["calendar"]: r for r in status.calendar_status(config)}
        assert fixed[QUIET]["interval_s"] == 30 and "CHG/H" not in status.render_table(
            list(fixed.values()))
    finally:
        svc.close()


def test_healthz_judges_staleness_by_the_planned_interval(tmp_path: Path) -> None:
    """/healthz's probe: the longest interval of the fleet is the plan where there is one."""
    url = f"sqlite:///{tmp_path}/h.db"
    open_store(url)
    pk = calendars.ensure_calendar("a@group.calendar.google.com", "ops", interval=30).id
    assert fleet.newest_success() == (None, 30.0)
    rows.write_planned_intervals({pk: 240.0})
    assert fleet.newest_success() == (None, 240.0)
