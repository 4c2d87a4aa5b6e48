"""A calendar's change rate, learned from what its passes find.

A poll does not see every edit: it sees how many items changed since the
last pass (two edits of one event between polls are one changed item). Cho
and Garcia-Molina ("Estimating frequency of change", ACM TOIT 2003) show
that such incomplete observations of a Poisson process are estimated well
by counting observed changes over observed time, and that the bias of the
"changed items / elapsed time" ratio is small when polls are frequent
compared with the change rate, which is what the allocation makes them for
busy calendars (idle ones are bounded by ``max_interval`` anyway).

The estimator is exponentially weighted over *time*, not over passes: both
the change count and the observed time decay by half every ``HALF_LIFE``
seconds, and the rate is their ratio::

    decay  = 2 ** (-elapsed / HALF_LIFE)
    events = events * decay + changed
    weight = weight * decay + elapsed       (seconds of observation)
    rate   = events / weight                (changes per second)

Two numbers per calendar are stored: ``rate`` and ``weight`` (``events`` is
their product). Properties (tests/schedule/test_estimate.py):

* an idle calendar's stored rate is 0, and stays 0 while nothing changes;
* the weight tends to ``HALF_LIFE / ln 2`` (~1.44 half-lives; discrete passes
  overshoot it by at most one span), so a
  calendar that starts changing after a long quiet spell is noticed by its
  first pass that finds a change: with the default half-life of 10 minutes,
  one changed item after a minute lifts the rate to at least 1/(15 min);
* old behaviour fades: a busy calendar that falls silent halves its rate in
  about one half-life of passes.

**Shrinkage toward the fleet** (:func:`shrunk`, used by the planner, not
stored). A calendar seen for a minute without a change is not known to be
idle: the raw ratio says 0 and would send it to ``max_interval``, and one
change in a minute says 60 an hour. The planner therefore uses the posterior
mean under a Gamma prior (the conjugate prior of a Poisson rate) centred on
the fleet's pooled rate ``r0`` and worth ``w0`` seconds of observation, both
estimated from the fleet (empirical Bayes, :func:`pooled_rate` and
:func:`prior_weight`: ``w0 = r0 / variance of the rates``)::

    fade      = max(0, 1 - weight / MAX_WEIGHT)   # 2 ** (-t / HALF_LIFE) after t s observed
    posterior = (events + r0 * w0 * fade) / (weight + w0 * fade)

The pseudo-observations fade with the same half-life as real ones: under
continuous observation ``weight = MAX_WEIGHT * (1 - 2 ** (-t / HALF_LIFE))``,
so ``fade`` is exactly the prior's weight decayed since observation began.
Properties: the posterior lies between the calendar's own rate and the
fleet's; more changes never lower it; an idle calendar's posterior falls
monotonically and is exactly 0 once its weight reaches ``MAX_WEIGHT``
(discrete passes overshoot the continuous limit, so this happens after a
finite number of idle passes: about 5 half-lives when polled every 60 s), so
a calendar idle long enough still ends at ``max_interval``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

HALF_LIFE = 600.0  # seconds: an observation counts half as much 10 minutes later
MAX_WEIGHT = HALF_LIFE / math.log(2)  # the limit of the weight under continuous observation


@dataclass(frozen=True, slots=True)
class Estimate:
    """A calendar's learned change rate (changes per second) and how much time it rests on."""

    rate: float = 0.0
    weight: float = 0.0  # seconds of (decayed) observation behind ``rate``

    @property
    def per_hour(self) -> float:
        """The rate in changes per hour (what ``status`` shows)."""
        return self.rate * 3600.0


def observe(before: Estimate, changed: int, elapsed: float,
            half_life: float = HALF_LIFE) -> Estimate:
    """The estimate after a pass found ``changed`` items over ``elapsed`` seconds.

    ``elapsed`` is the time since the previous pass (the observed span);
    zero or negative spans (clock steps, the first pass) change nothing but
    a positive count, which is then counted over one second so that a
    change found at once still raises the estimate.
    """
    changed = max(0, changed)
    if elapsed <= 0:
        if not changed:
            return before
        elapsed = 1.0
    decay = 0.5 ** (elapsed / half_life)
    events = before.rate * before.weight * decay + changed
    weight = before.weight * decay + elapsed
    return Estimate(rate=events / weight if weight > 0 else 0.0, weight=weight)


def shrunk(estimate: Estimate, prior_rate: float, prior_weight: float,
           half_life: float = HALF_LIFE) -> float:
    """The calendar's rate shrunk toward ``prior_rate`` (Gamma-Poisson posterior mean).

    ``prior_weight`` seconds of pseudo-observation at ``prior_rate``, faded by
    the calendar's own observation (see the module docstring); a calendar
    whose weight reached ``half_life / ln 2`` keeps its own rate.
    """
    fade = max(0.0, 1.0 - estimate.weight / (half_life / math.log(2)))
    pseudo = max(0.0, prior_weight) * fade
    total = estimate.weight + pseudo
    if total <= 0:
        return max(0.0, prior_rate)
    return (estimate.rate * estimate.weight + max(0.0, prior_rate) * pseudo) / total


def pooled_rate(estimates: Iterable[Estimate]) -> float:
    """The fleet's rate: all observed changes over all observed time (the prior's centre)."""
    events = weight = 0.0
    for est in estimates:
        events += est.rate * est.weight
        weight += est.weight
    return events / weight if weight > 0 else 0.0


def prior_weight(estimates: Iterable[Estimate], half_life: float = HALF_LIFE) -> float:
    """How many seconds of observation the fleet's prior is worth (empirical Bayes).

    A Gamma prior with mean ``m`` and variance ``v`` is worth ``m / v``
    seconds. ``m`` is the pooled rate; ``v`` is the spread of the calendars'
    rates around it (weighted by their observation) less the spread that
    Poisson counting alone gives (``m / weight`` per calendar). A fleet of
    look-alike calendars (no spread beyond counting noise) gets the strongest
    prior, ``half_life / ln 2``; a fleet of a few busy calendars among quiet
    ones a weak one, so a busy calendar's own evidence wins within a pass.
    """
    rows = [est for est in estimates if est.weight > 0]
    total = sum(est.weight for est in rows)
    strongest = half_life / math.log(2)
    if total <= 0:
        return strongest
    mean = sum(est.rate * est.weight for est in rows) / total
    if mean <= 0:
        return strongest
    spread = sum(est.weight * (est.rate - mean) ** 2 for est in rows) / total
    variance = spread - len(rows) * mean / total
    if variance <= 0:
        return strongest
    return min(strongest, mean / variance)


LISTING_WINDOW = HALF_LIFE  # seconds of a full listing's ``updated`` times that count


def from_listing(recent: int, items: int, window: float = LISTING_WINDOW) -> Estimate | None:
    """A first estimate from a calendar's first full listing: ``recent`` distinct
    moments (seconds) among its ``items`` events' ``updated`` times in the last ``window``.

    Why: without it a calendar is unknown until its first incremental pass, an
    interval after the first; a busy shared calendar then waits as long as an
    idle one, and a fleet's first minutes are polled blind. A listing shows each
    event's *last* change only: with ``n`` events changed at random at rate
    ``r``, the share of them changed in the last ``W`` seconds is
    ``1 - exp(-r W / n)``, so ``r = -(n / W) ln(1 - k / n)`` (the inversion
    corrects for events changed twice; ``k`` is capped at ``n - 1/2``, where
    the listing stops telling rates apart). ``k`` counts distinct seconds, not
    events: an import or a bulk edit that touched a thousand events in one
    second is one change to see, not a thousand. The estimate rests on ``W``
    seconds of observation and is then refined, and faded, by the incremental
    passes like any other. None for an empty calendar (nothing to learn from).
    """
    if items <= 0 or window <= 0:
        return None
    k = min(float(max(0, recent)), items - 0.5)
    return Estimate(rate=-(items / window) * math.log1p(-k / items), weight=window)


def changed_items(created: int, updated: int, deleted: int, mode: str) -> int | None:
    """How many changes an incremental pass observed; None for a full listing.

    A full listing (first pass, 410, audit) returns every item, not what
    changed, so it is no observation of the change rate by count (a first
    listing's ``updated`` times are: :func:`from_listing`).
    """
    if mode == "full":
        return None
    return created + updated + deleted
