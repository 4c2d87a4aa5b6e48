"""The adaptive schedule's decisions for ``run``: a calendar's interval, its next due time,
and the fleet's replanning. Pure functions; the daemon calls them with rows it read.

* :func:`interval_of` is the one function that says how often a calendar is
  polled: the configured interval under ``schedule = "fixed"`` (today's
  behaviour), the planned one under ``"adaptive"`` once there is a plan.
* the next due time is start-to-start under ``fixed`` and on the calendar's
  phase grid (:mod:`reconciler.schedule.spread`) under ``adaptive``: see
  :mod:`reconciler.intervals` and ``reconciler.daemon.planning.due_after``.
* :func:`replan` turns the fleet's estimates into planned intervals: calendars
  no incremental pass has measured yet keep the configured interval and their
  share of the budget; the others share the rest by the square-root rule,
  each rate shrunk toward the fleet's (a Gamma-Poisson prior fitted to the fleet).
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.schedule.allocate import budget_per_second, intervals, on_ladder
from reconciler.schedule.estimate import Estimate, pooled_rate, prior_weight, shrunk


def interval_of(configured: float, planned: float | None, adaptive: bool) -> float:
    """Seconds between two polls of one calendar (start to start)."""
    if adaptive and planned is not None and planned > 0:
        return planned
    return configured


def replan(fleet: Iterable[tuple[int, float, float]], *, interval: float,
           requests_per_minute: float, bounds: tuple[float, float]) -> dict[int, float | None]:
    """Planned interval per calendar pk from ``(pk, rate, weight)`` rows.

    The budget is ``min(N x 60 / interval, requests_per_minute)`` a minute for
    N calendars (DESIGN). Unmeasured calendars (weight 0) get None (the
    configured interval) and the budget they spend at it is kept aside. While
    no pass of the fleet has seen a change there is no evidence to allocate
    by: the measured calendars share their budget evenly (the configured
    interval, unless the quota is the tighter budget), as the fixed schedule
    does. Otherwise each measured rate is shrunk toward the fleet's pooled
    rate by a Gamma prior fitted to the fleet (empirical Bayes:
    :func:`reconciler.schedule.estimate.prior_weight` and ``shrunk``), the
    square-root rule shares the rest of the budget, and the intervals are put
    on the ladder (:func:`reconciler.schedule.allocate.on_ladder`).
    """
    rows = list(fleet)
    if not rows:
        return {}
    budget = budget_per_second(len(rows), interval, requests_per_minute)
    estimates = {pk: Estimate(rate, weight) for pk, rate, weight in rows if weight > 0}
    plan: dict[int, float | None] = {pk: None for pk, _rate, _weight in rows
                                     if pk not in estimates}
    if not estimates:
        return plan
    left = budget - len(plan) / interval
    if left <= 0:  # everything unmeasured already spends the budget: measured ones wait
        left = len(estimates) / max(bounds[1], interval)
    prior = pooled_rate(estimates.values())
    if prior <= 0:  # no change seen anywhere: no evidence, share the budget evenly
        plan.update({pk: len(estimates) / left for pk in estimates})
        return plan
    strength = prior_weight(estimates.values())
    measured = {pk: shrunk(est, prior, strength) for pk, est in estimates.items()}
    plan.update(on_ladder(intervals(measured, left, bounds[0], bounds[1]), measured, left,
                          bounds))
    return plan

