"""One object per database backend, in a small registry: every dialect difference lives here.

Why: the store used to branch on the backend in half a dozen modules and four
migrations; adding a backend meant finding every branch. Now a backend is one
module defining a :class:`Dialect` and one :func:`register` call (as Peewee's
``playhouse/db_url.py`` does with ``register_database``); the rest of the
store asks the dialect (:func:`dialect_of` a database, :func:`for_backend` a
URL's backend) and never compares names or database classes
(``tests/test_layers.py`` fails on such a branch outside this package).

What a dialect owns: the driver it loads (lazily: only for its own URL), the
database class and connection options (a bounded pool), the write
transaction, the advisory lock, upsert and bulk-statement differences, the
schema statements migrations need, and its error codes (unavailable,
conflict, a cause the user can act on).

Invariants: importing this package imports no database driver; a dialect's
``name`` is stable (it keys cached SQL text).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

import peewee
from playhouse.db_url import parseresult_to_dict

from reconciler.store import _drivers  # noqa: F401  (first: Peewee without eager drivers)

# Bounds on every wait for a database server (seconds). A pass whose server
# stops answering fails after READ_TIMEOUT and is retried with backoff.
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 30
WRITE_TIMEOUT = 30
# Peewee's TextField is MySQL TEXT (64 KB); the raw JSON of an event with
# hundreds of attendees is larger (``LongTextField`` in models.py).
FIELD_TYPES = {"LONGTEXT": "TEXT"}


class LongText(peewee.TextField):
    """TEXT that holds more than 64 KB where TEXT does not (MySQL's LONGTEXT)."""

    field_type = "LONGTEXT"


class Dialect:
    """What one backend does differently; the defaults are standard SQL (PostgreSQL-like)."""

    name: ClassVar[str]  # stable: keys cached SQL text ("sqlite", "mysql", "postgres")
    backend: ClassVar[str]  # the backend of reconciler.dburl ("sqlite", "mysql", "postgresql")
    peewee_class: ClassVar[type[peewee.Database]]  # Peewee's class of this backend
    database_class: ClassVar[type[peewee.Database]]  # ours: pooled, with the options below
    # write_many: one statement bound per row by the driver's executemany (fast on
    # drivers that prepare or fold rows), else Peewee's multi-row VALUES in batches.
    bulk_executemany: ClassVar[bool] = False
    # Migrations: a failed migration may be a concurrent first start (no advisory lock).
    migration_retries: ClassVar[bool] = False

    # -- connecting ------------------------------------------------------------------------

    def load_driver(self) -> None:
        """Import this backend's driver (only when a URL names it); idempotent."""

    def check_url(self, url: str) -> str | None:
        """A problem with ``url`` found before connecting (a missing folder), or None."""
        return None

    def connect_params(self) -> dict[str, Any]:
        """Keyword arguments of :attr:`database_class` besides those the URL gives."""
        return {"field_types": FIELD_TYPES, "connect_timeout": CONNECT_TIMEOUT}

    def database(self, url: str, *, pool_size: int, pool_timeout: float) -> peewee.Database:
        """The (not yet connected) database of a driver URL: a pool of ``pool_size``
        connections; a thread finding none free waits up to ``pool_timeout`` seconds."""
        kwargs = parseresult_to_dict(urlsplit(url), unquote_password=True, unquote_user=True)
        kwargs.update(self.connect_params())
        return self.database_class(max_connections=pool_size, timeout=pool_timeout, **kwargs)

    # -- transactions and locks ------------------------------------------------------------

    @contextlib.contextmanager
    def write_transaction(self, db: peewee.Database) -> Iterator[None]:
        """A transaction that will write."""
        with db.atomic():
            yield

    @contextlib.contextmanager
    def advisory_lock(self, db: peewee.Database, name: str, timeout: int) -> Iterator[None]:
        """A cross-process lock (schema migrations); none where the backend has none."""
        yield

    @contextlib.contextmanager
    def streaming_read(self, db: peewee.Database) -> Iterator[None]:
        """Where a long read runs: a transaction, so it sees one snapshot."""
        with db.atomic():
            yield

    # -- SQL differences -------------------------------------------------------------------

    def upsert(self, query: Any, conflict_target: Sequence[peewee.Field],
               preserve: Sequence[peewee.Field]) -> Any:
        """``query`` (an INSERT) replacing the ``preserve`` columns of an existing row."""
        return query.on_conflict(conflict_target=list(conflict_target), preserve=list(preserve))

    def bulk_params(self, cursor: Any, rows: Iterable[tuple[Any, ...]]) -> Iterable[tuple[Any, ...]]:
        """The rows as this driver's ``executemany`` is fastest given them."""
        return rows

    # -- migrations ------------------------------------------------------------------------

    def long_text(self) -> type[peewee.TextField]:
        """The field class of a column that outgrows 64 KB."""
        return peewee.TextField

    def after_create(self, db: peewee.Database, tables: Iterable[str]) -> None:
        """Statements after ``CREATE TABLE`` (MySQL: ``utf8mb4`` binary collation)."""

    def drop_index(self, migrator: Any, db: peewee.Database, table: str, index: str) -> None:
        """Drop an index (MySQL needs ``ALTER TABLE`` when a foreign key uses it)."""
        migrator.migrate(migrator.drop_index(table, index))

    # -- errors ----------------------------------------------------------------------------

    def is_unavailable(self, orig: BaseException) -> bool:
        """Whether a driver error of this backend means "no usable connection"."""
        return False

    def is_conflict(self, orig: BaseException) -> bool:
        """Whether a driver error is a deadlock or serialization failure (run it again)."""
        return False

    def error_code(self, orig: BaseException) -> str:
        """The driver's error code as text ("MySQL error 1146"), or ""."""
        return ""

    def named_cause(self, orig: BaseException, db: peewee.Database | None) -> str | None:
        """A one-line message naming what to fix (a full disk), or None."""
        return None

    def is_missing_database(self, error: BaseException) -> bool:
        """Whether a connection error says the database does not exist on the server."""
        return False

    def create_database(self, name: str, user: str) -> str | None:
        """The statement that creates database ``name`` as this project needs it (None:
        nothing to create, e.g. a SQLite file is made on first use)."""
        return None


_BY_BACKEND: dict[str, Dialect] = {}


def register(dialect: Dialect) -> Dialect:
    """Make ``dialect`` the one of its backend (a new backend: one module, this call)."""
    _BY_BACKEND[dialect.backend] = dialect
    return dialect


def registered() -> tuple[Dialect, ...]:
    """Every registered dialect (error classification asks each)."""
    return tuple(_BY_BACKEND.values())


def for_backend(backend: str | None) -> Dialect | None:
    """The dialect of a URL's backend (``reconciler.dburl.backend_of``), or None."""
    return _BY_BACKEND.get(backend or "")


def dialect_of(db: peewee.Database) -> Dialect:
    """The dialect of a database object: its class's, else the nearest registered base class."""
    found = getattr(db, "reconciler_dialect", None)
    if isinstance(found, Dialect):
        return found
    for dialect in _BY_BACKEND.values():
        if isinstance(db, dialect.peewee_class):
            return dialect
    raise LookupError(f"no dialect registered for {type(db).__name__}")


# The built-in backends (their modules import no driver at import time).
from reconciler.store.dialects import mysql, postgresql, sqlite  # noqa: E402

register(sqlite.DIALECT)
register(mysql.DIALECT)
register(postgresql.DIALECT)

__all__ = ["CONNECT_TIMEOUT", "FIELD_TYPES", "READ_TIMEOUT", "WRITE_TIMEOUT", "Dialect",
           "LongText", "dialect_of", "for_backend", "register", "registered"]
