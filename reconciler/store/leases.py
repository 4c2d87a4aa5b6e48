"""Calendar leases: at most one process syncs a calendar at a time.

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

from reconciler.clock import utcnow
from reconciler.store.dberrors import map_db_errors
from reconciler.store.models import Calendar


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


@map_db_errors()
def claim(calendar_pk: int, owner: str, lease_seconds: float) -> bool:
    """Take the calendar's lease if it is free, expired, ours, or held by a dead local process."""
    now = utcnow()
    expires = now + dt.timedelta(seconds=lease_seconds)
    taken = (Calendar.update(lease_owner=owner, lease_expires=expires, lease_since=now)
             .where((Calendar.id == calendar_pk)
                    & (Calendar.lease_owner.is_null()
                       | (Calendar.lease_expires < now)
                       | (Calendar.lease_owner == owner)))
             .execute())
    if taken:
        return True
    holder = Calendar.select(Calendar.lease_owner).where(Calendar.id == calendar_pk).scalar()
    if holder and holder != owner and owner_is_dead_here(holder):
        return bool(Calendar.update(lease_owner=owner, lease_expires=expires, lease_since=now)
                    .where((Calendar.id == calendar_pk) & (Calendar.lease_owner == holder))
                    .execute())
    return False


@map_db_errors()
def renew(calendar_pk: int, owner: str, lease_seconds: float) -> bool:
    """Extend our lease; False means it was lost (expired and taken by another)."""
    expires = utcnow() + dt.timedelta(seconds=lease_seconds)
    return bool(Calendar.update(lease_expires=expires)
                .where((Calendar.id == calendar_pk) & (Calendar.lease_owner == owner))
                .execute())


@map_db_errors()
def release(calendar_pk: int, owner: str) -> None:
    """Give the lease back so another process may sync the calendar at once."""
    (Calendar.update(lease_owner=None, lease_expires=None)
     .where((Calendar.id == calendar_pk) & (Calendar.lease_owner == owner))
     .execute())


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
