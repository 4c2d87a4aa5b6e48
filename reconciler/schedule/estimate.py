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

* an idle calendar's rate is 0, and stays 0 while nothing changes;
* the weight never exceeds ``HALF_LIFE / ln 2`` (~1.44 half-lives), so a
  calendar that starts changing after a long quiet spell is noticed by its
  first pass that finds a change: with the default half-life of 10 minutes,
  one changed item after a minute lifts the rate to at least 1/(15 min);
* old behaviour fades: a busy calendar that falls silent halves its rate in
  about one half-life of passes.
"""

from __future__ import annotations

import math
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


def changed_items(created: int, updated: int, deleted: int, mode: str) -> int | None:
    """How many changes an incremental pass observed; None for a full listing.

    A full listing (first pass, 410, audit) returns every item, not what
    changed, so it is no observation of the change rate.
    """
    if mode == "full":
        return None
    return created + updated + deleted
