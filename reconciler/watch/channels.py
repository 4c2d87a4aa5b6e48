"""The ``channel`` table: one row per push channel we opened or tried to open.

States: ``opening`` (row written before ``events.watch`` so the receiver knows
the id when Google's ``sync`` message races the API answer), ``open`` (live
until ``expiration``), ``failed`` (the last attempt for the calendar failed;
``retry_after`` says when to try again). A stopped channel's row is deleted.
Every change is one statement, so receivers and managers in several processes
never need a lock beyond the database's own row locking.
"""

from __future__ import annotations

import datetime as dt

from reconciler.clock import utcnow
from reconciler.store.models import Calendar, Channel

OPENING = "opening"
OPEN = "open"
FAILED = "failed"
LIVE_STATES = (OPENING, OPEN)


def find(channel_id: str) -> Channel | None:
    """The row of a channel id, or None when we never opened it (or stopped it)."""
    return Channel.get_or_none(Channel.channel_id == channel_id)


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


def begin_open(calendar_pk: int, channel_id: str, owner: str, now: dt.datetime) -> Channel:
    """Write the ``opening`` row before asking Google for the channel."""
    return Channel.create(calendar=calendar_pk, channel_id=channel_id, owner=owner, state=OPENING,
                          created_at=now, last_message_number=0)


def mark_open(channel_pk: int, resource_id: str, expiration: dt.datetime) -> None:
    """Google accepted the channel: remember its resource id and expiry."""
    Channel.update(state=OPEN, resource_id=resource_id, expiration=expiration, error=None).where(
        Channel.id == channel_pk).execute()


def mark_failed(channel_pk: int, calendar_pk: int, error: str, retry_after: dt.datetime,
                failures: int) -> None:
    """Turn a failed attempt's row into the calendar's one ``failed`` row."""
    Channel.delete().where((Channel.calendar == calendar_pk) & (Channel.state == FAILED)
                           & (Channel.id != channel_pk)).execute()
    Channel.update(state=FAILED, error=error[:2000], retry_after=retry_after,
                   failures=failures).where(Channel.id == channel_pk).execute()


def clear_failures(calendar_pk: int) -> None:
    """A channel opened: forget earlier failed attempts of the calendar."""
    Channel.delete().where((Channel.calendar == calendar_pk) & (Channel.state == FAILED)).execute()


def forget(channel_pk: int) -> None:
    """Delete a stopped, expired or abandoned channel's row."""
    Channel.delete().where(Channel.id == channel_pk).execute()


def of_calendar(calendar_pk: int) -> list[Channel]:
    """Every row of one calendar, oldest first."""
    return list(Channel.select().where(Channel.calendar == calendar_pk).order_by(Channel.id))


def all_rows() -> list[Channel]:
    """Every row, oldest first (the manager groups them by calendar)."""
    return list(Channel.select().order_by(Channel.id))


def owned_by(owner: str) -> list[Channel]:
    """Live channels this process opened (stopped on SIGTERM)."""
    return list(Channel.select().where((Channel.owner == owner) & Channel.state.in_(LIVE_STATES))
                .order_by(Channel.id))


def expiration_from_ms(value: object, fallback: dt.datetime) -> dt.datetime:
    """The ``expiration`` of an ``api#channel`` (ms, as a number or a string) as naive UTC."""
    try:
        ms = int(str(value))
    except (TypeError, ValueError):
        return fallback
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).replace(tzinfo=None)


def claim_calendar(calendar_pk: int, owner: str, seconds: float) -> bool:
    """Take the calendar's short channel-work claim (free, expired, or already ours).

    A conditional UPDATE, so of several processes exactly one gets it; it is
    independent of the sync lease, so channel work never makes a sync wait.
    """
    now = utcnow()
    return bool(Calendar.update(watch_owner=owner, watch_until=now + dt.timedelta(seconds=seconds))
                .where((Calendar.id == calendar_pk)
                       & (Calendar.watch_owner.is_null() | (Calendar.watch_until < now)
                          | (Calendar.watch_owner == owner)))
                .execute())


def release_calendar(calendar_pk: int, owner: str) -> None:
    """Give the channel-work claim back."""
    (Calendar.update(watch_owner=None, watch_until=None)
     .where((Calendar.id == calendar_pk) & (Calendar.watch_owner == owner)).execute())
