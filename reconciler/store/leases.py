"""Calendar leases, one module for every kind: at most one process does a kind of work at a time.

A lease is a pair of columns on the calendar row (owner, expiry) taken with a
single conditional UPDATE, so it works the same on SQLite, MySQL and
PostgreSQL with no coordinator beside the database. The owner string names the
host, the pid and a random id; a lease whose owner ran on this host and is no
longer alive is taken over at once, so a ``once`` after a crash never waits.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from dataclasses import dataclass
from functools import partial

import peewee

from reconciler.clock import utcnow
from reconciler.outcome import CalendarState
from reconciler.store.bulk import bound, cached_statement, execute_cached, slot
from reconciler.store.calendars import state_of
from reconciler.store.db import dialect
from reconciler.store.dberrors import map_db_errors
from reconciler.store.models import Calendar, database_proxy

BATCH_LIMIT = 500  # ids per IN (...): well under every driver's parameter limit


def make_owner() -> str:
    """This process's lease owner id: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_is_dead_here(owner: str) -> bool:
    """Whether ``owner`` ran on this host and its process no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


@dataclass(frozen=True)
class LeaseKind:
    """One kind of lease: the calendar row's columns it lives in, and its rules.

    ``sync`` (a pass; renewed during long ones) and ``watch`` (a short claim on
    a calendar's channel work, so channel work never makes a sync wait) are
    the same conditional UPDATE on different columns.
    """

    name: str
    owner: peewee.Field
    until: peewee.Field
    since: peewee.Field | None = None  # when the held lease was taken (status shows it)
    take_over_dead: bool = False  # a dead local owner's lease is taken at once


SYNC = LeaseKind("sync", Calendar.lease_owner, Calendar.lease_expires, Calendar.lease_since,
                 take_over_dead=True)
WATCH = LeaseKind("watch", Calendar.watch_owner, Calendar.watch_until)


# The lease statements are rendered once per dialect (and batch width) and bound
# per call (bulk.execute_cached): a no-change poll is mostly this bookkeeping.
def _free_expired_or_ours(kind: LeaseKind = SYNC) -> peewee.Expression:
    """Slot 0 is the owner, slot 2 the current time."""
    return (kind.owner.is_null()
            | (kind.until < slot(2, kind.until))
            | (kind.owner == slot(0, kind.owner)))


def _take_lease(kind: LeaseKind = SYNC) -> peewee.Query:
    """The UPDATE every claim shares: slots 0 owner, 1 expiry, 2 now (``since``)."""
    values = {kind.owner: slot(0, kind.owner), kind.until: slot(1, kind.until)}
    if kind.since is not None:
        values[kind.since] = slot(2, kind.since)
    return Calendar.update(values)


def _build_take(kind: LeaseKind) -> peewee.Query:
    return _take_lease(kind).where((Calendar.id == slot(3, Calendar.id))
                                   & _free_expired_or_ours(kind))


def _build_claim_many(width: int) -> peewee.Query:
    ids = [slot(3 + i, Calendar.id) for i in range(width)]
    return _take_lease().where(Calendar.id.in_(ids) & _free_expired_or_ours())


def _build_read_held(width: int) -> peewee.Query:
    """The rows of ``width`` ids that slot 0 holds; parameters in that order."""
    ids = [slot(1 + i) for i in range(width)]
    return Calendar.select().where((Calendar.lease_owner == slot(0)) & Calendar.id.in_(ids))


@map_db_errors()
def take(kind: LeaseKind, calendar_pk: int, owner: str, seconds: float) -> bool:
    """Take a calendar's lease of ``kind`` if it is free, expired, ours, or (when the kind
    says so) held by a dead local process. One conditional UPDATE, so of several
    processes exactly one gets it."""
    now = utcnow()
    expires = now + dt.timedelta(seconds=seconds)
    cursor = execute_cached(f"take-{kind.name}", partial(_build_take, kind),
                            (owner, expires, now, calendar_pk))
    if database_proxy.obj.rows_affected(cursor):
        return True
    if not kind.take_over_dead:
        return False
    holder = Calendar.select(kind.owner).where(Calendar.id == calendar_pk).scalar()
    if holder and holder != owner and owner_is_dead_here(holder):
        values = {kind.owner: owner, kind.until: expires}
        if kind.since is not None:
            values[kind.since] = now
        return bool(Calendar.update(values)
                    .where((Calendar.id == calendar_pk) & (kind.owner == holder)).execute())
    return False


@map_db_errors()
def give_back(kind: LeaseKind, calendar_pk: int, owner: str) -> None:
    """Release a lease of ``kind`` we hold (another process may take it at once)."""
    (Calendar.update({kind.owner: None, kind.until: None})
     .where((Calendar.id == calendar_pk) & (kind.owner == owner)).execute())


def claim(calendar_pk: int, owner: str, lease_seconds: float) -> bool:
    """Take the calendar's sync lease if it is free, expired, ours, or held by a dead
    local process."""
    return take(SYNC, calendar_pk, owner, lease_seconds)


@map_db_errors()
def claim_many(calendar_pks: list[int], owner: str,
               lease_seconds: float) -> dict[int, CalendarState]:
    """Take every lease of ``calendar_pks`` that is free, expired or ours, in one
    conditional UPDATE per ``BATCH_LIMIT`` ids; return the rows now held, read
    under the lease, by primary key. Calendars missing from the result were not
    taken (held by another owner, or gone)."""
    held: dict[int, CalendarState] = {}
    for start in range(0, len(calendar_pks), BATCH_LIMIT):
        chunk = calendar_pks[start:start + BATCH_LIMIT]
        now = utcnow()
        expires = now + dt.timedelta(seconds=lease_seconds)
        width = len(chunk)
        cursor = execute_cached("claim_many", partial(_build_claim_many, width),
                                (owner, expires, now, *chunk), variant=(width,))
        if not database_proxy.obj.rows_affected(cursor):
            continue
        sql, binds = cached_statement(("claim_many_read", dialect(database_proxy.obj), width),
                                      partial(_build_read_held, width))
        for row in Calendar.raw(sql, *bound(binds, (owner, *chunk))):
            held[int(row.id)] = state_of(row)
    return held


@map_db_errors()
def renew(calendar_pk: int, owner: str, lease_seconds: float) -> bool:
    """Extend our lease; False means it was lost (expired and taken by another)."""
    expires = utcnow() + dt.timedelta(seconds=lease_seconds)
    return bool(Calendar.update(lease_expires=expires)
                .where((Calendar.id == calendar_pk) & (Calendar.lease_owner == owner))
                .execute())


def release(calendar_pk: int, owner: str) -> None:
    """Give the sync lease back so another process may sync the calendar at once."""
    give_back(SYNC, calendar_pk, owner)


@map_db_errors()
def release_all(owner: str) -> int:
    """Release every lease this process holds (shutdown)."""
    return int(Calendar.update(lease_owner=None, lease_expires=None)
               .where(Calendar.lease_owner == owner).execute())


@map_db_errors()
def holder_of(calendar_pk: int) -> str | None:
    """The current lease owner, for messages."""
    value = Calendar.select(Calendar.lease_owner).where(Calendar.id == calendar_pk).scalar()
    return str(value) if value else None


@map_db_errors()
def held_by(calendar_pk: int) -> tuple[str, dt.datetime | None] | None:
    """(owner, since when) of the calendar's lease, for a "waiting for ..." line; None: free."""
    row = (Calendar.select(Calendar.lease_owner, Calendar.lease_since)
           .where(Calendar.id == calendar_pk).tuples().first())
    if row is None or not row[0]:
        return None
    return str(row[0]), row[1]
