"""Properties of the change-rate estimator (reconciler.schedule.estimate)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.schedule.estimate import (
    HALF_LIFE,
    MAX_WEIGHT,
    Estimate,
    changed_items,
    observe,
    pooled_rate,
    prior_weight,
    shrunk,
)

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


# Shrinkage toward the fleet (the planner's Gamma-Poisson posterior mean).
prior_rates = st.floats(min_value=0.0, max_value=10.0)
prior_weights = st.floats(min_value=0.0, max_value=3600.0)


@given(history, prior_rates, prior_weights)
def test_the_posterior_lies_between_the_calendar_and_the_fleet(
        steps: list[tuple[int, float]], prior: float, weight: float) -> None:
    est = replay(steps)
    post = shrunk(est, prior, weight)
    if est.weight == 0:
        assert post == pytest.approx(prior)
    else:
        low, high = sorted((est.rate, prior))
        assert low * (1 - 1e-9) <= post <= high * (1 + 1e-9)


@given(history, counts, spans, prior_rates, prior_weights)
def test_more_changes_never_lower_the_posterior(steps: list[tuple[int, float]], changed: int,
                                                gap: float, prior: float, weight: float) -> None:
    before = replay(steps)
    more, fewer = observe(before, changed + 1, gap), observe(before, changed, gap)
    assert shrunk(more, prior, weight) >= shrunk(fewer, prior, weight) * (1 - 1e-12)


@settings(deadline=None)  # up to a few thousand passes of one second
@given(st.floats(min_value=1.0, max_value=3600.0),
       st.floats(min_value=1e-6, max_value=10.0), st.floats(min_value=1.0, max_value=3600.0))
def test_a_calendar_idle_long_enough_ends_at_zero(gap: float, prior: float,
                                                  weight: float) -> None:
    """Idle passes lower the posterior monotonically, to exactly 0 within 20 half-lives.

    Discrete passes overshoot the weight's continuous limit (``MAX_WEIGHT``),
    where the prior's pseudo-observations have faded to nothing.
    """
    est, seen, last = Estimate(), 0.0, math.inf
    while seen < 20 * HALF_LIFE:
        est = observe(est, 0, gap)
        seen += gap
        post = shrunk(est, prior, weight)
        assert post <= last
        last = post
        if post == 0.0:
            break
    assert last == 0.0 and est.weight >= MAX_WEIGHT


def test_the_prior_fades_with_the_half_life() -> None:
    """Under continuous observation for t seconds the prior weighs 2 ** (-t / HALF_LIFE)."""
    est = Estimate()
    for _ in range(600):
        est = observe(est, 0, 1.0)  # one half-life of one-second passes
    # posterior = r0 * w0 * fade / (weight + w0 * fade) with fade ~ 1/2, weight ~ MAX_WEIGHT / 2
    post = shrunk(est, 1.0, 100.0)
    assert math.isclose(post, 50.0 / (est.weight + 50.0), rel_tol=2e-3)


def test_pooled_rate() -> None:
    assert pooled_rate([]) == 0.0
    assert pooled_rate([Estimate(1.0, 10.0), Estimate(0.0, 30.0)]) == 0.25


@given(st.lists(st.tuples(st.floats(min_value=0.0, max_value=10.0),
                          st.floats(min_value=0.0, max_value=5000.0)), max_size=100))
def test_the_prior_is_worth_at_most_its_half_life_limit(rows: list[tuple[float, float]]) -> None:
    strength = prior_weight(Estimate(rate, weight) for rate, weight in rows)
    assert 0 < strength <= MAX_WEIGHT


def test_look_alike_calendars_get_the_strongest_prior() -> None:
    assert prior_weight([Estimate(0.01, 300.0)] * 50) == MAX_WEIGHT
    assert prior_weight([]) == MAX_WEIGHT


def test_a_few_busy_calendars_among_quiet_ones_get_a_weak_prior() -> None:
    """Method of moments: mean m, variance v of the rates -> worth m / v seconds."""
    fleet = [Estimate(0.1, 600.0)] * 5 + [Estimate(0.001, 600.0)] * 95
    m = (5 * 0.1 + 95 * 0.001) / 100
    v = (5 * (0.1 - m) ** 2 + 95 * (0.001 - m) ** 2) / 100 - 100 * m / (100 * 600.0)
    assert prior_weight(fleet) == pytest.approx(m / v)
    assert prior_weight(fleet) < 60
