"""The adaptive schedule's decisions for ``run``: a calendar's interval, its next due time,
and the fleet's replanning. Pure functions; the daemon calls them with rows it read.

* :func:`chosen_interval` is the one rule that says how often a calendar is
  polled (:func:`reconciler.intervals.interval_of` applies it to a row): the
  configured interval under ``schedule = "fixed"`` (today's behaviour), the
  planned one under ``"adaptive"`` once there is a plan.
* the next due time is start-to-start under ``fixed`` and on the calendar's
  phase grid (:mod:`reconciler.schedule.spread`) under ``adaptive``: see
  :mod:`reconciler.intervals` and ``reconciler.daemon.planning.due_after``.
* :func:`replan` turns the fleet's estimates into planned intervals: calendars
  not measured yet (no listing, no incremental pass) keep the configured interval and their
  share of the budget; the others share the rest by the power rule of
  :mod:`reconciler.schedule.allocate` (near the square root),
  each rate shrunk toward the fleet's (a Gamma-Poisson prior fitted to the fleet).
  Calendars with a live watch channel are polled at ``max_interval`` only (a
  safety net for a lost notification), and what their hinted passes are
  expected to cost (:func:`hinted_passes`) is set aside from the budget first.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from reconciler.schedule.allocate import budget_per_second, intervals, on_ladder
from reconciler.schedule.estimate import Estimate, pooled_rate, prior_weight, shrunk


def chosen_interval(configured: float, planned: float | None, adaptive: bool) -> float:
    """Seconds between two polls of one calendar (start to start)."""
    if adaptive and planned is not None and planned > 0:
        return planned
    return configured


def hinted_passes(fleet: Sequence[tuple[int, float, float]], watched: Collection[int],
                  min_interval: float) -> float:
    """Hinted passes per second the ``watched`` calendars are expected to cost.

    Each notified change triggers at most one pass (notifications coalesce,
    and a pass finds every change made before it), and a calendar is not
    passed more than once per ``min_interval`` on average: per watched
    calendar ``min(rate, 1 / min_interval)``, its rate shrunk toward the
    fleet's as the allocation does (a watched calendar never measured gets
    the fleet's rate).
    """
    measured = [Estimate(rate, weight) for _pk, rate, weight in fleet if weight > 0]
    return _hints(fleet, watched, min_interval, pooled_rate(measured), prior_weight(measured))


def _hints(fleet: Sequence[tuple[int, float, float]], watched: Collection[int],
           min_interval: float, prior: float, strength: float) -> float:
    """:func:`hinted_passes` with the fleet's prior already fitted."""
    return sum(min(shrunk(Estimate(rate, weight), prior, strength), 1.0 / min_interval)
               for pk, rate, weight in fleet if pk in watched)


def replan(fleet: Iterable[tuple[int, float, float]], *, interval: float,
           requests_per_minute: float, bounds: tuple[float, float],
           watched: Collection[int] = frozenset()) -> dict[int, float | None]:
    """Planned interval per calendar pk from ``(pk, rate, weight)`` rows.

    ``watched`` calendars (a live watch channel) get their freshness from
    notifications: they are polled at ``max_interval`` (longer only when the
    budget cannot afford every calendar at it), and their polls and expected
    hinted passes (:func:`hinted_passes`) come out of the budget before the
    others share what is left, by the rules below (when the hints alone
    would leave them less than ``max_interval`` each, they get that: the
    quota bucket paces the excess).

    The budget is ``min(N x 60 / interval, requests_per_minute)`` a minute for
    N calendars (DESIGN). Unmeasured calendars (weight 0) get None (the
    configured interval) and the budget they spend at it is kept aside. While
    no pass of the fleet has seen a change there is no evidence to allocate
    by: the measured calendars share their budget evenly (the configured
    interval, unless the quota is the tighter budget), as the fixed schedule
    does. Otherwise each measured rate is shrunk toward the fleet's pooled
    rate by a Gamma prior fitted to the fleet (empirical Bayes:
    :func:`reconciler.schedule.estimate.prior_weight` and ``shrunk``), the
    allocation's power rule shares the rest of the budget, and the intervals are put
    on the ladder (:func:`reconciler.schedule.allocate.on_ladder`).
    """
    rows = list(fleet)
    if not rows:
        return {}
    budget = budget_per_second(len(rows), interval, requests_per_minute)
    evidence = [Estimate(rate, weight) for _pk, rate, weight in rows if weight > 0]
    # The whole fleet's prior, watched calendars included (fitted once, used twice).
    prior, strength = pooled_rate(evidence), prior_weight(evidence)
    held: dict[int, float | None] = {}
    if watched:
        safety = max(bounds[1], len(rows) / budget)  # the budget wins over max_interval
        held = {pk: safety for pk, _rate, _weight in rows if pk in watched}
        spent = len(held) / safety + _hints(rows, watched, bounds[0], prior, strength)
        rows = [row for row in rows if row[0] not in held]
        # Hints beyond the budget never push an unwatched calendar past max_interval.
        budget = max(budget - spent, len(rows) / safety)
    estimates = {pk: Estimate(rate, weight) for pk, rate, weight in rows if weight > 0}
    plan: dict[int, float | None] = {pk: None for pk, _rate, _weight in rows
                                     if pk not in estimates}
    left = budget - len(plan) / interval
    plan.update(held)
    if not estimates:
        return plan
    if left <= 0:  # everything unmeasured already spends the budget: measured ones wait
        left = len(estimates) / max(bounds[1], interval)
    left = min(left, len(estimates) / bounds[0])  # budget freed by watched ones: min_interval
    if prior <= 0:  # no change seen anywhere: no evidence, share the budget evenly
        plan.update({pk: len(estimates) / left for pk in estimates})
        return plan
    measured = {pk: shrunk(est, prior, strength) for pk, est in estimates.items()}
    plan.update(on_ladder(intervals(measured, left, bounds[0], bounds[1]), measured, left,
                          bounds))
    return plan

