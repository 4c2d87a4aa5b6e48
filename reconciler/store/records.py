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
    """A mirrored calendar's row: every column of ``calendar``, under its own name."""

    id: int
    calendar_id: str
    calendar_key: str
    account: str
    summary: str | None = None
    source: str = "config"
    removed: bool = False
    gone: bool = False
    sync_token: str | None = None
    token_updated_at: dt.datetime | None = None
    updated_min_cursor_ms: int | None = None
    last_mode: str | None = None
    last_full_sync: dt.datetime | None = None
    last_attempt: dt.datetime | None = None
    last_success: dt.datetime | None = None
    last_error: str | None = None
    last_error_kind: str | None = None
    consecutive_failures: int = 0
    next_due: dt.datetime | None = None
    sync_requested_at: dt.datetime | None = None
    sync_request_seq: int = 0
    interval: int | None = None
    lease_owner: str | None = None
    lease_expires: dt.datetime | None = None
    lease_since: dt.datetime | None = None
    watch_owner: str | None = None
    watch_until: dt.datetime | None = None
    event_types: str | None = None


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
