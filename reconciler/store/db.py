"""Open the database named by a URL, with the settings each engine needs.

One place knows the dialect differences so the rest of the store does not:
SQLite gets WAL and a busy timeout (readers such as ``export`` run beside a
writing ``run``) and IMMEDIATE write transactions (no lock-upgrade deadlocks);
MySQL/MariaDB gets ``utf8mb4`` (emoji titles) over PyMySQL; PostgreSQL uses
psycopg2. Connection failures become :class:`DatabaseUnavailable` with a line
that names the URL without its password.

Surviving a server restart (the connection factory, :func:`open_database`):

* MySQL and PostgreSQL connections come from :class:`ReconnectingMySQLDatabase`
  / :class:`ReconnectingPostgresqlDatabase` (Peewee's ``ReconnectMixin``): a
  statement outside a transaction that finds its connection dead reconnects and
  runs again; inside a transaction it fails (nothing is silently half-applied)
  and the transaction unwinds, and the thread's next statement reconnects.
  Peewee keeps one connection per thread, so this holds for every scheduler
  worker: a dead handle is dropped before it is used again, never kept.
* Every wait on the server is bounded: connect, read and write time-outs on
  PyMySQL, connect time-out plus TCP keepalives and ``tcp_user_timeout`` on
  psycopg2, so a pass in flight fails (and is retried with backoff) instead of
  hanging when the server dies without closing its sockets.
* Session settings (MySQL strict mode) are applied to every new connection,
  also those opened by worker threads and by reconnects, not just the first.

Privacy: a SQLite file holds sync tokens and every event, so it and its
``-wal``/``-shm`` side files are created with mode 0600 (the umask is
tightened while SQLite creates them, and existing files are left as they are).
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import peewee
from playhouse.db_url import parseresult_to_dict
from playhouse.shortcuts import ReconnectMixin

from reconciler.dburl import backend_of, driver_url, redact_url, sqlite_path
from reconciler.errors import DatabaseUnavailable, first_line
from reconciler.store._drivers import load_driver

# Peewee's TextField is MySQL TEXT (64 KB); the raw JSON of an event with
# hundreds of attendees is larger.
FIELD_TYPES = {"LONGTEXT": "TEXT"}
MYSQL_FIELD_TYPES = {"LONGTEXT": "LONGTEXT"}

# Bounds on every wait for a database server (seconds). A pass whose server
# stops answering fails after READ_TIMEOUT and is retried with backoff.
CONNECT_TIMEOUT = 5
# SQLite: how long opening a file waits for processes opening it at the same time.
OPEN_PATIENCE = 30.0
READ_TIMEOUT = 30
WRITE_TIMEOUT = 30
# PostgreSQL: libpq has no read time-out; keepalives and tcp_user_timeout find
# a peer that vanished (host down, network cut) within about this long.
PG_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                "keepalives_count": 3, "tcp_user_timeout": READ_TIMEOUT * 1000}

_POSTGRES_RECONNECT_ERRORS = (
    (peewee.OperationalError, "server closed the connection"),
    (peewee.OperationalError, "terminating connection"),
    (peewee.OperationalError, "could not receive data"),
    (peewee.OperationalError, "could not send data"),
    (peewee.OperationalError, "ssl syscall error"),
    (peewee.OperationalError, "connection timed out"),
    (peewee.InterfaceError, "connection already closed"),
    (peewee.DatabaseError, "server closed the connection"),
)
_MYSQL_EXTRA_RECONNECT_ERRORS = (
    (peewee.InterfaceError, "already closed"),
    (peewee.OperationalError, "2055"),  # Lost connection (socket error)
    (peewee.OperationalError, "timed out"),
)


class _DeadConnectionCheck:
    """Drop a thread's connection the driver already knows is dead, before using it.

    Peewee keeps one connection per thread; a worker whose connection broke
    mid-transaction would otherwise hand the corpse to its next statement.
    Closing a dead connection never raises: there is nothing left to close.
    """

    _lock: Any
    _state: Any

    def _is_dead(self, conn: Any) -> bool:
        raise NotImplementedError

    def cursor(self, named_cursor: Any = None) -> Any:
        state = self._state
        if not state.closed and not state.transactions and self._is_dead(state.conn):
            with contextlib.suppress(Exception):
                state.conn.close()
            state.reset()
        return super().cursor(named_cursor)  # type: ignore[misc]

    def _close(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            conn.close()


class ReconnectingMySQLDatabase(_DeadConnectionCheck, ReconnectMixin,
                                peewee.MySQLDatabase):
    """MySQL/MariaDB over PyMySQL that survives a server restart (see the module doc)."""

    reconnect_errors = ReconnectMixin.reconnect_errors + _MYSQL_EXTRA_RECONNECT_ERRORS

    def _is_dead(self, conn: Any) -> bool:
        return not getattr(conn, "open", True)

    def _initialize_connection(self, conn: Any) -> None:
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')")


class ReconnectingPostgresqlDatabase(_DeadConnectionCheck, ReconnectMixin,
                                     peewee.PostgresqlDatabase):
    """PostgreSQL over psycopg2 that survives a server restart (see the module doc)."""

    reconnect_errors = _POSTGRES_RECONNECT_ERRORS

    def _is_dead(self, conn: Any) -> bool:
        return bool(getattr(conn, "closed", 0))


class PrivateSqliteDatabase(peewee.SqliteDatabase):
    """SQLite whose database, WAL and shared-memory files are created 0600.

    They hold sync tokens and every event. SQLite gives its side files the
    mode of the database file; the process umask is tightened only while a
    connection opens (when the file is created and WAL mode is set), under a
    lock, and restored at once.
    """

    _umask_lock = threading.Lock()

    def connect(self, reuse_if_open: bool = False) -> bool:
        deadline = time.monotonic() + OPEN_PATIENCE
        delay = 0.02
        while True:
            try:
                return self._connect_private(reuse_if_open)
            except peewee.OperationalError as exc:
                # Switching a new file to WAL needs an exclusive lock, and SQLite
                # answers "locked" at once (no busy handler) when processes
                # opening together collide: wait a moment and try again.
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    raise
                if not self.is_closed():
                    self.close()
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)

    def _connect_private(self, reuse_if_open: bool) -> bool:
        with PrivateSqliteDatabase._umask_lock:
            old = os.umask(0o077)
            try:
                opened = bool(super().connect(reuse_if_open))
                if opened:  # WAL and -shm appear with the first read in WAL mode
                    self._state.conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
                return opened
            finally:
                os.umask(old)


def dialect(db: peewee.Database) -> str:
    """``sqlite``, ``mysql`` or ``postgres``."""
    if isinstance(db, peewee.SqliteDatabase):
        return "sqlite"
    if isinstance(db, peewee.MySQLDatabase):
        return "mysql"
    return "postgres"


def open_database(url: str) -> peewee.Database:
    """Connect to the database at ``url`` and check that it answers.

    Accepts every scheme of :data:`reconciler.dburl.SCHEMES` (``sqlite:///``,
    ``mysql://``, ``postgresql://`` and their aliases). A loaded config carries
    an absolute SQLite path, so the messages here name the file exactly.
    """
    backend = backend_of(url)
    params: dict[str, Any]
    if backend == "sqlite":
        path = sqlite_path(url)
        if path and path != ":memory:":
            parent = Path(path).parent
            if not parent.exists():
                raise DatabaseUnavailable(
                    f"database {redact_url(url)}: directory {parent} does not exist")
        params = {
            "pragmas": {  # in order: the busy timeout applies to the WAL switch
                "busy_timeout": 30_000,
                "journal_mode": "wal",
                "synchronous": "normal",
                "foreign_keys": 1,
            },
            "field_types": FIELD_TYPES,
            "check_same_thread": False,
        }
    elif backend == "mysql":
        from pymysql.constants import CLIENT

        # FOUND_ROWS: an UPDATE reports rows matched, not rows changed, so a
        # lease renewed within the same second still counts as renewed.
        params = {"charset": "utf8mb4", "field_types": MYSQL_FIELD_TYPES,
                  "connect_timeout": CONNECT_TIMEOUT, "read_timeout": READ_TIMEOUT,
                  "write_timeout": WRITE_TIMEOUT, "client_flag": CLIENT.FOUND_ROWS}
    elif backend == "postgresql":
        params = {"field_types": FIELD_TYPES, "connect_timeout": CONNECT_TIMEOUT,
                  **PG_KEEPALIVE}
    else:
        scheme = url.partition("://")[0]
        raise DatabaseUnavailable(
            f"database url {redact_url(url)}: unsupported scheme {scheme!r} "
            "(use sqlite:///, mysql:// or postgresql://)")
    try:
        load_driver(backend)
        db = _make_database(driver_url(url), backend, params)
        db.connect(reuse_if_open=True)
    except Exception as exc:  # Peewee's, and the drivers' (pymysql, psycopg2), which are not
        from reconciler.store.missingdb import missing_database_hint

        why = missing_database_hint(url, exc) or first_line(exc.__cause__ or exc)
        raise DatabaseUnavailable(f"cannot open database {redact_url(url)}: {why}") from exc
    return db


def _make_database(url: str, backend: str, params: dict[str, Any]) -> peewee.Database:
    """The database object for a driver ``url`` (not yet connected): this module's classes."""
    kwargs = parseresult_to_dict(urlsplit(url), unquote_password=True, unquote_user=True)
    kwargs.update(params)
    cls: type[peewee.Database]
    if backend == "sqlite":
        cls = PrivateSqliteDatabase
    elif backend == "mysql":
        cls = ReconnectingMySQLDatabase
    else:
        cls = ReconnectingPostgresqlDatabase
    return cls(**kwargs)


@contextlib.contextmanager
def write_transaction(db: peewee.Database) -> Iterator[None]:
    """A transaction that takes the write lock up front on SQLite.

    A deferred SQLite transaction that reads and then writes can fail at once
    with "database is locked" when another writer got there first; IMMEDIATE
    waits on the busy timeout instead.
    """
    if isinstance(db, peewee.SqliteDatabase):
        with db.atomic("IMMEDIATE"):
            yield
    else:
        with db.atomic():
            yield


@contextlib.contextmanager
def advisory_lock(db: peewee.Database, name: str, timeout: int = 120) -> Iterator[None]:
    """A cross-process lock on servers that have one (schema migrations).

    SQLite needs none: only one ``run`` may use a SQLite file, and its
    migrations run inside a transaction.
    """
    kind = dialect(db)
    if kind == "mysql":
        db.execute_sql("SELECT GET_LOCK(%s, %s)", (name, timeout))
        try:
            yield
        finally:
            db.execute_sql("SELECT RELEASE_LOCK(%s)", (name,))
    elif kind == "postgres":
        key = int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "big") & 0x7FFFFFFFFFFFFFFF
        db.execute_sql("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (key,))
    else:
        yield
