"""Properties of the change-rate estimator (reconciler.schedule.estimate)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from reconciler.schedule.estimate import HALF_LIFE, MAX_WEIGHT, Estimate, changed_items, observe

spans = st.floats(min_value=0.5, max_value=3600.0)
counts = st.integers(min_value=0, max_value=50)
history = st.lists(st.tuples(counts, spans), max_size=40)


def replay(steps: list[tuple[int, float]]) -> Estimate:
    est = Estimate()
    for changed, elapsed in steps:
        est = observe(est, changed, elapsed)
    return est


@given(st.lists(spans, max_size=40))
def test_an_idle_calendar_stays_at_zero(gaps: list[float]) -> None:
    assert replay([(0, gap) for gap in gaps]).rate == 0.0


@given(history)
def test_rate_and_weight_stay_finite_and_bounded(steps: list[tuple[int, float]]) -> None:
    est = replay(steps)
    assert est.rate >= 0 and math.isfinite(est.rate)
    # The weight's limit under continuous observation is HALF_LIFE / ln 2; one span
    # longer than that can overshoot it by at most the span itself.
    assert est.weight <= MAX_WEIGHT + max((gap for _, gap in steps), default=0.0)


@given(history, st.integers(min_value=1, max_value=20), st.floats(min_value=1.0, max_value=60.0))
def test_a_calendar_that_starts_changing_is_noticed_by_the_first_pass_that_sees_it(
        steps: list[tuple[int, float]], changed: int, gap: float) -> None:
    quiet = replay([(0, elapsed) for _, elapsed in steps] + [(0, 3600.0)] * 3)
    after = observe(quiet, changed, gap)
    # at least `changed` per (1.44 half-lives + the gap): one pass is enough to move it
    assert after.rate >= changed / (MAX_WEIGHT + 3600.0 + gap) * 0.999
    assert after.rate > quiet.rate


@given(history, counts, spans)
def test_more_changes_never_lower_the_estimate(steps: list[tuple[int, float]], changed: int,
                                               gap: float) -> None:
    before = replay(steps)
    assert observe(before, changed + 1, gap).rate >= observe(before, changed, gap).rate


@given(st.floats(min_value=0.001, max_value=1.0))
def test_a_steady_rate_is_learned(rate: float) -> None:
    est = Estimate()
    for _ in range(int(8 * HALF_LIFE * rate) + 50):
        est = observe(est, 1, 1.0 / rate)  # one change per 1/rate seconds
    assert math.isclose(est.rate, rate, rel_tol=1e-6)


@given(st.floats(min_value=0.01, max_value=1.0))
def test_old_behaviour_fades_by_half_in_a_half_life(rate: float) -> None:
    busy = Estimate()
    for _ in range(200):
        busy = observe(busy, 1, 1.0 / rate)
    faded = busy
    for _ in range(60):
        faded = observe(faded, 0, HALF_LIFE / 60)
    assert faded.rate < busy.rate * 0.75


def test_full_listings_are_no_observation() -> None:
    assert changed_items(5, 2, 1, "full") is None
    assert changed_items(5, 2, 1, "incremental") == 8
    assert observe(Estimate(), 3, 0).rate == 3.0


def test_per_hour() -> None:
    assert Estimate(rate=0.5, weight=10).per_hour == 1800.0
