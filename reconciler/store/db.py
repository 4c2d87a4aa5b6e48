"""Open the database named by a URL, with the settings each engine needs.

One place knows the dialect differences so the rest of the store does not:
SQLite gets WAL and a busy timeout (readers such as ``export`` run beside a
writing ``run``) and IMMEDIATE write transactions (no lock-upgrade deadlocks);
MySQL/MariaDB gets ``utf8mb4`` (emoji titles) over PyMySQL; PostgreSQL uses
psycopg2. Connection failures become :class:`DatabaseUnavailable` with a line
that names the URL without its password.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee
from playhouse.db_url import connect as connect_url

from reconciler.dburl import backend_of, driver_url, redact_url, sqlite_path
from reconciler.errors import DatabaseUnavailable

# Peewee's TextField is MySQL TEXT (64 KB); the raw JSON of an event with
# hundreds of attendees is larger.
FIELD_TYPES = {"LONGTEXT": "TEXT"}
MYSQL_FIELD_TYPES = {"LONGTEXT": "LONGTEXT"}


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
            "pragmas": {
                "journal_mode": "wal",
                "busy_timeout": 30_000,
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
                  "connect_timeout": 10, "client_flag": CLIENT.FOUND_ROWS}
    elif backend == "postgresql":
        params = {"field_types": FIELD_TYPES, "connect_timeout": 10}
    else:
        scheme = url.partition("://")[0]
        raise DatabaseUnavailable(
            f"database url {redact_url(url)}: unsupported scheme {scheme!r} "
            "(use sqlite:///, mysql:// or postgresql://)")
    try:
        db = connect_url(driver_url(url), unquote_password=True, unquote_user=True, **params)
        db.connect(reuse_if_open=True)
        if dialect(db) == "mysql":
            db.execute_sql("SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')")
    except peewee.PeeweeException as exc:
        raise DatabaseUnavailable(
            f"cannot open database {redact_url(url)}: {_first_line(exc)}") from exc
    except Exception as exc:  # driver errors (pymysql, psycopg2) are not Peewee's
        raise DatabaseUnavailable(
            f"cannot open database {redact_url(url)}: {_first_line(exc)}") from exc
    return db


def _first_line(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    text = str(cause).strip().splitlines()
    return text[0] if text else type(cause).__name__


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
