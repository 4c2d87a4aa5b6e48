"""When a calendar's next poll is due: a per-calendar phase, so polls do not land in lockstep.

The fixed schedule polls start-to-start: calendars whose first passes started
together keep polling together (300 polls inside 3-4 s of every 30 s). Here
each calendar owns a stable phase ``p`` in [0, 1) (a hash of its id, the same
in every process) and polls on its own grid of absolute times
``(k + p) * interval``: with phases spread uniformly, so are the polls, and
the fleet's busiest second stays near the mean rate.

After a pass that started at ``started``, the next poll is one interval
later, moved half of the way toward the calendar's nearest grid point
(``PULL``). So the gap is within a quarter of an interval of the interval
(always, where ``max_interval`` is at least 1.5 intervals; see below); at
steady state a calendar converges onto its grid (the distance halves with
each poll); a pass that started late (waiting for the quota) is
pulled back toward its slot instead of shifting the calendar or making it
poll more often; and a fleet whose first passes started together is spread
over half an interval by its second polls and over its phases after that.
Why not jump to the nearest point: the grid of interval ``I`` is
``(k + p) * I`` counted from 2000, so any change of the planned interval
reshuffles the points; jumping made a gap anything between half and one and a
half intervals, and irregular gaps cost staleness (an edit waits
``E[G^2] / 2E[G]``, not ``I / 2``). Why not a bounded jump: the calendars
that need the long move all land on the bound, in the same second.
The gap is never later than ``max_interval`` after the start, so a plan that
lengthens an interval cannot stretch one gap beyond the bound (a calendar at
``max_interval`` whose grid point lies later moves toward the point before,
or it would stay in lockstep with its first pass: seen as 50 polls in one
second every minute) (unless the
interval itself is longer: when the budget wins over ``max_interval``, the
grid is kept, or the fleet would spend more than the budget). First passes
are not touched (they start at once, DESIGN).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math

EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
PULL = 0.5  # the share of the way to its grid point a poll moves
# Relative: an interval this close to max_interval is at it, not "the budget won over it"
# (a plan of 60.00000006 s once kept 269 of 300 calendars in lockstep with their first pass).
ROUNDING = 1e-6


def phase(calendar_id: str) -> float:
    """A stable number in [0, 1) per calendar, independent of the audit spread's."""
    digest = hashlib.sha256(b"phase:" + calendar_id.encode("utf-8")).hexdigest()
    return int(digest[:8], 16) / 0x1_0000_0000


def _seconds(when: dt.datetime) -> float:
    aware = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
    return (aware - EPOCH).total_seconds()


def next_poll(started: dt.datetime, interval: float, phase_of: float,
              max_interval: float | None = None) -> dt.datetime:
    """One interval after ``started``, moved ``PULL`` of the way to the calendar's grid point.

    The result keeps ``started``'s tzinfo (naive UTC in, naive UTC out) and
    lies in ``[started + 3/4 interval, started + 5/4 interval]``, but never
    later than ``max(max_interval, interval)`` after ``started``: a calendar
    that bound holds moves toward its grid point before instead (a gap of at
    least half an interval), so it too reaches its phase.
    """
    base = _seconds(started)
    target = base + interval
    # The grid point nearest to one interval later (a pass that started late because
    # it waited for the quota still belongs to its own slot): move part of the way.
    nearest = (round(target / interval - phase_of) + phase_of) * interval
    if max_interval is not None:
        bound = base + max(max_interval, interval)
        if nearest > bound and interval <= max_interval * (1 + ROUNDING):
            # Toward the point before instead: a calendar at max_interval may only move
            # earlier, and one that never moved would stay in lockstep with its first pass.
            # Not when the budget won over max_interval (the interval is the bound): gaps
            # shorter than the interval would spend more than the budget (two processes
            # sharing one budget were seen at 1.1-1.5x it).
            nearest -= interval
        at = min(target + PULL * (nearest - target), bound)
    else:
        at = target + PULL * (nearest - target)
    return started + dt.timedelta(seconds=at - base)


def next_point(now: dt.datetime, interval: float, phase_of: float) -> dt.datetime:
    """The calendar's first grid point at or after ``now`` (same tzinfo as ``now``).

    Where a calendar's due time has passed (a long pass, or a plan that just
    shortened its interval), "now" for every such calendar would be one burst;
    their next grid points are spread over an interval by their phases.
    """
    base = _seconds(now)
    k = math.ceil(base / interval - phase_of)
    return now + dt.timedelta(seconds=max(0.0, (k + phase_of) * interval - base))
