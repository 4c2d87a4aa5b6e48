"""SQLite: WAL, a busy timeout, IMMEDIATE write transactions, private files.

Readers (``export``, ``status``) run beside a writing ``run``, so the file is
in WAL mode with a busy timeout; a write transaction takes the write lock up
front (``BEGIN IMMEDIATE``: no lock-upgrade deadlock). The database and its
``-wal``/``-shm`` side files hold sync tokens and every event, so they are
created with mode 0600. No advisory lock: one ``run`` per file (see
``daemon/singleton.py``), and a concurrent first start retries its migration.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee

from reconciler.dburl import redact_url, sqlite_path
from reconciler.store.dialects import FIELD_TYPES, Dialect
from reconciler.store.dialects._pool import BoundedPool

# How long opening a file waits for processes opening it at the same time.
OPEN_PATIENCE = 30.0
# SQLite primary result codes (``sqlite3.Error.sqlite_errorcode & 0xff``).
_SQLITE_READONLY = 8
_SQLITE_FULL = 13


class PrivateSqliteDatabase(peewee.SqliteDatabase):
    """SQLite whose database, WAL and shared-memory files are created 0600.

    SQLite gives its side files the mode of the database file; the process
    umask is tightened only while a connection opens (when the file is created
    and WAL mode is set), under a lock, and restored at once.
    """

    _umask_lock = threading.Lock()

    def _connect(self) -> Any:
        deadline = time.monotonic() + OPEN_PATIENCE
        delay = 0.02
        while True:
            try:
                return self._connect_private()
            except sqlite3.OperationalError as exc:
                # Switching a new file to WAL needs an exclusive lock, and SQLite
                # answers "locked" at once (no busy handler) when processes
                # opening together collide: wait a moment and try again.
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)

    def _connect_private(self) -> Any:
        with PrivateSqliteDatabase._umask_lock:
            old = os.umask(0o077)
            try:
                conn = super()._connect()
                try:  # WAL and -shm appear with the first read in WAL mode
                    conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
                except Exception:
                    conn.close()
                    raise
                return conn
            finally:
                os.umask(old)


class PooledPrivateSqliteDatabase(BoundedPool, PrivateSqliteDatabase):
    """The pooled SQLite database of the store."""

    def _is_dead(self, conn: Any) -> bool:
        try:
            conn.total_changes  # noqa: B018  (raises on a closed connection)
        except Exception:
            return True
        return False

    def _can_reuse(self, conn: Any) -> bool:
        try:
            if conn.in_transaction:
                conn.rollback()
        except Exception:
            return False
        return True


def _database_path(db: peewee.Database | None) -> str:
    """The absolute path of the SQLite database in use, or "the SQLite database"."""
    name = getattr(db, "database", None)
    if isinstance(name, str) and name and name != ":memory:":
        return os.path.abspath(name.removeprefix("file:").split("?", 1)[0])
    return "the SQLite database"


class SqliteDialect(Dialect):
    """SQLite (the default backend)."""

    name = "sqlite"
    backend = "sqlite"
    peewee_class = peewee.SqliteDatabase
    database_class = PooledPrivateSqliteDatabase
    bulk_executemany = True
    migration_retries = True

    def check_url(self, url: str) -> str | None:
        path = sqlite_path(url)
        if path and path != ":memory:":
            parent = Path(path).parent
            if not parent.exists():
                return f"database {redact_url(url)}: directory {parent} does not exist"
        return None

    def connect_params(self) -> dict[str, Any]:
        return {
            "pragmas": {  # in order: the busy timeout applies to the WAL switch
                "busy_timeout": 30_000,
                "journal_mode": "wal",
                "synchronous": "normal",
                "foreign_keys": 1,
            },
            "field_types": FIELD_TYPES,
            "check_same_thread": False,
        }

    @contextlib.contextmanager
    def write_transaction(self, db: peewee.Database) -> Iterator[None]:
        # A deferred transaction that reads and then writes can fail at once with
        # "database is locked"; IMMEDIATE waits on the busy timeout instead.
        with db.atomic("IMMEDIATE"):
            yield

    @contextlib.contextmanager
    def streaming_read(self, db: peewee.Database) -> Iterator[None]:
        yield  # WAL: a statement reads one snapshot already

    def upsert(self, query: Any, conflict_target: Any, preserve: Any) -> Any:
        return query.on_conflict(conflict_target=list(conflict_target), preserve=list(preserve))

    def named_cause(self, orig: BaseException, db: peewee.Database | None) -> str | None:
        if not isinstance(orig, sqlite3.Error):
            return None
        code = getattr(orig, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        text = str(orig).lower()
        if primary == _SQLITE_FULL or "database or disk is full" in text:
            return f"disk full at {_database_path(db)}; free some space (the pass is retried)"
        if primary == _SQLITE_READONLY or "readonly database" in text:
            return (f"cannot write {_database_path(db)}: read-only (check the file's and its "
                    "directory's permissions and the filesystem's mount options)")
        return None


DIALECT: Dialect = SqliteDialect()
