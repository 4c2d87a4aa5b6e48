"""Open the database named by a URL through its dialect, as a bounded pool of connections.

What each backend needs (WAL and private files on SQLite, ``utf8mb4`` and
strict mode on MySQL/MariaDB, keepalives on PostgreSQL, reconnects after a
server restart, bounded waits on every server) lives in its dialect
(:mod:`reconciler.store.dialects`); this module picks the dialect of the URL,
makes the pooled database and checks that it answers. Connection failures
become :class:`DatabaseUnavailable` with a line that names the URL without
its password.

The pool (``[database] pool_size``, default :data:`DEFAULT_POOL_SIZE`) bounds
the connections of the whole process, whatever ``[sync] concurrency`` is: a
thread holds a connection only for the length of a store call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import peewee

from reconciler.dburl import backend_of, driver_url, redact_url
from reconciler.errors import DatabaseUnavailable, first_line
from reconciler.store.dialects import dialect_of, for_backend

DEFAULT_POOL_SIZE = 4
DEFAULT_POOL_TIMEOUT = 30.0


def dialect(db: peewee.Database) -> str:
    """The dialect's name (``sqlite``, ``mysql``, ``postgres``): a key of cached SQL text."""
    return dialect_of(db).name


def open_database(url: str, *, pool_size: int = DEFAULT_POOL_SIZE,
                  pool_timeout: float = DEFAULT_POOL_TIMEOUT) -> peewee.Database:
    """Connect to the database at ``url`` and check that it answers.

    Accepts every scheme of :data:`reconciler.dburl.SCHEMES` (``sqlite:///``,
    ``mysql://``, ``postgresql://`` and their aliases). A loaded config carries
    an absolute SQLite path, so the messages here name the file exactly. The
    calling thread keeps the connection it opened (give it back with
    ``db.close()``).
    """
    found = for_backend(backend_of(url))
    if found is None:
        scheme = url.partition("://")[0]
        raise DatabaseUnavailable(
            f"database url {redact_url(url)}: unsupported scheme {scheme!r} "
            "(use sqlite:///, mysql:// or postgresql://)")
    problem = found.check_url(url)
    if problem is not None:
        raise DatabaseUnavailable(problem)
    try:
        found.load_driver()
        db = found.database(driver_url(url), pool_size=pool_size, pool_timeout=pool_timeout)
        db.connect(reuse_if_open=True)
    except Exception as exc:  # Peewee's, and the drivers' (pymysql, psycopg2), which are not
        from reconciler.store.missingdb import missing_database_hint

        why = missing_database_hint(url, exc) or first_line(exc.__cause__ or exc)
        raise DatabaseUnavailable(f"cannot open database {redact_url(url)}: {why}") from exc
    return db


@contextlib.contextmanager
def write_transaction(db: peewee.Database) -> Iterator[None]:
    """A transaction that will write, as its dialect takes it (SQLite: IMMEDIATE).

    A deferred SQLite transaction that reads and then writes can fail at once
    with "database is locked" when another writer got there first; IMMEDIATE
    waits on the busy timeout instead.
    """
    with dialect_of(db).write_transaction(db):
        yield


@contextlib.contextmanager
def advisory_lock(db: peewee.Database, name: str, timeout: int = 120) -> Iterator[None]:
    """A cross-process lock on servers that have one (schema migrations).

    SQLite needs none: only one ``run`` may use a SQLite file, and its
    migrations run inside a transaction.
    """
    with dialect_of(db).advisory_lock(db, name, timeout):
        yield
