"""Map database errors into the project's tree at the store boundary.

Peewee wraps driver errors (PyMySQL, psycopg2, sqlite3) in its own classes,
whose text is a tuple repr such as ``(2013, 'Lost connection ...')`` or
``(0, '')``. Callers of the store should neither know those classes nor show
that text: every public store function runs inside :func:`map_db_errors`
(as httpx's ``map_httpcore_exceptions`` does for its transport), which turns
them into :class:`~reconciler.errors.DatabaseUnavailable` (the server cannot
be reached or went away: retry later) or :class:`~reconciler.errors.StoreError`
(anything else), each with a one-line message.

Invariants: project errors pass through untouched (nesting is harmless);
non-database exceptions pass through untouched; the original error stays
chained as ``__cause__`` for logs at DEBUG.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

import peewee

from reconciler.errors import DatabaseUnavailable, StoreError, first_line

# MySQL/MariaDB client and server codes meaning "no usable connection".
_MYSQL_UNAVAILABLE = frozenset({
    0,  # PyMySQL's InterfaceError(0, '') on a closed connection
    1040,  # too many connections
    1053,  # server shutdown in progress
    1927,  # connection was killed (MariaDB)
    2002, 2003, 2005, 2006, 2013, 2055,  # cannot connect, gone away, lost connection
    4031,  # disconnected by the server for inactivity
})
# PostgreSQL SQLSTATE classes: 08 connection exception, 57P operator intervention
# (admin shutdown, crash shutdown, cannot connect now).
_PG_UNAVAILABLE_PREFIXES = ("08", "57P")
_TEXT_UNAVAILABLE = (
    "server closed the connection", "connection already closed", "could not connect",
    "connection refused", "terminating connection", "the database system is",
    "unable to open database file", "no connection to the server", "connection is closed",
    "lost connection", "gone away", "can't connect",
)

DRIVER_ERRORS: tuple[type[BaseException], ...] = (peewee.PeeweeException, sqlite3.Error)
try:  # optional drivers: only the ones installed can raise
    import pymysql

    DRIVER_ERRORS += (pymysql.err.Error,)
except ImportError:  # pragma: no cover - PyMySQL is a dependency
    pass
try:
    import psycopg2

    DRIVER_ERRORS += (psycopg2.Error,)
except ImportError:  # pragma: no cover - psycopg2 is a dependency
    pass


def _original(exc: BaseException) -> BaseException:
    """The driver's exception behind Peewee's wrapper (Peewee puts it in ``args[0]``)."""
    if isinstance(exc, peewee.PeeweeException):
        if exc.args and isinstance(exc.args[0], BaseException):
            return exc.args[0]
        if exc.__cause__ is not None:
            return exc.__cause__
    return exc


def _detail(orig: BaseException) -> str:
    """One readable line from a driver error (PyMySQL's args are ``(code, text)``)."""
    args = orig.args
    if len(args) >= 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return first_line(args[1]) if args[1].strip() else ""
    text = str(orig)
    if not text.strip() or text.strip() in ("()", "(0, '')"):
        return ""
    return first_line(orig)


def is_unavailable(exc: BaseException) -> bool:
    """Whether a driver or Peewee error means the server cannot be reached or went away."""
    orig = _original(exc)
    args = orig.args
    if args and isinstance(args[0], int) and args[0] in _MYSQL_UNAVAILABLE:
        return True
    pgcode = getattr(orig, "pgcode", None)
    if isinstance(pgcode, str) and pgcode.startswith(_PG_UNAVAILABLE_PREFIXES):
        return True
    if type(orig).__name__ == "InterfaceError" or (
            isinstance(exc, peewee.InterfaceError) and orig is exc):
        return True  # a closed or unusable connection object
    text = str(orig).lower()
    return any(marker in text for marker in _TEXT_UNAVAILABLE)


def translate_db_error(exc: BaseException) -> StoreError:
    """The project error for a database error, with a one-line message."""
    if isinstance(exc, StoreError):
        return exc
    detail = _detail(_original(exc))
    if is_unavailable(exc):
        return DatabaseUnavailable(
            f"database connection lost ({detail}); will retry" if detail
            else "database connection lost; will retry")
    return StoreError(f"database error: {detail or type(_original(exc)).__name__}")


@contextlib.contextmanager
def map_db_errors() -> Iterator[None]:
    """Run a block of store code; database errors leave it as ``StoreError``.

    Usable as a decorator too (``@map_db_errors()``), including on the store's
    public functions; nested use is harmless.
    """
    try:
        yield
    except DRIVER_ERRORS as exc:
        raise translate_db_error(exc) from exc


__all__ = ["is_unavailable", "map_db_errors", "translate_db_error"]
