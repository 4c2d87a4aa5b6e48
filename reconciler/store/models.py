"""The mirror's tables, as Peewee models bound late to the configured database.

Identifiers Google hands out can be 1,024 bytes long; MySQL cannot index that
in ``utf8mb4``, so rows are keyed by a SHA-1 of the identifier (``*_key``)
while the identifier itself is kept verbatim. The raw resource JSON lives in a
``LONGTEXT`` column on MySQL (TEXT elsewhere) because one event with hundreds
of attendees outgrows 64 KB. ``updated`` is kept as integer milliseconds so the
reconcile rule compares exactly on every engine (MySQL DATETIME drops them).

The schema itself is created and changed only by numbered migrations in
``reconciler/store/migrations``; these models must match their latest state.
"""

from __future__ import annotations

import hashlib

import peewee

database_proxy = peewee.DatabaseProxy()
# SQL functions (``fn.COUNT``) for queries outside the store package, which take
# Peewee's names from here (see ``_drivers``: Peewee is imported by the store first).
fn = peewee.fn


def key_of(identifier: str) -> str:
    """The fixed-width, indexable key of a calendar or event id.

    ``surrogatepass``: an id holding a lone surrogate (hostile, but JSON can
    carry it) gets a key too; every other id encodes exactly as UTF-8.
    """
    return hashlib.sha1(identifier.encode("utf-8", "surrogatepass")).hexdigest()


class LongTextField(peewee.TextField):
    """TEXT that holds more than 64 KB on MySQL (LONGTEXT there)."""

    field_type = "LONGTEXT"


class BaseModel(peewee.Model):
    class Meta:
        database = database_proxy
        legacy_table_names = False


class Account(BaseModel):
    """Per-account state: re-authorisation needs and calendarList sync."""

    name = peewee.CharField(max_length=255, unique=True)
    state = peewee.CharField(max_length=32, default="ok")  # ok | needs_reauth
    last_error = peewee.TextField(null=True)
    next_auth_retry = peewee.DateTimeField(null=True)
    primary_calendar_id = peewee.CharField(max_length=1024, null=True)
    calendar_list_sync_token = peewee.TextField(null=True)


class Calendar(BaseModel):
    """One mirrored calendar and its sync state, lease and schedule."""

    calendar_id = peewee.CharField(max_length=1024)
    calendar_key = peewee.CharField(max_length=40, unique=True)
    account = peewee.CharField(max_length=255)
    summary = peewee.TextField(null=True)
    source = peewee.CharField(max_length=16, default="config")  # config | discover
    removed = peewee.BooleanField(default=False)
    gone = peewee.BooleanField(default=False)
    sync_token = peewee.TextField(null=True)
    token_updated_at = peewee.DateTimeField(null=True)
    updated_min_cursor_ms = peewee.BigIntegerField(null=True)
    last_mode = peewee.CharField(max_length=16, null=True)
    last_full_sync = peewee.DateTimeField(null=True)
    last_attempt = peewee.DateTimeField(null=True)
    last_success = peewee.DateTimeField(null=True)
    last_error = peewee.TextField(null=True)
    last_error_kind = peewee.CharField(max_length=64, null=True)
    consecutive_failures = peewee.IntegerField(default=0)
    next_due = peewee.DateTimeField(null=True)
    sync_requested_at = peewee.DateTimeField(null=True)
    sync_request_seq = peewee.BigIntegerField(default=0)  # bumped by request_sync
    interval = peewee.IntegerField(null=True)
    lease_owner = peewee.CharField(max_length=255, null=True)
    lease_expires = peewee.DateTimeField(null=True)
    lease_since = peewee.DateTimeField(null=True)  # when the held lease was taken (0007)
    watch_owner = peewee.CharField(max_length=255, null=True)  # channel work in progress
    watch_until = peewee.DateTimeField(null=True)
    event_types = peewee.TextField(null=True)  # JSON list the sync token was made with (0006)
    change_rate = peewee.FloatField(null=True)  # adaptive schedule: changes per second (0009)
    rate_weight = peewee.FloatField(null=True)  # seconds of observation behind it (0009)
    planned_interval = peewee.FloatField(null=True)  # seconds, from the last replanning (0009)


class Event(BaseModel):
    """The mirrored state of one event: derived columns plus the raw resource."""

    # No index of its own: the unique (calendar, event_key) index covers it (0005).
    calendar = peewee.ForeignKeyField(Calendar, on_delete="CASCADE", backref="events",
                                      index=False)
    event_id = peewee.CharField(max_length=1024)
    event_key = peewee.CharField(max_length=40)
    etag = peewee.CharField(max_length=255)
    status = peewee.CharField(max_length=32)
    sequence = peewee.IntegerField(null=True)
    updated_ms = peewee.BigIntegerField(null=True)
    summary = peewee.TextField(null=True)
    start_utc = peewee.DateTimeField(null=True)
    end_utc = peewee.DateTimeField(null=True)
    start_date = peewee.DateField(null=True)
    end_date = peewee.DateField(null=True)
    recurring_event_id = peewee.CharField(max_length=1024, null=True)
    original_start = peewee.CharField(max_length=64, null=True)
    raw = LongTextField()
    mirrored_at = peewee.DateTimeField()
    event_type = peewee.CharField(max_length=64, default="default")  # Google's eventType (0006)

    class Meta:
        indexes = ((("calendar", "event_key"), True),)


class Change(BaseModel):
    """The append-only change feed; ids are assigned in commit order."""

    id = peewee.BigIntegerField(primary_key=True)
    calendar = peewee.ForeignKeyField(Calendar, on_delete="CASCADE")
    event_id = peewee.CharField(max_length=1024)
    kind = peewee.CharField(max_length=16)
    etag = peewee.CharField(max_length=255)
    at = peewee.DateTimeField()
    fields = peewee.TextField(null=True)  # JSON: sorted changed keys of an ``updated`` row (0006)
    diff = LongTextField(null=True)  # JSON: {key: {"before", "after"}} of those keys (0006)


class EventVersion(BaseModel):
    """One past version of an event (``[store] history``): raw JSON and its change id."""

    calendar = peewee.ForeignKeyField(Calendar, on_delete="CASCADE", index=False)
    event_id = peewee.CharField(max_length=1024)
    event_key = peewee.CharField(max_length=40)
    change_id = peewee.BigIntegerField(null=True)  # NULL: a version that wrote no change row
    raw = LongTextField()
    at = peewee.DateTimeField()

    class Meta:
        table_name = "event_version"
        indexes = ((("calendar", "event_key", "id"), False),)


class Counter(BaseModel):
    """Named counters; the ``change`` row's lock orders change ids across writers."""

    name = peewee.CharField(max_length=32, primary_key=True)
    value = peewee.BigIntegerField(default=0)


class Channel(BaseModel):
    """A push-notification channel opened with ``events.watch``."""

    calendar = peewee.ForeignKeyField(Calendar, on_delete="CASCADE")
    channel_id = peewee.CharField(max_length=64, unique=True)
    resource_id = peewee.CharField(max_length=255, null=True)
    expiration = peewee.DateTimeField(null=True)
    owner = peewee.CharField(max_length=255, null=True)
    state = peewee.CharField(max_length=16, default="open")  # opening | open | failed
    last_message_number = peewee.BigIntegerField(default=0)
    created_at = peewee.DateTimeField()
    error = peewee.TextField(null=True)
    retry_after = peewee.DateTimeField(null=True)  # failed: when to try events.watch again
    failures = peewee.IntegerField(default=0)  # failed: attempts in a row


class AccountCalendar(BaseModel):
    """A calendar an account can see, from its config or its calendarList."""

    account = peewee.CharField(max_length=255)
    calendar_id = peewee.CharField(max_length=1024)
    calendar_key = peewee.CharField(max_length=40)
    summary = peewee.TextField(null=True)
    access_role = peewee.CharField(max_length=32, null=True)
    primary = peewee.BooleanField(default=False)
    visible = peewee.BooleanField(default=True)

    class Meta:
        table_name = "account_calendar"
        indexes = ((("account", "calendar_key"), True),)


ALL_MODELS: tuple[type[BaseModel], ...] = (Account, Calendar, Event, Change, Counter, Channel,
                                           AccountCalendar, EventVersion)
