"""Properties of the phase grid (reconciler.schedule.spread)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from reconciler.schedule.spread import next_poll, phase

starts = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1))
intervals = st.floats(min_value=1.0, max_value=3600.0)
phases = st.floats(min_value=0.0, max_value=0.999999)


@given(starts, intervals, phases)
def test_next_poll_is_between_half_and_one_and_a_half_intervals(
        started: dt.datetime, interval: float, p: float) -> None:
    gap = (next_poll(started, interval, p) - started).total_seconds()
    assert interval / 2 - 1e-3 <= gap <= interval * 1.5 + 1e-3


@given(starts, intervals, phases, st.floats(min_value=1.0, max_value=3600.0))
def test_max_interval_bounds_the_gap(started: dt.datetime, interval: float, p: float,
                                     bound: float) -> None:
    gap = (next_poll(started, interval, p, bound) - started).total_seconds()
    assert gap <= max(bound, interval) + 1e-3
    assert gap >= interval / 2 - 1e-3  # never faster than the plan allows


@given(starts, intervals, phases)
def test_at_steady_state_the_gap_is_one_interval(started: dt.datetime, interval: float,
                                                 p: float) -> None:
    first = next_poll(started, interval, p)
    second = next_poll(first + dt.timedelta(milliseconds=50), interval, p)
    assert abs((second - first).total_seconds() - interval) < 1e-3


def test_a_fleet_started_together_spreads_out() -> None:
    """300 calendars whose first passes started in the same second: the busiest
    second of their next polls carries at most 3x the mean."""
    start = dt.datetime(2026, 1, 1, 12, 0, 0)
    interval = 30.0
    seconds = Counter(int(next_poll(start, interval, phase(f"cal-{n}")).timestamp())
                      for n in range(300))
    assert max(seconds.values()) <= 3 * 300 / interval


def test_phase_is_stable_and_in_range() -> None:
    assert phase("a@example.com") == phase("a@example.com")
    assert all(0 <= phase(f"c{n}") < 1 for n in range(100))
