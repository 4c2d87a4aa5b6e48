"""The channel rows the watch code works with: the store's channel functions, re-exported.

The SQL lives in :mod:`reconciler.store.channels` (behind the store's error
mapping, returning :class:`~reconciler.store.records.ChannelRow` records);
this module keeps the names the watch manager, the receiver and the CLI
import.
"""

from __future__ import annotations

from reconciler.store.channels import (
    FAILED,
    LIVE_STATES,
    OPEN,
    OPENING,
    advance_message,
    all_rows,
    begin_open,
    calendar,
    claim_calendar,
    clear_failures,
    expiration_from_ms,
    find,
    forget,
    listing,
    mark_failed,
    mark_open,
    of_calendar,
    owned_by,
    release_calendar,
    watched_calendars,
)
from reconciler.store.records import CalendarRow, ChannelRow

__all__ = ["FAILED", "LIVE_STATES", "OPEN", "OPENING", "CalendarRow", "ChannelRow",
           "advance_message", "all_rows", "begin_open", "calendar", "claim_calendar",
           "clear_failures", "expiration_from_ms", "find", "forget", "listing", "mark_failed",
           "mark_open", "of_calendar", "owned_by", "release_calendar", "watched_calendars"]
