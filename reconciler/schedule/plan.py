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
  share of the budget; the others share the rest by the square-root rule.
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.schedule.allocate import budget_per_second, intervals


def interval_of(configured: float, planned: float | None, adaptive: bool) -> float:
    """Seconds between two polls of one calendar (start to start)."""
    if adaptive and planned is not None and planned > 0:
        return planned
    return configured


def replan(fleet: Iterable[tuple[int, float, bool]], *, interval: float,
           requests_per_minute: float, bounds: tuple[float, float]) -> dict[int, float | None]:
    """Planned interval per calendar pk from ``(pk, rate, observed)`` rows.

    The budget is ``min(N x 60 / interval, requests_per_minute)`` a minute for
    N calendars (DESIGN). Unmeasured calendars get None (the configured
    interval) and the budget they spend at it is kept aside.
    """
    rows = list(fleet)
    if not rows:
        return {}
    budget = budget_per_second(len(rows), interval, requests_per_minute)
    measured = {pk: rate for pk, rate, observed in rows if observed}
    plan: dict[int, float | None] = {pk: None for pk, _rate, observed in rows if not observed}
    left = budget - len(plan) / interval
    if measured:
        if left <= 0:  # everything unmeasured already spends the budget: measured ones wait
            left = len(measured) / max(bounds[1], interval)
        plan.update(intervals(measured, left, bounds[0], bounds[1]))
    return plan
