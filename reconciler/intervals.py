"""The one owner of a calendar's poll interval.

Why one function: the interval used to have three owners (the config, the
``calendar.interval`` row and the scheduler's own copy plus its trigger), so a
change such as "poll busy calendars more often" touched every place that
re-derived it. Everything in ``run`` that needs a calendar's interval (the
calendar's job and its next run, the calendar-set diff, ``status`` and the
lag metric) asks :func:`interval_of`; an adaptive schedule changes this
function and nothing else.
"""

from __future__ import annotations

from typing import Any, Protocol

from reconciler.config import Config


class HasInterval(Protocol):
    """Anything that carries a calendar's stored interval (a row, a state, a record)."""

    @property
    def interval(self) -> Any:
        """Seconds configured for this calendar, or None for the configured default."""


def interval_of(calendar: HasInterval, config: Config) -> float:
    """Seconds between two passes of ``calendar`` (start to start).

    The calendar's own stored interval (from its config entry or its account),
    else ``[sync] interval``.
    """
    return float(calendar.interval or config.sync.interval)


__all__ = ["HasInterval", "interval_of"]
