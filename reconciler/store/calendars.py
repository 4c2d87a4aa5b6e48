"""Calendar and account rows: which calendars exist, who syncs them, how they fared.

The calendar id is unique across accounts (a calendar is mirrored once); the
row remembers which account syncs it. State updates after a pass (success or
failure) are single UPDATE statements so they never race a running sync's
page writes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee

from reconciler.clock import utcnow
from reconciler.store.db import write_transaction
from reconciler.store.models import (
    Account,
    Calendar,
    Change,
    Channel,
    Event,
    database_proxy,
    key_of,
)


def ensure_account(name: str) -> Account:
    """The account row, created on first sight."""
    account, _ = Account.get_or_create(name=name)
    return account


def get_calendar(calendar_id: str) -> Calendar | None:
    """The row of a mirrored calendar, or None."""
    return Calendar.get_or_none(Calendar.calendar_key == key_of(calendar_id))


def _changes_for(row: Calendar, source: str, interval: int | None,
                 summary: str | None) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if row.removed:
        changes["removed"] = False
    if row.gone and source == "discover":
        changes["gone"] = False
    if interval != row.interval:
        changes["interval"] = interval
    if summary is not None and summary != row.summary:
        changes["summary"] = summary
    return changes


def ensure_calendar(calendar_id: str, account: str, *, source: str = "config",
                    interval: int | None = None, summary: str | None = None,
                    known: Calendar | None = None) -> Calendar:
    """Register a calendar to mirror under ``account``; an existing row keeps its state.

    A calendar seen again after being marked removed is un-removed; a calendar
    that another account already syncs stays with that account unless the
    caller reassigns it with :func:`reassign`. ``known`` is the row as the
    caller already read it: when nothing about it changes, no query is made.
    """
    if known is not None and not _changes_for(known, source, interval, summary):
        return known
    if known is None and get_calendar(calendar_id) is None:
        # Several `run` processes starting together race to create the row: the
        # losers' INSERT hits the unique key, and they use the winner's row.
        try:
            with database_proxy.obj.atomic():
                return Calendar.create(calendar_id=calendar_id, calendar_key=key_of(calendar_id),
                                       account=account, source=source, interval=interval,
                                       summary=summary)
        except peewee.IntegrityError:
            pass
    with write_transaction(database_proxy.obj):
        row = get_calendar(calendar_id)
        if row is None:  # deleted meanwhile (purge): create it again
            return Calendar.create(calendar_id=calendar_id, calendar_key=key_of(calendar_id),
                                   account=account, source=source, interval=interval,
                                   summary=summary)
        changes = _changes_for(row, source, interval, summary)
        if changes:
            Calendar.update(changes).where(Calendar.id == row.id).execute()
            for key, value in changes.items():
                setattr(row, key, value)
        return row


def reassign(calendar_pk: int, account: str) -> None:
    """Hand a calendar to another account (the previous one lost access)."""
    Calendar.update(account=account, gone=False).where(Calendar.id == calendar_pk).execute()


def mark_removed(calendar_pk: int) -> None:
    """Stop polling a calendar that left the calendar list; its rows stay."""
    Calendar.update(removed=True, sync_token=None).where(Calendar.id == calendar_pk).execute()


def record_success(calendar_pk: int, mode: str, owner: str,
                   extra: dict[str, Any] | None = None) -> None:
    """Note a successful pass and give the lease back, in one UPDATE.

    Clears the error streak, stores any cursor the engine handed back
    (``extra``), and releases the lease only if ``owner`` still holds it.
    """
    now = utcnow()
    ours = Calendar.lease_owner == owner
    columns: dict[Any, Any] = {
        Calendar.last_success: now, Calendar.last_attempt: now, Calendar.last_error: None,
        Calendar.last_error_kind: None, Calendar.consecutive_failures: 0,
        Calendar.last_mode: mode, Calendar.gone: False,
        Calendar.lease_owner: peewee.Case(None, [(ours, None)], Calendar.lease_owner),
        Calendar.lease_expires: peewee.Case(None, [(ours, None)], Calendar.lease_expires),
    }
    for name, value in (extra or {}).items():
        columns[getattr(Calendar, name)] = value
    Calendar.update(columns).where(Calendar.id == calendar_pk).execute()


def record_failure(calendar_pk: int, error: str, kind: str, *, gone: bool = False) -> int:
    """Note a failed pass; returns the new count of consecutive failures."""
    with write_transaction(database_proxy.obj):
        (Calendar.update(last_attempt=utcnow(), last_error=error[:2000], last_error_kind=kind,
                         consecutive_failures=Calendar.consecutive_failures + 1,
                         gone=gone)
         .where(Calendar.id == calendar_pk).execute())
        count = Calendar.select(Calendar.consecutive_failures).where(
            Calendar.id == calendar_pk).scalar()
    return int(count or 0)


def set_next_due(calendar_pk: int, when: dt.datetime) -> None:
    """When the scheduler should poll this calendar next (shown by ``status``)."""
    Calendar.update(next_due=when).where(Calendar.id == calendar_pk).execute()


def request_sync(calendar_pk: int) -> None:
    """Ask whichever process holds the calendar to poll it soon (a hint).

    Bumps ``sync_request_seq`` too, so a pass that was already running when the
    request came does not clear it (see :func:`clear_sync_request`).
    """
    Calendar.update(sync_requested_at=utcnow(),
                    sync_request_seq=Calendar.sync_request_seq + 1).where(
        Calendar.id == calendar_pk).execute()


def pending_requests() -> list[tuple[int, int]]:
    """``(calendar pk, request counter)`` of every calendar with a "sync soon" request."""
    query = (Calendar.select(Calendar.id, Calendar.sync_request_seq)
             .where(Calendar.sync_requested_at.is_null(False) & ~Calendar.removed))
    return [(int(pk), int(seq or 0)) for pk, seq in query.tuples()]


def clear_sync_request(calendar_pk: int, seen_seq: int) -> bool:
    """Mark the request answered by a pass that started at counter ``seen_seq``.

    Returns False when a newer request arrived meanwhile (it stays pending and
    deserves one more pass).
    """
    cleared = (Calendar.update(sync_requested_at=None)
               .where((Calendar.id == calendar_pk) & (Calendar.sync_request_seq == seen_seq))
               .execute())
    if cleared:
        return True
    pending = (Calendar.select(Calendar.id)
               .where((Calendar.id == calendar_pk) & Calendar.sync_requested_at.is_null(False))
               .exists())
    return not pending


def claim_auth_probe(name: str, now: dt.datetime, until: dt.datetime) -> bool:
    """Let one caller retry a ``needs_reauth`` account now; others wait until ``until``.

    A conditional UPDATE, so of all the calendars (and processes) of a parked
    account exactly one probes when the retry time comes.
    """
    return bool(Account.update(next_auth_retry=until)
                .where((Account.name == name) & (Account.state == "needs_reauth")
                       & (Account.next_auth_retry.is_null() | (Account.next_auth_retry <= now)))
                .execute())


def purge_calendar(calendar_pk: int) -> None:
    """Delete a removed calendar with its events, changes and channels (``purge_removed``)."""
    with write_transaction(database_proxy.obj):
        for model in (Channel, Change, Event):
            model.delete().where(model.calendar == calendar_pk).execute()
        Calendar.delete().where((Calendar.id == calendar_pk) & Calendar.removed).execute()


def set_account_state(name: str, state: str, error: str | None = None,
                      next_retry: dt.datetime | None = None) -> None:
    """Park an account as ``needs_reauth`` or bring it back to ``ok``."""
    ensure_account(name)
    values: dict[str, Any] = {"state": state, "last_error": error}
    if next_retry is not None or state == "ok":
        values["next_auth_retry"] = next_retry  # parking again keeps the planned retry time
    Account.update(values).where(Account.name == name).execute()
