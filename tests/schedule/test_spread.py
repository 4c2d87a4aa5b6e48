"""Properties of the phase grid (reconciler.schedule.spread)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.schedule.spread import PULL, next_poll, phase

starts = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1))
intervals = st.floats(min_value=1.0, max_value=3600.0)
phases = st.floats(min_value=0.0, max_value=0.999999)


@given(starts, intervals, phases)
def test_next_poll_is_within_a_quarter_interval_of_one_interval(
        started: dt.datetime, interval: float, p: float) -> None:
    gap = (next_poll(started, interval, p) - started).total_seconds()
    assert interval * (1 - PULL / 2) - 1e-3 <= gap <= interval * (1 + PULL / 2) + 1e-3


@given(starts, intervals, phases, st.floats(min_value=1.0, max_value=3600.0))
def test_max_interval_bounds_the_gap(started: dt.datetime, interval: float, p: float,
                                     bound: float) -> None:
    gap = (next_poll(started, interval, p, bound) - started).total_seconds()
    assert gap <= max(bound, interval) + 1e-3
    assert gap >= interval / 2 - 1e-3  # never much faster than the plan


@given(starts, intervals, phases)
def test_at_steady_state_the_gap_is_one_interval(started: dt.datetime, interval: float,
                                                 p: float) -> None:
    """A calendar converges onto its grid: the distance halves with each poll, and a
    50 ms late start is pulled back."""
    first = started
    for _ in range(12):
        first = next_poll(first, interval, p)
    second = next_poll(first + dt.timedelta(milliseconds=50), interval, p)
    assert abs((second - first).total_seconds() - interval) <= interval / 2 ** 12 + 0.03


def test_a_fleet_started_together_spreads_out() -> None:
    """300 calendars whose first passes started in the same second: the busiest
    second of their next polls carries at most 3x the mean, and so does the third."""
    start = dt.datetime(2026, 1, 1, 12, 0, 0)
    interval = 30.0
    second = {f"cal-{n}": next_poll(start, interval, phase(f"cal-{n}")) for n in range(300)}
    seconds = Counter(int(when.timestamp()) for when in second.values())
    assert max(seconds.values()) <= 3 * 300 / interval
    third = {cal: next_poll(when, interval, phase(cal)) for cal, when in second.items()}
    seconds = Counter(int(when.timestamp()) for when in third.values())
    assert max(seconds.values()) <= 3 * 300 / interval


@given(starts, st.floats(min_value=2.0, max_value=600.0), phases,
       st.floats(min_value=0.9, max_value=1.1))
def test_a_small_change_of_interval_keeps_the_gap_regular(
        started: dt.datetime, interval: float, p: float, factor: float) -> None:
    """The estimate moves a little every pass: the next gap stays near the new interval."""
    first = next_poll(started, interval, p)
    gap = (next_poll(first, interval * factor, p) - first).total_seconds()
    assert abs(gap - interval * factor) <= PULL / 2 * interval * factor + 1e-3


def test_phase_is_stable_and_in_range() -> None:
    assert phase("a@example.com") == phase("a@example.com")
    assert all(0 <= phase(f"c{n}") < 1 for n in range(100))


@pytest.mark.parametrize("planned", [60.0, 60.00000006])
def test_calendars_at_max_interval_spread_too(planned: float) -> None:
    """300 idle calendars whose first passes started in the same second, planned at
    max_interval: after a few polls the busiest second carries at most 3x the mean.
    Also when the plan is a rounding above max_interval (the allocation once planned
    60.00000006 s, read as "the budget won", and half the fleet stayed in lockstep)."""
    start = dt.datetime(2026, 1, 1, 12, 0, 0)
    polls = {f"cal-{n}": start for n in range(300)}
    for _ in range(4):
        polls = {cal: next_poll(when, planned, phase(cal), 60.0) for cal, when in polls.items()}
        assert all(when - start <= dt.timedelta(seconds=60 * 4) for when in polls.values())
    seconds = Counter(int(when.timestamp()) for when in polls.values())
    assert max(seconds.values()) <= 3 * 300 / 60
