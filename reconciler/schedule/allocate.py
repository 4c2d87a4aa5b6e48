"""Turn change-rate estimates and a request budget into one interval per calendar.

The rule (Cho and Garcia-Molina, "Effective page refresh policies for Web
crawlers", ACM TODS 2003): for Poisson changes at rate ``r_i`` polled every
``I_i``, an edit waits ``I_i / 2`` on average, so the mean staleness over all
edits is ``sum(r_i * I_i) / (2 * sum(r_i))``. Minimising it for a fixed number
of polls per second ``sum(1 / I_i) = B`` (Lagrange) gives polling frequencies
proportional to the square root of the rate: ``1 / I_i = c * sqrt(r_i)``.

**The exponent** (``EXPONENT``, measured): the frequencies here are
``c * r_i ** 0.6``, a little steeper than the square root. The square root
minimises the mean, but the mean is flat around it, and what a user of a
mirror feels first is the typical edit (the median), which the busy calendars
decide. On issue 18's fleet (``bench/freshness_sim.py --seeds 10``, the
schedule's own functions on ten seeds of the trace): exponent 0.5 gives a
median of 3.02 s (worst seed 3.26 s), a mean of 5.33 s and a p95 of 23.3 s;
0.55 gives 2.88 s (3.05), 5.29 s, 24.0 s; 0.6 gives 2.69 s (2.96), 5.33 s,
26.1 s, the p95 still under the fixed interval's 28.8 s. Steeper than 0.6 the
p95 of the quiet calendars' edits passes the fixed interval's.

Bounds: each frequency is clipped to ``[1/max_interval, 1/min_interval]`` and
the constant ``c`` is found by bisection so that the clipped frequencies spend
the budget exactly (water filling). Idle calendars (rate 0) sit at
``max_interval`` exactly, also when the changing ones all reach
``min_interval`` and budget is left over (exactly: the spread rule tells "at
max_interval" from "the budget won over it" by comparing, so rounding must
not push them past it). When even every calendar at ``max_interval`` would exceed
the budget, **the budget wins**: every calendar gets the same interval
``N / B``, longer than ``max_interval`` (the budget is Google's quota; going
over it buys 403s, not freshness). When every calendar at ``min_interval``
spends less than the budget, they all poll at ``min_interval`` and the rest
of the budget stays unspent.

Properties (tests/schedule/test_allocate.py): the budget is never exceeded;
intervals stay within the bounds unless the budget forces them longer; idle
calendars get ``max_interval`` when it is affordable; a busier calendar never
gets a longer interval than a quieter one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypeVar

K = TypeVar("K")

EXPONENT = 0.6  # polls per second proportional to rate ** EXPONENT (0.5: the square root)
BISECTION_STEPS = 100
RUNGS = 8  # planned intervals lie on a ladder of 8 rungs per doubling (steps of 9%)
BUDGET_SLACK = 1e-9  # relative: float rounding must never tip the sum over the budget


def budget_per_second(calendars: int, interval: float, requests_per_minute: float) -> float:
    """The fleet's polls per second: ``min(N * 60 / interval, quota) / 60`` (DESIGN)."""
    return min(calendars * 60.0 / interval, float(requests_per_minute)) / 60.0


def _spend(roots: Sequence[float], c: float, low: float, high: float) -> float:
    return sum(min(high, max(low, c * root)) for root in roots)


def frequencies(rates: Sequence[float], budget: float, min_interval: float,
                max_interval: float, exponent: float = EXPONENT) -> list[float]:
    """Polls per second for each rate (same order), spending at most ``budget`` per second."""
    n = len(rates)
    if n == 0:
        return []
    if budget <= 0:
        raise ValueError("budget must be positive")
    low, high = 1.0 / max_interval, 1.0 / min_interval
    if n * low >= budget:  # infeasible bounds: the budget wins, shared evenly
        return [budget / n] * n
    roots = [max(0.0, r) ** exponent for r in rates]
    if n * high <= budget:
        return [high] * n
    if sum(high if root else low for root in roots) <= budget:
        # Every changing calendar at min_interval still leaves budget: idle ones stay at max.
        return [high if root else low for root in roots]
    # Bisection on c: spend(c) is continuous and non-decreasing from n*low to n*high.
    lo, hi = 0.0, 1.0
    while _spend(roots, hi, low, high) < budget:
        hi *= 2.0
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2.0
        if _spend(roots, mid, low, high) <= budget:
            lo = mid
        else:
            hi = mid
    freqs = [min(high, max(low, lo * root)) for root in roots]
    total = sum(freqs)
    limit = budget * (1.0 - BUDGET_SLACK)
    if total > limit:
        # Rounding: take the excess from what lies above the lower bound, so calendars at
        # max_interval stay exactly there (scaled with the rest they came out at
        # 60.00000006 s, which the spread rule read as "the budget won over
        # max_interval" and kept 269 of 300 calendars in lockstep with their first pass).
        above = total - n * low  # 0 when every calendar is at the bound: nothing to take
        factor = max(0.0, 1.0 - (total - limit) / above) if above > 0 else 0.0
        freqs = [low + (f - low) * factor for f in freqs]
    return freqs


def intervals(rates: Mapping[K, float], budget: float, min_interval: float,
              max_interval: float, exponent: float = EXPONENT) -> dict[K, float]:
    """Seconds between polls per calendar: polls in proportion to ``rate ** exponent`` (0.5:
    the square-root rule) within the bounds and the budget."""
    keys = list(rates)
    freqs = frequencies([rates[k] for k in keys], budget, min_interval, max_interval, exponent)
    low = 1.0 / max_interval
    # At the lower bound the interval is max_interval itself (1 / (1 / 49) is 49.00000000000001).
    return {k: max_interval if f == low else 1.0 / f for k, f in zip(keys, freqs, strict=True)}


def rung(seconds: float) -> float:
    """The shortest interval of the ladder ``2 ** (k / RUNGS)`` that is at least ``seconds``."""
    k = math.ceil(math.log2(seconds) * RUNGS - 1e-9)
    return max(seconds, 2.0 ** (k / RUNGS))


def on_ladder(plan: Mapping[K, float], rates: Mapping[K, float], budget: float,
              bounds: tuple[float, float]) -> dict[K, float]:
    """The allocation's intervals moved onto the ladder of intervals ``2 ** (k / RUNGS)``.

    Why: a busy calendar's estimate moves a little with every pass, and a new
    interval, however close, is a new phase grid (:mod:`reconciler.schedule.spread`)
    and an irregular gap, which costs staleness (an edit waits ``E[G^2] / 2E[G]``,
    not ``I / 2``). On the ladder the plan of such a calendar stays put.

    Each interval is rounded up to its rung (never past ``max_interval``
    unless it already was: the budget won), which spends at most the budget;
    what that leaves is spent greedily, one rung down, on the busiest
    calendars first (they gain most staleness per request), never below
    ``min_interval``. Properties (tests/schedule/test_allocate.py):
    the budget is never exceeded; each interval is within one rung of the
    allocation's; a busier calendar never gets a longer interval.
    """
    low, high = bounds
    out = {k: min(rung(seconds), max(high, seconds)) for k, seconds in plan.items()}
    left = budget * (1.0 - BUDGET_SLACK) - sum(1.0 / s for s in out.values())
    step = 2.0 ** (1.0 / RUNGS)
    groups: dict[tuple[float, float], list[K]] = {}  # (rate, rung): they move together
    for k in out:
        if rates.get(k, 0.0) > 0 and out[k] / step >= low:
            groups.setdefault((rates[k], out[k]), []).append(k)
    limit = 0.0  # the longest interval of a busier group that could not move
    for (_rate, seconds), keys in sorted(groups.items(), reverse=True):
        cost = len(keys) * (step - 1.0) / seconds
        if cost > left or seconds / step < limit * (1 - 1e-12):
            # a quieter calendar never overtakes a busier one that stayed
            limit = max(limit, seconds)
            continue
        for k in keys:
            out[k] = seconds / step
        left -= cost
    return out


def expected_staleness(interval: float) -> float:
    """Mean wait of an edit before a poll every ``interval`` seconds finds it (Poisson: I/2)."""
    return interval / 2.0
