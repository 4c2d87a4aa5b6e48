"""Calendar and account rows: which calendars exist, who syncs them, how they fared.

The calendar id is unique across accounts (a calendar is mirrored once); the
row remembers which account syncs it. State updates after a pass (success or
failure) are single UPDATE statements so they never race a running sync's
page writes. Rows leave this module as :class:`~reconciler.outcome.CalendarState`
values for the engine and the scheduler, and a pass's
:class:`~reconciler.outcome.PassOutcome` comes back in one call
(:func:`record_success`). Every public function maps database errors into
``StoreError`` (see :mod:`reconciler.store.dberrors`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import peewee

from reconciler.clock import utcnow
from reconciler.outcome import CalendarState, PassOutcome
from reconciler.store import schedule
from reconciler.store.bulk import execute_cached, slot
from reconciler.store.db import write_transaction
from reconciler.store.dberrors import map_db_errors
from reconciler.store.models import (
    Account,
    Calendar,
    Change,
    Channel,
    Event,
    database_proxy,
    key_of,
)
from reconciler.store.records import AccountState, CalendarRow

_CALENDAR_COLUMNS = tuple(field.name for field in dataclasses.fields(CalendarRow))


def calendar_record(row: Calendar) -> CalendarRow:
    """The record of a calendar model row (the store hands out records, not models)."""
    return CalendarRow(*[getattr(row, name) for name in _CALENDAR_COLUMNS])


def account_state(row: Account) -> AccountState:
    """The record of an account model row."""
    return AccountState(id=int(row.id), name=str(row.name), state=str(row.state),
                        last_error=row.last_error, next_auth_retry=row.next_auth_retry,
                        primary_calendar_id=row.primary_calendar_id,
                        calendar_list_sync_token=row.calendar_list_sync_token)


@map_db_errors()
def ensure_account(name: str) -> AccountState:
    """The account row, created on first sight."""
    account, _ = Account.get_or_create(name=name)
    return account_state(account)


def _get_calendar(calendar_id: str) -> Calendar | None:
    return Calendar.get_or_none(Calendar.calendar_key == key_of(calendar_id))


@map_db_errors()
def get_calendar(calendar_id: str) -> CalendarRow | None:
    """The row of a mirrored calendar, or None."""
    row = _get_calendar(calendar_id)
    return calendar_record(row) if row is not None else None


@map_db_errors()
def calendar_ids() -> list[str]:
    """Every mirrored calendar's id (removed ones too), for "did you mean" checks."""
    return [str(cid) for (cid,) in Calendar.select(Calendar.calendar_id).tuples()]


@map_db_errors()
def live_calendars() -> list[CalendarRow]:
    """Every calendar not marked removed, by calendar id."""
    return [calendar_record(row) for row in
            Calendar.select().where(~Calendar.removed).order_by(Calendar.calendar_id)]


def _changes_for(row: Calendar | CalendarRow, source: str, interval: int | None,
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


@map_db_errors()
def ensure_calendar(calendar_id: str, account: str, *, source: str = "config",
                    interval: int | None = None, summary: str | None = None,
                    known: CalendarRow | None = None) -> CalendarRow:
    """Register a calendar to mirror under ``account``; an existing row keeps its state.

    A calendar seen again after being marked removed is un-removed; a calendar
    that another account already syncs stays with that account unless the
    caller reassigns it with :func:`reassign`. ``known`` is the row as the
    caller already read it: when nothing about it changes, no query is made.
    """
    if known is not None and not _changes_for(known, source, interval, summary):
        return known
    if known is None and _get_calendar(calendar_id) is None:
        # Several `run` processes starting together race to create the row: the
        # losers' INSERT hits the unique key, and they use the winner's row.
        try:
            with database_proxy.obj.atomic():
                return calendar_record(Calendar.create(
                    calendar_id=calendar_id, calendar_key=key_of(calendar_id), account=account,
                    source=source, interval=interval, summary=summary))
        except peewee.IntegrityError:
            pass
    with write_transaction(database_proxy.obj):
        row = _get_calendar(calendar_id)
        if row is None:  # deleted meanwhile (purge): create it again
            return calendar_record(Calendar.create(
                calendar_id=calendar_id, calendar_key=key_of(calendar_id), account=account,
                source=source, interval=interval, summary=summary))
        changes = _changes_for(row, source, interval, summary)
        if changes:
            Calendar.update(changes).where(Calendar.id == row.id).execute()
            for key, value in changes.items():
                setattr(row, key, value)
        return calendar_record(row)


@map_db_errors()
def reassign(calendar_pk: int, account: str) -> None:
    """Hand a calendar to another account (the previous one lost access)."""
    Calendar.update(account=account, gone=False).where(Calendar.id == calendar_pk).execute()


@map_db_errors()
def mark_removed(calendar_pk: int) -> None:
    """Stop polling a calendar that left the calendar list; its rows stay."""
    Calendar.update(removed=True, sync_token=None).where(Calendar.id == calendar_pk).execute()


@map_db_errors()
def record_success(calendar: CalendarState, owner: str, outcome: PassOutcome,
                   next_due: dt.datetime | None = None) -> None:
    """Note a successful pass, store its new cursor and give the lease back, in one UPDATE.

    Clears the error streak, stores the outcome's cursor (written only now,
    after every page of the pass was applied), the next due time when given,
    and releases the lease only if ``owner`` still holds it.
    """
    now = utcnow()
    cursor = outcome.cursor
    values: list[Any] = [now, outcome.mode, owner, calendar.pk]
    optional: list[tuple[peewee.Field, Any]] = []
    has_token = cursor.token_updated_at is not None
    if has_token:
        optional += [(Calendar.sync_token, cursor.sync_token),
                     (Calendar.token_updated_at, cursor.token_updated_at),
                     (Calendar.event_types, cursor.event_types)]
    if cursor.updated_min_cursor_ms is not None:
        optional.append((Calendar.updated_min_cursor_ms, cursor.updated_min_cursor_ms))
    if cursor.last_full_sync is not None:
        optional.append((Calendar.last_full_sync, cursor.last_full_sync))
    if next_due is not None:
        optional.append((Calendar.next_due, next_due))
    estimate = schedule.observed(calendar, outcome, now)
    if estimate is not None:  # the change-rate estimate rides in the same UPDATE
        optional += [(Calendar.change_rate, estimate.rate),
                     (Calendar.rate_weight, estimate.weight)]
    values += [value for _, value in optional]
    fields = tuple(field for field, _ in optional)

    def build() -> peewee.Query:
        ours = Calendar.lease_owner == slot(2, Calendar.lease_owner)
        columns: dict[Any, Any] = {
            Calendar.last_success: slot(0, Calendar.last_success),
            Calendar.last_attempt: slot(0, Calendar.last_attempt), Calendar.last_error: None,
            Calendar.last_error_kind: None, Calendar.consecutive_failures: 0,
            Calendar.last_mode: slot(1, Calendar.last_mode), Calendar.gone: False,
            Calendar.lease_owner: peewee.Case(None, [(ours, None)], Calendar.lease_owner),
            Calendar.lease_expires: peewee.Case(None, [(ours, None)], Calendar.lease_expires),
        }
        for offset, field in enumerate(fields, start=4):
            columns[field] = slot(offset, field)
        return Calendar.update(columns).where(Calendar.id == slot(3, Calendar.id))

    # The SQL is rendered once per set of optional columns and dialect (bulk.execute_cached).
    execute_cached("record_success", build, values, variant=tuple(f.name for f in fields))


def state_of(row: Calendar | CalendarRow) -> CalendarState:
    """The plain value of a calendar row, for the engine and the scheduler."""
    return CalendarState(
        pk=int(row.id), calendar_id=str(row.calendar_id), account=str(row.account),
        sync_token=row.sync_token or None, updated_min_cursor_ms=row.updated_min_cursor_ms,
        last_mode=row.last_mode, last_full_sync=row.last_full_sync,
        last_attempt=row.last_attempt, last_success=row.last_success, next_due=row.next_due,
        sync_requested_at=row.sync_requested_at,
        sync_request_seq=int(row.sync_request_seq or 0),
        consecutive_failures=int(row.consecutive_failures or 0), removed=bool(row.removed),
        event_types=row.event_types, interval=row.interval,
        change_rate=float(row.change_rate or 0.0),
        rate_weight=float(row.rate_weight or 0.0), planned_interval=row.planned_interval)


@map_db_errors()
def read_state(calendar_pk: int) -> CalendarState | None:
    """The calendar's current state, or None when its row is gone (purged)."""
    row = Calendar.get_or_none(Calendar.id == calendar_pk)
    return state_of(row) if row is not None else None


@map_db_errors()
def all_calendars() -> list[CalendarRow]:
    """Every calendar row, in one query."""
    return [calendar_record(row) for row in Calendar.select()]


@map_db_errors()
def removed_calendars() -> list[tuple[int, str]]:
    """``(pk, calendar id)`` of every calendar marked removed."""
    query = Calendar.select(Calendar.id, Calendar.calendar_id).where(Calendar.removed)
    return [(int(pk), str(cid)) for pk, cid in query.tuples()]


@map_db_errors()
def forget_sync_token(calendar_pk: int) -> None:
    """Drop a sync token Google rejected, so a failed resync never retries it."""
    Calendar.update(sync_token=None).where(Calendar.id == calendar_pk).execute()


@map_db_errors()
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


@map_db_errors()
def set_next_due(calendar_pk: int, when: dt.datetime) -> None:
    """When the scheduler should poll this calendar next (shown by ``status``)."""
    Calendar.update(next_due=when).where(Calendar.id == calendar_pk).execute()


@map_db_errors()
def request_sync(calendar_pk: int) -> None:
    """Ask whichever process holds the calendar to poll it soon (a hint).

    Bumps ``sync_request_seq`` too, so a pass that was already running when the
    request came does not clear it (see :func:`clear_sync_request`).
    """
    Calendar.update(sync_requested_at=utcnow(),
                    sync_request_seq=Calendar.sync_request_seq + 1).where(
        Calendar.id == calendar_pk).execute()


@map_db_errors()
def pending_requests() -> list[tuple[int, int]]:
    """``(calendar pk, request counter)`` of every calendar with a "sync soon" request."""
    query = (Calendar.select(Calendar.id, Calendar.sync_request_seq)
             .where(Calendar.sync_requested_at.is_null(False) & ~Calendar.removed))
    return [(int(pk), int(seq or 0)) for pk, seq in query.tuples()]


@map_db_errors()
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


@map_db_errors()
def claim_auth_probe(name: str, now: dt.datetime, until: dt.datetime) -> bool:
    """Let one caller retry a ``needs_reauth`` account now; others wait until ``until``.

    A conditional UPDATE, so of all the calendars (and processes) of a parked
    account exactly one probes when the retry time comes.
    """
    return bool(Account.update(next_auth_retry=until)
                .where((Account.name == name) & (Account.state == "needs_reauth")
                       & (Account.next_auth_retry.is_null() | (Account.next_auth_retry <= now)))
                .execute())


@map_db_errors()
def purge_calendar(calendar_pk: int) -> None:
    """Delete a removed calendar with its events, changes and channels (``purge_removed``)."""
    with write_transaction(database_proxy.obj):
        for model in (Channel, Change, Event):
            model.delete().where(model.calendar == calendar_pk).execute()
        Calendar.delete().where((Calendar.id == calendar_pk) & Calendar.removed).execute()


@map_db_errors()
def set_account_state(name: str, state: str, error: str | None = None,
                      next_retry: dt.datetime | None = None) -> None:
    """Park an account as ``needs_reauth`` or bring it back to ``ok``."""
    ensure_account(name)
    values: dict[str, Any] = {"state": state, "last_error": error}
    if next_retry is not None or state == "ok":
        values["next_auth_retry"] = next_retry  # parking again keeps the planned retry time
    Account.update(values).where(Account.name == name).execute()


@map_db_errors()
def get_account(name: str) -> AccountState | None:
    """The account row, or None."""
    row = Account.get_or_none(Account.name == name)
    return account_state(row) if row is not None else None


@map_db_errors()
def set_primary_calendar(name: str, calendar_id: str) -> None:
    """Remember what ``primary`` resolved to for an account."""
    Account.update(primary_calendar_id=calendar_id).where(Account.name == name).execute()


@map_db_errors()
def mark_account_ok(name: str) -> None:
    """Clear a ``needs_reauth`` park after a success (no write when already ok)."""
    Account.update(state="ok", last_error=None).where(
        (Account.name == name) & (Account.state != "ok")).execute()


@map_db_errors()
def retry_parked_accounts(now: dt.datetime) -> None:
    """Let every parked account be tried once now (a restart: credentials may be fixed)."""
    Account.update(next_auth_retry=now).where(
        (Account.state == "needs_reauth") & (Account.next_auth_retry > now)).execute()


@map_db_errors()
def consecutive_failures(calendar_pk: int) -> int:
    """The stored count of failed passes in a row (0 when the row is gone)."""
    value = Calendar.select(Calendar.consecutive_failures).where(
        Calendar.id == calendar_pk).scalar()
    return int(value or 0)

