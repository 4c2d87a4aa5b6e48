"""MySQL and MariaDB over PyMySQL: utf8mb4, strict mode, GET_LOCK, fast bulk literals.

* Connections: ``utf8mb4`` (emoji titles); ``FOUND_ROWS`` so an UPDATE reports
  rows matched, not changed (a lease renewed within the same second still
  counts); connect, read and write time-outs, so a pass fails instead of
  hanging on a server that stopped answering; ``STRICT_ALL_TABLES`` on every
  new connection (also those opened by reconnects).
* Surviving a server restart: Peewee's ``ReconnectMixin`` runs a statement
  outside a transaction again on a fresh connection; inside one it fails (the
  transaction unwinds), and the next statement reconnects.
* Schema: ``LONGTEXT`` for raw JSON over 64 KB, tables converted to
  ``utf8mb4_bin``, an index a foreign key uses dropped with ``ALTER TABLE``.
* Bulk writes: the driver's ``executemany`` with long strings and datetimes
  pre-rendered as literals (byte-identical to PyMySQL's, faster).

PyMySQL is imported only when a ``mysql://`` URL is opened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

import peewee
from playhouse.shortcuts import ReconnectMixin

from reconciler.store import _drivers
from reconciler.store.dialects import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    WRITE_TIMEOUT,
    Dialect,
    LongText,
)
from reconciler.store.dialects._pool import BoundedPool

FIELD_TYPES = {"LONGTEXT": "LONGTEXT"}

# Client and server codes meaning "no usable connection".
UNAVAILABLE = frozenset({
    0,  # PyMySQL's InterfaceError(0, '') on a closed connection
    1040,  # too many connections
    1053,  # server shutdown in progress
    1927,  # connection was killed (MariaDB)
    2002, 2003, 2005, 2006, 2013, 2055,  # cannot connect, gone away, lost connection
    4031,  # disconnected by the server for inactivity
})
UNKNOWN_DATABASE = 1049
# Lock conflicts the server resolved by rolling back one transaction: run it again.
CONFLICT = frozenset({1213, 1205})  # deadlock found; lock wait timeout exceeded

_EXTRA_RECONNECT_ERRORS = (
    (peewee.InterfaceError, "already closed"),
    (peewee.OperationalError, "2055"),  # Lost connection (socket error)
    (peewee.OperationalError, "timed out"),
)


class _StrictMySQLDatabase(peewee.MySQLDatabase):
    """Strict mode on every new connection (a pool check-out reuses the session)."""

    def _connect(self) -> Any:
        conn = super()._connect()
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')")
        return conn


class PooledMySQLDatabase(ReconnectMixin, BoundedPool, _StrictMySQLDatabase):
    """The pooled MySQL/MariaDB database of the store (see the module doc)."""

    reconnect_errors = ReconnectMixin.reconnect_errors + _EXTRA_RECONNECT_ERRORS

    def _is_dead(self, conn: Any) -> bool:
        return not getattr(conn, "open", True)

    def _can_reuse(self, conn: Any) -> bool:
        return not self._is_dead(conn)


def _code(orig: BaseException) -> int | None:
    args = orig.args
    return args[0] if args and isinstance(args[0], int) else None


class _Literal:
    """A value already rendered as a MySQL literal; PyMySQL's encoder hands it on."""

    __slots__ = ("sql",)

    def __init__(self, sql: str) -> None:
        self.sql = sql


def _encode_literal(value: _Literal, mapping: Any = None) -> str:
    return value.sql


# Strings at least this long are escaped with str.replace (memchr-fast) rather
# than PyMySQL's str.translate, which costs ~15 ns per character (26 us for a
# 1.5 KB event: a third of a MariaDB sync's CPU); short ones are not worth a wrapper.
_LONG = 64


def _mysql_escape(text: str) -> str:
    """The same text as ``pymysql.converters.escape_string`` (without quotes)."""
    return (text.replace("\\", "\\\\").replace("\0", "\\0").replace("\n", "\\n")
            .replace("\r", "\\r").replace("\x1a", "\\Z").replace("'", "\\'")
            .replace('"', '\\"'))


def _mysql_literals(conn: Any, rows: Any) -> Any:
    """Rows whose long strings and datetimes are pre-rendered MySQL literals.

    The SQL sent is byte-for-byte what PyMySQL would render (same escapes,
    ``str(datetime)`` is PyMySQL's datetime format); only the escaping is
    faster. A server in ``NO_BACKSLASH_ESCAPES`` mode gets PyMySQL's own path.
    """
    from pymysql.constants import SERVER_STATUS

    if conn.server_status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES:
        return rows
    if _Literal not in conn.encoders:
        conn.encoders[_Literal] = _encode_literal
    datetime, date = dt.datetime, dt.date

    def literal(value: Any) -> Any:
        kind = type(value)
        if kind is str:
            return _Literal(f"'{_mysql_escape(value)}'") if len(value) >= _LONG else value
        if kind is datetime or kind is date:
            if kind is datetime and value.tzinfo is not None:
                return value  # PyMySQL's own rendering (ignores the offset)
            return _Literal(f"'{value}'")
        return value

    return (tuple([literal(value) for value in row]) for row in rows)


def _load_pymysql() -> type[BaseException]:
    import pymysql

    if getattr(peewee, "mysql", None) is None:
        peewee.mysql = pymysql
    return pymysql.err.Error


class MySQLDialect(Dialect):
    """MySQL and MariaDB."""

    name = "mysql"
    backend = "mysql"
    peewee_class = peewee.MySQLDatabase
    database_class = PooledMySQLDatabase
    bulk_executemany = True

    def load_driver(self) -> None:
        _drivers.load(_load_pymysql)

    def connect_params(self) -> dict[str, Any]:
        from pymysql.constants import CLIENT

        return {"charset": "utf8mb4", "field_types": FIELD_TYPES,
                "connect_timeout": CONNECT_TIMEOUT, "read_timeout": READ_TIMEOUT,
                "write_timeout": WRITE_TIMEOUT, "client_flag": CLIENT.FOUND_ROWS}

    @contextlib.contextmanager
    def advisory_lock(self, db: peewee.Database, name: str, timeout: int) -> Iterator[None]:
        db.execute_sql("SELECT GET_LOCK(%s, %s)", (name, timeout))
        try:
            yield
        finally:
            db.execute_sql("SELECT RELEASE_LOCK(%s)", (name,))

    def upsert(self, query: Any, conflict_target: Any, preserve: Any) -> Any:
        return query.on_conflict(preserve=list(preserve))  # ON DUPLICATE KEY UPDATE

    def bulk_params(self, cursor: Any, rows: Iterable[tuple[Any, ...]]) -> Iterable[tuple[Any, ...]]:
        return _mysql_literals(cursor.connection, rows)

    def long_text(self) -> type[peewee.TextField]:
        return LongText

    def after_create(self, db: peewee.Database, tables: Iterable[str]) -> None:
        for table in tables:
            db.execute_sql(f"ALTER TABLE `{table}` "
                           "CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")

    def drop_index(self, migrator: Any, db: peewee.Database, table: str, index: str) -> None:
        # InnoDB lets the foreign key use another index instead.
        db.execute_sql(f"ALTER TABLE `{table}` DROP INDEX `{index}`")

    def is_unavailable(self, orig: BaseException) -> bool:
        return _code(orig) in UNAVAILABLE

    def is_conflict(self, orig: BaseException) -> bool:
        return _code(orig) in CONFLICT

    def error_code(self, orig: BaseException) -> str:
        code = _code(orig)
        return f"MySQL error {code}" if code else ""

    def is_missing_database(self, error: BaseException) -> bool:
        return _code(error) == UNKNOWN_DATABASE

    def create_database(self, name: str, user: str) -> str | None:
        quoted = "`" + name.replace("`", "``") + "`"
        return f"CREATE DATABASE {quoted} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"


DIALECT: Dialect = MySQLDialect()
