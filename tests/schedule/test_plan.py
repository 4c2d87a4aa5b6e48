"""The daemon's adaptive decisions (reconciler.schedule.plan): fixed stays fixed."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from reconciler.daemon.planning import due_after, next_after_pass
from reconciler.intervals import Grid
from reconciler.schedule.allocate import RUNGS
from reconciler.schedule.estimate import MAX_WEIGHT
from reconciler.schedule.plan import chosen_interval, hinted_passes, replan
from reconciler.schedule.spread import EPOCH, PULL, next_point, phase

starts = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1))


@given(starts, st.integers(min_value=1, max_value=3600), st.floats(min_value=0, max_value=100))
def test_fixed_is_start_to_start_as_before(started: dt.datetime, interval: int,
                                           later: float) -> None:
    now = started + dt.timedelta(seconds=later)
    assert max(due_after(started, interval, None), now) == next_after_pass(started, interval, now)


@given(starts, st.integers(min_value=1, max_value=3600), st.floats(min_value=0, max_value=1),
       st.integers(min_value=1, max_value=7200))
def test_adaptive_is_within_a_quarter_interval_of_one_interval(
        started: dt.datetime, interval: int, phase: float, max_interval: int) -> None:
    due = due_after(started, interval, Grid(phase, max_interval))
    seconds = (due - started).total_seconds()
    assert min(interval * (1 - PULL / 2), interval / 2) - 1e-6 <= seconds \
        <= min((1 + PULL / 2) * interval, max(max_interval, interval)) + 1e-6
    if interval * 1.5 <= max_interval:  # no grid point (at most half an interval away) is
        # past the bound, so none is traded for the point before: within a quarter interval
        assert seconds >= interval * (1 - PULL / 2) - 1e-6


@given(starts, st.floats(min_value=1, max_value=600), st.floats(min_value=0, max_value=0.999),
       st.floats(min_value=0, max_value=3600))
def test_an_overdue_calendar_waits_for_its_next_grid_point(
        started: dt.datetime, interval: float, phase: float, late: float) -> None:
    """Past its due time (a long pass, a shortened plan): the first grid point from now,
    within an interval, so calendars overdue together spread over their phases."""
    grid = Grid(phase, None)
    due = due_after(started, interval, grid)
    now = due + dt.timedelta(seconds=late + 0.001)
    after = next_after_pass(started, interval, now, grid)
    assert now <= after <= now + dt.timedelta(seconds=interval + 1e-3)
    assert after == next_point(now, interval, phase)
    seconds = (after - EPOCH.replace(tzinfo=None)).total_seconds() / interval - phase
    assert abs(seconds - round(seconds)) < 1e-3 or after == now


@given(starts, st.floats(min_value=1, max_value=600), st.floats(min_value=0, max_value=0.999),
       st.floats(min_value=1, max_value=600), st.floats(min_value=0, max_value=1200))
def test_overdue_never_stretches_a_gap_past_max_interval(
        started: dt.datetime, interval: float, phase: float, bound: float, late: float) -> None:
    grid = Grid(phase, bound)
    now = started + dt.timedelta(seconds=late)
    after = next_after_pass(started, interval, now, grid)
    assert after >= now
    assert after <= max(now, started + dt.timedelta(seconds=max(bound, interval) + 1e-3))


def test_overdue_calendars_spread_over_an_interval() -> None:
    now = dt.datetime(2026, 12, 7, 12, 0, 0)
    started = now - dt.timedelta(seconds=30)
    dues = Counter(int(next_after_pass(started, 5.0, now, Grid(phase(f"c{n}"), 60)).timestamp())
                   for n in range(40))
    assert len(dues) >= 5 and max(dues.values()) <= 3 * 40 / 5


def test_the_plan_is_used_only_when_adaptive() -> None:
    assert chosen_interval(30, 7.5, adaptive=False) == 30
    assert chosen_interval(30, 7.5, adaptive=True) == 7.5
    assert chosen_interval(30, None, adaptive=True) == 30


weights = st.one_of(st.just(0.0), st.floats(min_value=1.0, max_value=2000.0))
fleets = st.lists(st.tuples(st.floats(min_value=0, max_value=1), weights),
                  min_size=1, max_size=300)


@given(fleets, st.integers(min_value=5, max_value=600), st.integers(min_value=1, max_value=6000))
def test_replan_never_spends_more_than_the_budget(fleet: list[tuple[float, float]], interval: int,
                                                  quota: int) -> None:
    rows = [(pk, rate, weight) for pk, (rate, weight) in enumerate(fleet)]
    plan = replan(rows, interval=interval, requests_per_minute=quota,
                  bounds=(min(10, interval), 2 * interval))
    spend = sum(1 / (i if i is not None else interval) for i in plan.values())
    budget = min(len(rows) * 60 / interval, quota) / 60
    unmeasured = sum(1 for _, _, weight in rows if not weight)
    # Unmeasured calendars poll at the configured interval; when they alone spend more
    # than the quota, measured ones wait at max_interval (the quota bucket paces the rest).
    assert spend <= max(budget, unmeasured / interval + (len(rows) - unmeasured) / (2 * interval)) \
        * (1 + 1e-9)


def test_no_change_seen_anywhere_shares_the_budget_evenly() -> None:
    plan = replan([(1, 0.0, 30.0), (2, 0.0, 60.0), (3, 0.0, 0.0)], interval=30,
                  requests_per_minute=600, bounds=(2, 60))
    assert plan[3] is None and plan[1] == plan[2] == pytest.approx(30.0)


measured = st.lists(st.tuples(st.floats(min_value=0, max_value=1),
                              st.floats(min_value=1.0, max_value=MAX_WEIGHT * 0.99)),
                    min_size=2, max_size=300)


@given(measured, st.integers(min_value=5, max_value=120), st.floats(min_value=0.05, max_value=1.0))
def test_a_feasible_budget_is_spent_whole(fleet: list[tuple[float, float]], interval: int,
                                          share: float) -> None:
    """Every measured calendar short of MAX_WEIGHT has a positive posterior: none is left
    idle, and the ladder leaves at most one rung's worth of the budget unspent."""
    assume(any(rate for rate, _ in fleet))
    n, lo, hi = len(fleet), min(2, interval), 2 * interval
    quota = 60 * (n / hi + share * (n / interval - n / hi))  # between max_interval's and the interval's
    plan = replan([(pk, r, w) for pk, (r, w) in enumerate(fleet)], interval=interval,
                  requests_per_minute=quota, bounds=(lo, hi))
    spend = sum(1 / i for i in plan.values() if i is not None)
    assert quota / 60 / 2 ** (1 / RUNGS) * (1 - 1e-9) <= spend <= quota / 60 * (1 + 1e-9)


@given(measured, st.floats(min_value=1.0, max_value=MAX_WEIGHT * 2))
def test_a_busier_calendar_never_gets_a_longer_interval(fleet: list[tuple[float, float]],
                                                        weight: float) -> None:
    """Among calendars measured for as long (equal weight), more changes: never a longer interval."""
    rows = [(pk, rate, weight) for pk, (rate, _) in enumerate(fleet)]
    plan = replan(rows, interval=30, requests_per_minute=600, bounds=(2, 60))
    order = sorted(rows, key=lambda row: row[1])
    for (qpk, qrate, _), (bpk, brate, _) in itertools.pairwise(order):
        if brate > qrate:
            assert plan[bpk] <= plan[qpk] * (1 + 1e-9)  # type: ignore[operator]


@given(st.lists(st.floats(min_value=1e-4, max_value=1.0), min_size=1, max_size=50),
       st.integers(min_value=1, max_value=250))
def test_a_calendar_idle_long_enough_sits_at_max_interval(busy: list[float], idle: int) -> None:
    """Idle calendars whose own observation outweighs the prior (weight >= MAX_WEIGHT)."""
    rows = [(pk, rate, MAX_WEIGHT) for pk, rate in enumerate(busy)]
    rows += [(1000 + k, 0.0, MAX_WEIGHT * 1.01) for k in range(idle)]
    plan = replan(rows, interval=30, requests_per_minute=600, bounds=(2, 60))
    assert all(plan[1000 + k] == 60 for k in range(idle))  # exactly: see test_spread


# -- watched calendars: freshness from notifications, polls only as the safety net ----------

watched_fleets = st.lists(st.tuples(st.floats(min_value=0, max_value=1), weights, st.booleans()),
                          min_size=1, max_size=300)


def _split(fleet: list[tuple[float, float, bool]]) -> tuple[list[tuple[int, float, float]],
                                                            set[int]]:
    rows = [(pk, rate, weight) for pk, (rate, weight, _w) in enumerate(fleet)]
    return rows, {pk for pk, (_r, _wt, watch) in enumerate(fleet) if watch}


@given(watched_fleets, st.integers(min_value=5, max_value=600),
       st.integers(min_value=1, max_value=6000), st.integers(min_value=1, max_value=10))
# Every measured calendar at max_interval, within the rounding slack of the budget: once a
# division by zero (nothing above the bound to take the slack from).
@example(fleet=[(0.0, 0.0, True), (0.0, 1.0, False), (1.0, 1.0, False), (0.0, 1.0, False)],
         interval=225, quota=1, low=1)
def test_polls_and_expected_hinted_passes_never_exceed_a_feasible_budget(
        fleet: list[tuple[float, float, bool]], interval: int, quota: int, low: int) -> None:
    rows, watched = _split(fleet)
    bounds = (min(low, interval), 2 * interval)
    plan = replan(rows, interval=interval, requests_per_minute=quota, bounds=bounds,
                  watched=watched)
    assert set(plan) == {pk for pk, _, _ in rows}
    hints = hinted_passes(rows, watched, bounds[0])
    budget = min(len(rows) * 60 / interval, quota) / 60
    unmeasured = sum(1 for pk, _, weight in rows if not weight and pk not in watched)
    others = len(rows) - unmeasured - len(watched)
    # Feasible: every watched and measured calendar at max_interval, unmeasured ones at the
    # configured interval and the expected hinted passes fit.
    floor = (len(watched) + others) / bounds[1] + unmeasured / interval + hints
    assume(floor <= budget)
    spend = sum(1 / (i if i is not None else interval) for i in plan.values())
    assert spend + hints <= budget * (1 + 1e-9)


@given(watched_fleets, st.integers(min_value=5, max_value=600),
       st.integers(min_value=1, max_value=6000))
def test_watched_calendars_sit_at_max_interval(fleet: list[tuple[float, float, bool]],
                                               interval: int, quota: int) -> None:
    rows, watched = _split(fleet)
    plan = replan(rows, interval=interval, requests_per_minute=quota,
                  bounds=(min(2, interval), 2 * interval), watched=watched)
    budget = min(len(rows) * 60 / interval, quota) / 60
    for pk in watched:
        if len(rows) / (2 * interval) <= budget:
            assert plan[pk] == 2 * interval
        else:  # the budget wins over max_interval, as for every calendar
            assert plan[pk] == pytest.approx(len(rows) / budget)


def test_hinted_passes_are_the_rate_capped_at_one_per_min_interval() -> None:
    rows = [(1, 0.05, MAX_WEIGHT), (2, 2.0, MAX_WEIGHT), (3, 0.5, MAX_WEIGHT)]
    assert hinted_passes(rows, {1, 2}, 2) == pytest.approx(0.05 + 0.5)
    assert hinted_passes(rows, set(), 2) == 0


def test_no_watched_calendar_is_the_plan_as_before() -> None:
    rows = [(1, 0.2, 100.0), (2, 0.0, 900.0), (3, 0.01, 50.0), (4, 0.0, 0.0)]
    plain = replan(rows, interval=30, requests_per_minute=600, bounds=(2, 60))
    assert replan(rows, interval=30, requests_per_minute=600, bounds=(2, 60),
                  watched=set()) == plain
    assert replan(rows, interval=30, requests_per_minute=600, bounds=(2, 60),
                  watched={99}) == plain  # a channel of a calendar not in the fleet


@given(measured, st.lists(st.booleans(), min_size=300, max_size=300),
       st.integers(min_value=5, max_value=120), st.floats(min_value=0.05, max_value=1.0))
def test_unwatched_calendars_spend_what_watched_ones_leave(
        fleet: list[tuple[float, float]], watch: list[bool], interval: int, share: float) -> None:
    """A feasible budget is spent whole (polls and expected hints; the ladder leaves at
    most one rung's worth), unless every unwatched calendar already polls at min_interval."""
    rows = [(pk, r, w) for pk, (r, w) in enumerate(fleet)]
    watched = {pk for pk, _, _ in rows if watch[pk]}
    unwatched = [row for row in rows if row[0] not in watched]
    assume(any(rate for _, rate, _ in unwatched))
    n, lo, hi = len(rows), min(2, interval), 2 * interval
    hints = hinted_passes(rows, watched, lo)
    quota = 60 * (n / hi + hints + share * (n / interval - n / hi))
    assume(quota <= 60 * n / interval)
    plan = replan(rows, interval=interval, requests_per_minute=quota, bounds=(lo, hi),
                  watched=watched)
    spend = sum(1 / i for i in plan.values() if i is not None) + hints
    everything = all(plan[pk] == pytest.approx(lo) for pk, _, _ in unwatched)
    assert spend <= quota / 60 * (1 + 1e-6)
    assert everything or spend >= quota / 60 / 2 ** (1 / RUNGS) * (1 - 1e-9)


@given(measured, st.lists(st.booleans(), min_size=300, max_size=300),
       st.floats(min_value=1.0, max_value=MAX_WEIGHT * 2))
def test_among_unwatched_a_busier_calendar_never_gets_a_longer_interval(
        fleet: list[tuple[float, float]], watch: list[bool], weight: float) -> None:
    rows = [(pk, rate, weight) for pk, (rate, _) in enumerate(fleet)]
    watched = {pk for pk, _, _ in rows if watch[pk]}
    plan = replan(rows, interval=30, requests_per_minute=600, bounds=(2, 60), watched=watched)
    order = sorted((row for row in rows if row[0] not in watched), key=lambda row: row[1])
    for (qpk, qrate, _), (bpk, brate, _) in itertools.pairwise(order):
        if brate > qrate:
            assert plan[bpk] <= plan[qpk] * (1 + 1e-9)  # type: ignore[operator]
    for pk in watched:
        assert plan[pk] == 60


@given(st.lists(st.floats(min_value=1e-4, max_value=1.0), min_size=1, max_size=50),
       st.integers(min_value=1, max_value=250), st.integers(min_value=0, max_value=50))
def test_an_idle_unwatched_calendar_still_sits_at_max_interval(
        busy: list[float], idle: int, watched_busy: int) -> None:
    rows = [(pk, rate, MAX_WEIGHT) for pk, rate in enumerate(busy)]
    rows += [(1000 + k, 0.0, MAX_WEIGHT * 1.01) for k in range(idle)]
    plan = replan(rows, interval=30, requests_per_minute=600, bounds=(2, 60),
                  watched=set(range(watched_busy)))
    assert all(plan[1000 + k] == 60 for k in range(idle))  # exactly: see test_spread
