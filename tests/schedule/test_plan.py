"""The daemon's adaptive decisions (reconciler.schedule.plan): fixed stays fixed."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from reconciler.daemon.planning import due_after, next_after_pass
from reconciler.intervals import Grid
from reconciler.schedule.plan import interval_of, replan

starts = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1))


@given(starts, st.integers(min_value=1, max_value=3600), st.floats(min_value=0, max_value=100))
def test_fixed_is_start_to_start_as_before(started: dt.datetime, interval: int,
                                           later: float) -> None:
    now = started + dt.timedelta(seconds=later)
    assert max(due_after(started, interval, None), now) == next_after_pass(started, interval, now)


@given(starts, st.integers(min_value=1, max_value=3600), st.floats(min_value=0, max_value=1),
       st.integers(min_value=1, max_value=7200))
def test_adaptive_lands_on_the_grid_within_half_and_one_and_a_half_intervals(
        started: dt.datetime, interval: int, phase: float, max_interval: int) -> None:
    due = due_after(started, interval, Grid(phase, max_interval))
    seconds = (due - started).total_seconds()
    assert interval / 2 - 1e-6 <= seconds <= min(1.5 * interval, max(max_interval, interval)) + 1e-6


def test_interval_of_uses_the_plan_only_when_adaptive() -> None:
    assert interval_of(30, 7.5, adaptive=False) == 30
    assert interval_of(30, 7.5, adaptive=True) == 7.5
    assert interval_of(30, None, adaptive=True) == 30


fleets = st.lists(st.tuples(st.floats(min_value=0, max_value=1), st.booleans()),
                  min_size=1, max_size=300)


@given(fleets, st.integers(min_value=5, max_value=600), st.integers(min_value=1, max_value=6000))
def test_replan_never_spends_more_than_the_budget(fleet: list[tuple[float, bool]], interval: int,
                                                  quota: int) -> None:
    rows = [(pk, rate, observed) for pk, (rate, observed) in enumerate(fleet)]
    plan = replan(rows, interval=interval, requests_per_minute=quota,
                  bounds=(min(10, interval), 2 * interval))
    spend = sum(1 / (i if i is not None else interval) for i in plan.values())
    budget = min(len(rows) * 60 / interval, quota) / 60
    unmeasured = sum(1 for _, _, observed in rows if not observed)
    # Unmeasured calendars poll at the configured interval; when they alone spend more
    # than the quota, measured ones wait at max_interval (the quota bucket paces the rest).
    assert spend <= max(budget, unmeasured / interval + (len(rows) - unmeasured) / (2 * interval)) \
        * (1 + 1e-9)
