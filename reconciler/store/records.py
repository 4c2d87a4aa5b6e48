"""The plain, frozen values the store hands out instead of its Peewee models.

Why: the models are the store's private business (``tests/test_layers.py``
fails when a module outside ``reconciler/store/`` imports them); a caller
gets a record whose attributes carry the same names as the model's columns,
so code that read ``row.calendar_id`` keeps reading it. A record is
detached: it never runs a query and holds no connection.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AccountState:
    """An account's stored state: re-authorisation needs and calendarList sync."""

    id: int
    name: str
    state: str  # ok | needs_reauth
    last_error: str | None
    next_auth_retry: dt.datetime | None
    primary_calendar_id: str | None
    calendar_list_sync_token: str | None


@dataclass(frozen=True, slots=True)
class CalendarRow:
    """A mirrored calendar as the watch manager, the CLI and status see it."""

    id: int
    calendar_id: str
    account: str
    summary: str | None
    removed: bool
    gone: bool
    interval: int | None
    last_success: dt.datetime | None


@dataclass(frozen=True, slots=True)
class ChannelRow:
    """One push channel's row (states: ``opening``, ``open``, ``failed``)."""

    id: int
    calendar_id: int  # the calendar's primary key
    channel_id: str
    resource_id: str | None
    expiration: dt.datetime | None
    owner: str | None
    state: str
    last_message_number: int
    created_at: dt.datetime
    error: str | None
    retry_after: dt.datetime | None
    failures: int


__all__ = ["AccountState", "CalendarRow", "ChannelRow"]
