"""The one owner of a calendar's poll interval and of when its next poll is due.

Why one place: the interval used to have three owners (the config, the
``calendar.interval`` row and the scheduler's own copy plus its trigger), so a
change such as "poll busy calendars more often" touched every place that
re-derived it. Everything in ``run`` that needs a calendar's interval (the
calendar's job and its next run, the calendar-set diff, ``status`` and the
lag metric) asks :func:`interval_of`; the adaptive schedule
(:mod:`reconciler.schedule`) plugs in here and nowhere else.

* ``[sync] schedule = "fixed"`` (the default): the calendar's own stored
  interval (from its config entry or its account), else ``[sync] interval``;
  the next pass is due an interval after this one started (start to start).
* ``"adaptive"``: the interval the fleet's replanning stored in the row
  (``planned_interval``), once there is one; the next pass is due on the
  calendar's own phase grid, so the fleet's polls do not land in lockstep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from reconciler.config import Config
from reconciler.schedule import plan, spread


class HasInterval(Protocol):
    """Anything that carries a calendar's stored interval (a row, a state, a record)."""

    @property
    def interval(self) -> Any:
        """Seconds configured for this calendar, or None for the configured default."""


def adaptive(config: Config) -> bool:
    """Whether ``run`` spends the budget where changes happen (``[sync] schedule``)."""
    return config.sync.schedule == "adaptive"


def interval_of(calendar: HasInterval, config: Config) -> float:
    """Seconds between two passes of ``calendar`` (start to start).

    Fixed: the calendar's own stored interval, else ``[sync] interval``.
    Adaptive: its planned interval when the replanning has stored one.
    """
    configured = float(calendar.interval or config.sync.interval)
    planned = getattr(calendar, "planned_interval", None)
    return plan.chosen_interval(configured, planned, adaptive(config))


@dataclass(frozen=True, slots=True)
class Grid:
    """The adaptive schedule's phase grid of one calendar (``None`` under ``fixed``):
    passes fall on points of it, so a fleet's polls do not land in lockstep."""

    phase: float  # in [0, 1): where on its interval the calendar's points lie
    max_interval: float | None = None


def grid_of(calendar_id: str, config: Config) -> Grid | None:
    """The calendar's phase grid under ``adaptive``; None (start to start) under ``fixed``."""
    if not adaptive(config):
        return None
    return Grid(spread.phase(calendar_id), config.sync.interval_bounds[1])


__all__ = ["Grid", "HasInterval", "adaptive", "grid_of", "interval_of"]
