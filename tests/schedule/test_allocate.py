"""Properties of the allocation (reconciler.schedule.allocate)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from reconciler.schedule.allocate import (
    EXPONENT,
    RUNGS,
    budget_per_second,
    expected_staleness,
    intervals,
    on_ladder,
    rung,
)

rates = st.lists(st.one_of(st.just(0.0), st.floats(min_value=1e-6, max_value=10.0)),
                 min_size=1, max_size=300)
bounds = st.tuples(st.floats(min_value=1.0, max_value=120.0),
                   st.floats(min_value=1.0, max_value=600.0))
budgets = st.floats(min_value=0.01, max_value=200.0)


def plan(rs: list[float], budget: float, lo: float, hi: float) -> dict[int, float]:
    return intervals(dict(enumerate(rs)), budget, lo, hi)


@given(rates, budgets, bounds)
def test_the_budget_is_never_exceeded(rs: list[float], budget: float,
                                      b: tuple[float, float]) -> None:
    lo, hi = min(b), max(b)
    assert sum(1.0 / i for i in plan(rs, budget, lo, hi).values()) <= budget * (1 + 1e-12)


@given(rates, budgets, bounds)
def test_bounds_hold_unless_the_budget_forces_longer(rs: list[float], budget: float,
                                                    b: tuple[float, float]) -> None:
    lo, hi = min(b), max(b)
    result = plan(rs, budget, lo, hi)
    if len(rs) / hi >= budget:  # infeasible: the budget wins, shared evenly
        assert all(math.isclose(i, len(rs) / budget) for i in result.values())
    else:
        assert all(lo * (1 - 1e-9) <= i <= hi for i in result.values())


fractions = st.floats(min_value=0.001, max_value=0.999)


@given(rates, fractions, bounds)
def test_idle_calendars_sit_at_max_interval(rs: list[float], t: float,
                                           b: tuple[float, float]) -> None:
    lo, hi = min(b), max(b)
    budget = len(rs) / hi + t * (len(rs) / lo - len(rs) / hi)  # feasible
    assume(len(rs) / hi < budget)
    result = plan(rs, budget, lo, hi)
    laddered = on_ladder(result, dict(enumerate(rs)), budget, (lo, hi))
    for i, rate in enumerate(rs):
        if rate == 0:
            assert laddered[i] == hi
            # Exactly: the spread rule tells "at max_interval" from "the budget won over
            # it" by comparing (60.00000006 s kept a fleet in lockstep).
            assert result[i] == hi


@given(rates, budgets, bounds)
def test_a_busier_calendar_never_gets_a_longer_interval(rs: list[float], budget: float,
                                                        b: tuple[float, float]) -> None:
    lo, hi = min(b), max(b)
    result = plan(rs, budget, lo, hi)
    order = sorted(range(len(rs)), key=lambda i: rs[i])
    for quieter, busier in itertools.pairwise(order):
        if rs[busier] > rs[quieter]:
            assert result[busier] <= result[quieter] * (1 + 1e-9)


@given(rates, fractions, bounds)
def test_a_feasible_budget_is_spent(rs: list[float], t: float, b: tuple[float, float]) -> None:
    lo, hi = min(b), max(b)
    assume(any(rs) and hi > lo * 1.01)
    budget = len(rs) / hi + t * (len(rs) / lo - len(rs) / hi)  # between the bounds' spends
    spent = sum(1.0 / i for i in plan(rs, budget, lo, hi).values())
    most = sum(1 / lo if rate else 1 / hi for rate in rs)  # idle calendars stay at max
    assert spent >= min(budget, most) * 0.999


def test_power_rule_without_bounds() -> None:
    """Polls in proportion to rate ** EXPONENT (the square root at 0.5)."""
    result = intervals({"busy": 4.0, "quiet": 1.0}, 3.0, 0.001, 1e6)
    assert math.isclose(result["quiet"] / result["busy"], 4.0 ** EXPONENT, rel_tol=1e-6)


def test_budget_and_staleness() -> None:
    assert budget_per_second(300, 30, 600) == 10.0
    assert budget_per_second(300, 30, 300) == 5.0
    assert expected_staleness(30) == 15.0


@given(rates, budgets, bounds)
def test_the_ladder_keeps_the_budget_and_the_order(rs: list[float], budget: float,
                                                   b: tuple[float, float]) -> None:
    """On the ladder: within budget, within one rung of the allocation, on a rung (or the
    bounds), and a busier calendar never gets a longer interval."""
    lo, hi = min(b), max(b)
    allocated = plan(rs, budget, lo, hi)
    laddered = on_ladder(allocated, dict(enumerate(rs)), budget, (lo, hi))
    assert sum(1.0 / i for i in laddered.values()) <= budget * (1 + 1e-12)
    step = 2 ** (1 / RUNGS)
    for k, seconds in laddered.items():
        assert allocated[k] / step * (1 - 1e-9) <= seconds <= allocated[k] * step * (1 + 1e-9)
        assert seconds >= min(lo, allocated[k]) * (1 - 1e-9)
    for a, b_ in itertools.permutations(range(len(rs)), 2):
        if rs[a] > rs[b_]:
            assert laddered[a] <= laddered[b_] * (1 + 1e-9)


def test_a_skewed_fleet_keeps_its_idle_calendars_at_max_interval_exactly() -> None:
    """Issue 18's fleet, where rounding once planned 269 calendars at 60.00000006 s."""
    rates = {i: (0.0005 * (i % 7) if i < 285 else 0.05 + 0.01 * (i - 285)) for i in range(300)}
    planned = on_ladder(intervals(rates, 10.0, 2, 60), rates, 10.0, (2, 60))
    assert max(planned.values()) == 60
    assert sum(1 for k, seconds in planned.items() if seconds == 60 and rates[k] == 0) == 41


def test_a_small_change_of_rate_keeps_the_rung() -> None:
    """Why the ladder: estimates that move by a few percent leave the plan as it was."""
    base = {0: 0.12, 1: 0.02, 2: 0.0}
    first = on_ladder(intervals(base, 0.5, 2, 60), base, 0.5, (2, 60))
    for moved in ({0: 0.1224, 1: 0.01966, 2: 0.0}, {0: 0.1176, 1: 0.02034, 2: 0.0}):
        assert on_ladder(intervals(moved, 0.5, 2, 60), moved, 0.5, (2, 60)) == first
    assert rung(4.0) == 4.0 and rung(4.1) == pytest.approx(2 ** (17 / 8))
