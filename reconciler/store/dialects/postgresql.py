"""PostgreSQL over psycopg2: keepalives, reconnects, advisory locks, SQLSTATE codes.

* Connections: a connect time-out, TCP keepalives and ``tcp_user_timeout``
  (libpq has no read time-out), so a pass fails instead of hanging when the
  server vanishes without closing its sockets.
* Surviving a server restart: Peewee's ``ReconnectMixin`` with PostgreSQL's
  "connection lost" messages; a statement outside a transaction runs again on
  a fresh connection, inside one it fails and the transaction unwinds.
* Bulk writes: Peewee's multi-row ``VALUES`` in batches (psycopg2's
  ``executemany`` is a round trip per row).
* Errors: SQLSTATE class 08 and 57P mean "no usable connection"; 40001 and
  40P01 are conflicts to run again.

psycopg2 is imported only when a ``postgresql://`` URL is opened.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import peewee
from playhouse.shortcuts import ReconnectMixin

from reconciler.store import _drivers
from reconciler.store.dialects import CONNECT_TIMEOUT, FIELD_TYPES, READ_TIMEOUT, Dialect
from reconciler.store.dialects._pool import BoundedPool

# libpq has no read time-out; keepalives and tcp_user_timeout find a peer that
# vanished (host down, network cut) within about this long.
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
             "keepalives_count": 3, "tcp_user_timeout": READ_TIMEOUT * 1000}
# SQLSTATE classes: 08 connection exception, 57P operator intervention.
UNAVAILABLE_PREFIXES = ("08", "57P")
CONFLICT = frozenset({"40001", "40P01"})  # serialization failure; deadlock detected

_RECONNECT_ERRORS = (
    (peewee.OperationalError, "server closed the connection"),
    (peewee.OperationalError, "terminating connection"),
    (peewee.OperationalError, "could not receive data"),
    (peewee.OperationalError, "could not send data"),
    (peewee.OperationalError, "ssl syscall error"),
    (peewee.OperationalError, "connection timed out"),
    (peewee.InterfaceError, "connection already closed"),
    (peewee.DatabaseError, "server closed the connection"),
)


class PooledPostgresqlDatabase(ReconnectMixin, BoundedPool, peewee.PostgresqlDatabase):
    """The pooled PostgreSQL database of the store (see the module doc)."""

    reconnect_errors = _RECONNECT_ERRORS

    def _is_dead(self, conn: Any) -> bool:
        return bool(getattr(conn, "closed", 0))

    def _can_reuse(self, conn: Any) -> bool:
        return bool(self._adapter.is_connection_reusable(conn))


def _load_psycopg2() -> type[BaseException]:
    import psycopg2
    from psycopg2 import extensions, extras

    if getattr(peewee, "psycopg2", None) is None:
        peewee.psycopg2 = psycopg2
        peewee.pg_extensions = extensions
        peewee.Json_pg2 = extras.Json
        extras.register_uuid()
    adapter = peewee.Psycopg2Adapter
    for attr, constant in (("txn_idle", "TRANSACTION_STATUS_IDLE"),
                           ("txn_inerror", "TRANSACTION_STATUS_INERROR"),
                           ("txn_unknown", "TRANSACTION_STATUS_UNKNOWN")):
        if not hasattr(adapter, attr):
            setattr(adapter, attr, getattr(extensions, constant))
    return psycopg2.Error


def _pgcode(orig: BaseException) -> str:
    code = getattr(orig, "pgcode", None)
    return code if isinstance(code, str) else ""


class PostgresqlDialect(Dialect):
    """PostgreSQL."""

    name = "postgres"
    backend = "postgresql"
    peewee_class = peewee.PostgresqlDatabase
    database_class = PooledPostgresqlDatabase

    def load_driver(self) -> None:
        _drivers.load(_load_psycopg2)

    def connect_params(self) -> dict[str, Any]:
        return {"field_types": FIELD_TYPES, "connect_timeout": CONNECT_TIMEOUT, **KEEPALIVE}

    @contextlib.contextmanager
    def advisory_lock(self, db: peewee.Database, name: str, timeout: int) -> Iterator[None]:
        key = int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "big") & 0x7FFFFFFFFFFFFFFF
        db.execute_sql("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (key,))

    def is_unavailable(self, orig: BaseException) -> bool:
        return _pgcode(orig).startswith(UNAVAILABLE_PREFIXES)

    def is_conflict(self, orig: BaseException) -> bool:
        return _pgcode(orig) in CONFLICT

    def error_code(self, orig: BaseException) -> str:
        code = _pgcode(orig)
        return f"SQLSTATE {code}" if code else ""

    def is_missing_database(self, error: BaseException) -> bool:
        text = str(error)
        return 'database "' in text and "does not exist" in text

    def create_database(self, name: str, user: str) -> str | None:
        quoted = '"' + name.replace('"', '""') + '"'
        owner = ' OWNER "' + user.replace('"', '""') + '"' if user else ""
        return f"CREATE DATABASE {quoted}{owner} ENCODING 'UTF8' TEMPLATE template0"


DIALECT: Dialect = PostgresqlDialect()
