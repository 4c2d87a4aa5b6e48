"""One source of "now" for the whole process, in the form the store keeps.

Timestamps in the database are naive UTC (every engine can store and compare
them); routing every read of the clock through here keeps that consistent and
lets tests move time with freezegun.
"""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """The current time as naive UTC, the form stored in the database."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def now_ms() -> int:
    """The current time in milliseconds since the epoch."""
    now = dt.datetime.now(dt.UTC)
    return int(now.timestamp() * 1000)
