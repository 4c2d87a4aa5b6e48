"""When a calendar's next poll is due: a per-calendar phase, so polls do not land in lockstep.

The fixed schedule polls start-to-start: calendars whose first passes started
together keep polling together (300 polls inside 3-4 s of every 30 s). Here
each calendar owns a stable phase ``p`` in [0, 1) (a hash of its id, the same
in every process) and polls on its own grid of absolute times
``(k + p) * interval``: with phases spread uniformly, so are the polls, and
the fleet's busiest second stays near the mean rate.

After a pass that started at ``started``, the next poll is one interval after
the grid point nearest to ``started`` (so between half and one and a half
intervals later; at steady state exactly one interval after the pass's own
slot: a pass that started late, waiting for the quota, does not shift the
calendar off its grid nor make it poll more often), and never later than
``max_interval`` after the start, so a plan that lengthens an interval cannot
stretch one gap beyond the bound (unless the interval itself is longer: when
the budget wins over ``max_interval``, the grid is kept, or the fleet would
spend more than the budget). First passes
are not touched (they start at once, DESIGN).
"""

from __future__ import annotations

import datetime as dt
import hashlib

EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def phase(calendar_id: str) -> float:
    """A stable number in [0, 1) per calendar, independent of the audit spread's."""
    digest = hashlib.sha256(b"phase:" + calendar_id.encode("utf-8")).hexdigest()
    return int(digest[:8], 16) / 0x1_0000_0000


def _seconds(when: dt.datetime) -> float:
    aware = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
    return (aware - EPOCH).total_seconds()


def next_poll(started: dt.datetime, interval: float, phase_of: float,
              max_interval: float | None = None) -> dt.datetime:
    """One interval after the point of the calendar's grid nearest to ``started``.

    The result keeps ``started``'s tzinfo (naive UTC in, naive UTC out) and
    lies in ``[started + interval/2, started + min(1.5 * interval, max(max_interval, interval))]``.
    """
    base = _seconds(started)
    # The grid point this pass belongs to (the nearest one: a pass that started
    # late because it waited for the quota still counts for its own slot), plus one.
    k = round(base / interval - phase_of)
    at = (k + 1 + phase_of) * interval
    if max_interval is not None:
        at = min(at, base + max(max_interval, interval))
    return started + dt.timedelta(seconds=at - base)
