"""The ``channel`` table: one row per push channel we opened or tried to open.

States: ``opening`` (row written before ``events.watch`` so the receiver knows
the id when Google's ``sync`` message races the API answer), ``open`` (live
until ``expiration``), ``failed`` (the last attempt for the calendar failed;
``retry_after`` says when to try again). A stopped channel's row is deleted.
Every change is one statement, so receivers and managers in several processes
never need a lock beyond the database's own row locking. Every function maps
database errors (:func:`~reconciler.store.dberrors.map_db_errors`) and returns
records (:class:`~reconciler.store.records.ChannelRow`), never models.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from reconciler.store import leases
from reconciler.store.calendars import calendar_record
from reconciler.store.dberrors import map_db_errors
from reconciler.store.models import Calendar, Channel
from reconciler.store.records import CalendarRow, ChannelRow

OPENING = "opening"
OPEN = "open"
FAILED = "failed"
LIVE_STATES = (OPENING, OPEN)


def channel_record(row: Channel) -> ChannelRow:
    """The record of a channel model row (store-internal helper)."""
    return ChannelRow(
        id=int(row.id), calendar_id=int(row.calendar_id), channel_id=str(row.channel_id),
        resource_id=row.resource_id, expiration=row.expiration, owner=row.owner,
        state=str(row.state), last_message_number=int(row.last_message_number or 0),
        created_at=row.created_at, error=row.error, retry_after=row.retry_after,
        failures=int(row.failures or 0))


@map_db_errors()
def find(channel_id: str) -> ChannelRow | None:
    """The row of a channel id, or None when we never opened it (or stopped it)."""
    row = Channel.get_or_none(Channel.channel_id == channel_id)
    return channel_record(row) if row is not None else None


@map_db_errors()
def advance_message(channel_pk: int, number: int, max_jump: int | None = None) -> bool:
    """Record message ``number``; False when it is not newer than the last one seen
    (or, with ``max_jump``, more than that far past it).

    One conditional UPDATE, so two receivers given the same message cannot
    both accept it.
    """
    condition = (Channel.id == channel_pk) & (Channel.last_message_number < number)
    if max_jump is not None:
        condition &= Channel.last_message_number >= number - max_jump
    return bool(Channel.update(last_message_number=number).where(condition).execute())


@map_db_errors()
def begin_open(calendar_pk: int, channel_id: str, owner: str, now: dt.datetime) -> ChannelRow:
    """Write the ``opening`` row before asking Google for the channel."""
    return channel_record(Channel.create(calendar=calendar_pk, channel_id=channel_id, owner=owner,
                                  state=OPENING, created_at=now, last_message_number=0))


@map_db_errors()
def mark_open(channel_pk: int, resource_id: str, expiration: dt.datetime) -> None:
    """Google accepted the channel: remember its resource id and expiry."""
    Channel.update(state=OPEN, resource_id=resource_id, expiration=expiration, error=None).where(
        Channel.id == channel_pk).execute()


@map_db_errors()
def mark_failed(channel_pk: int, calendar_pk: int, error: str, retry_after: dt.datetime,
                failures: int) -> None:
    """Turn a failed attempt's row into the calendar's one ``failed`` row."""
    Channel.delete().where((Channel.calendar == calendar_pk) & (Channel.state == FAILED)
                           & (Channel.id != channel_pk)).execute()
    Channel.update(state=FAILED, error=error[:2000], retry_after=retry_after,
                   failures=failures).where(Channel.id == channel_pk).execute()


@map_db_errors()
def clear_failures(calendar_pk: int) -> None:
    """A channel opened: forget earlier failed attempts of the calendar."""
    Channel.delete().where((Channel.calendar == calendar_pk) & (Channel.state == FAILED)).execute()


@map_db_errors()
def forget(channel_pk: int) -> None:
    """Delete a stopped, expired or abandoned channel's row."""
    Channel.delete().where(Channel.id == channel_pk).execute()


@map_db_errors()
def of_calendar(calendar_pk: int) -> list[ChannelRow]:
    """Every row of one calendar, oldest first."""
    return [channel_record(r) for r in
            Channel.select().where(Channel.calendar == calendar_pk).order_by(Channel.id)]


@map_db_errors()
def all_rows() -> list[ChannelRow]:
    """Every row, oldest first (the manager groups them by calendar)."""
    return [channel_record(r) for r in Channel.select().order_by(Channel.id)]


@map_db_errors()
def owned_by(owner: str) -> list[ChannelRow]:
    """Live channels this process opened (stopped on SIGTERM)."""
    return [channel_record(r) for r in
            Channel.select().where((Channel.owner == owner) & Channel.state.in_(LIVE_STATES))
            .order_by(Channel.id)]


@map_db_errors()
def live_calendars(now: dt.datetime) -> set[int]:
    """Pks of the calendars with an open channel that has not expired (the adaptive plan
    polls them only as a safety net: their notifications are what keeps them fresh)."""
    query = (Channel.select(Channel.calendar).distinct()
             .where((Channel.state == OPEN) & (Channel.expiration > now)))
    return {int(pk) for (pk,) in query.tuples()}


@map_db_errors()
def listing() -> list[tuple[str, ChannelRow]]:
    """(calendar id, row) of every channel, by calendar id then age (``watch list``)."""
    query = (Channel.select(Channel, Calendar.calendar_id.alias("cal"))
             .join(Calendar).order_by(Calendar.calendar_id, Channel.id))
    return [(str(row.cal), channel_record(row)) for row in query.objects()]


@map_db_errors()
def calendar(calendar_pk: int) -> CalendarRow | None:
    """The calendar a channel belongs to, or None when its row is gone."""
    row = Calendar.get_or_none(Calendar.id == calendar_pk)
    return calendar_record(row) if row is not None else None


@map_db_errors()
def watched_calendars(accounts: Iterable[str]) -> dict[int, CalendarRow]:
    """Calendars to watch: synced at least once, still mirrored, by one of ``accounts``."""
    names = sorted(set(accounts))
    if not names:
        return {}
    rows = (Calendar.select()
            .where(~Calendar.removed & ~Calendar.gone & Calendar.last_success.is_null(False)
                   & Calendar.account.in_(names)))
    return {int(row.id): calendar_record(row) for row in rows}


def expiration_from_ms(value: object, fallback: dt.datetime) -> dt.datetime:
    """The ``expiration`` of an ``api#channel`` (ms, as a number or a string) as naive UTC."""
    try:
        ms = int(str(value))
    except (TypeError, ValueError):
        return fallback
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).replace(tzinfo=None)


def claim_calendar(calendar_pk: int, owner: str, seconds: float) -> bool:
    """Take the calendar's short channel-work claim (free, expired, or already ours).

    The ``watch`` lease (:mod:`reconciler.store.leases`): independent of the
    sync lease, so channel work never makes a sync wait.
    """
    return leases.take(leases.WATCH, calendar_pk, owner, seconds)


def release_calendar(calendar_pk: int, owner: str) -> None:
    """Give the channel-work claim back."""
    leases.give_back(leases.WATCH, calendar_pk, owner)


__all__ = ["FAILED", "LIVE_STATES", "OPEN", "OPENING", "advance_message", "all_rows",
           "begin_open", "calendar", "claim_calendar", "clear_failures", "expiration_from_ms",
           "find", "forget", "listing", "live_calendars", "mark_failed", "mark_open",
           "of_calendar", "owned_by", "release_calendar", "watched_calendars"]
