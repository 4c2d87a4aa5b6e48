"""Map database errors into the project's tree at the store boundary.

Peewee wraps driver errors (PyMySQL, psycopg2, sqlite3) in its own classes,
whose text is a tuple repr such as ``(2013, 'Lost connection ...')`` or
``(0, '')``. Callers of the store should neither know those classes nor show
that text: every public store function runs inside :func:`map_db_errors`
(as httpx's ``map_httpcore_exceptions`` does for its transport), which turns
them into :class:`~reconciler.errors.DatabaseUnavailable` (the server cannot
be reached or went away: retry later) or :class:`~reconciler.errors.StoreError`
(anything else), each with a one-line message.

Causes a user can act on are named: SQLite's "database or disk is full" is
"disk full at /abs/path.db", a read-only file "cannot write /abs/path.db:
read-only"; the "cannot rollback - no transaction is active" that SQLite
raises after it already rolled back on a full disk is replaced by the error
that caused it; an error without text names its class and code, never
``(0, '')``.

Deadlocks and serialization failures (MySQL 1213 and 1205, PostgreSQL 40P01
and 40001) are not failures of the pass: :func:`retry_conflicts` runs the
transaction again at once, after a short random pause, a few times.

Invariants: project errors pass through untouched (nesting is harmless);
non-database exceptions pass through untouched; the original error stays
chained as ``__cause__`` for logs at DEBUG.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

import peewee

from reconciler.errors import DatabaseUnavailable, StoreError, first_line
from reconciler.store import _drivers, dialects
from reconciler.store.dialects._pool import PoolExhausted
from reconciler.store.models import database_proxy

log = logging.getLogger("reconciler.store")
P = ParamSpec("P")
R = TypeVar("R")

_TEXT_UNAVAILABLE = (
    "server closed the connection", "connection already closed", "could not connect",
    "connection refused", "terminating connection", "the database system is",
    "unable to open database file", "no connection to the server", "connection is closed",
    "lost connection", "gone away", "can't connect",
)

CONFLICT_ATTEMPTS = 4


def _retried() -> tuple[type[BaseException], ...]:
    """What a retried function may raise: driver errors (those loaded so far), and ours."""
    return (*_drivers.ERRORS, StoreError)


def _original(exc: BaseException) -> BaseException:
    """The driver's exception behind Peewee's wrapper (``orig``, or ``args[0]`` before 3.17).

    A project error made from a driver error (a nested ``map_db_errors``)
    gives back that driver error; SQLite's "cannot rollback" after it already
    rolled back gives the error that made it roll back.
    """
    if isinstance(exc, StoreError) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, peewee.PeeweeException):
        if isinstance(getattr(exc, "orig", None), BaseException):  # Peewee 3.17+
            exc = exc.orig
        elif exc.args and isinstance(exc.args[0], BaseException):
            exc = exc.args[0]
        elif exc.__cause__ is not None:
            exc = exc.__cause__
        elif (isinstance(exc.__context__, _drivers.ERRORS)
              and not isinstance(exc.__context__, peewee.PeeweeException)):
            exc = exc.__context__  # raised while handling the driver's error
    if "cannot rollback" in str(exc) and isinstance(exc.__context__, _drivers.ERRORS):
        return _original(exc.__context__)
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


def _code(orig: BaseException) -> str:
    """The driver's error code as text ("MySQL error 1146", "SQLSTATE 42P01"), or ""."""
    for found in dialects.registered():
        code = found.error_code(orig)
        if code:
            return code
    return ""


def is_conflict(exc: BaseException) -> bool:
    """Whether an error is a deadlock or serialization failure (run the transaction again)."""
    orig = _original(exc)
    return any(found.is_conflict(orig) for found in dialects.registered())


def _named_cause(orig: BaseException) -> str | None:
    """A message naming what to fix (a full disk, a read-only file), from the dialects."""
    db = database_proxy.obj
    for found in dialects.registered():
        named = found.named_cause(orig, db)
        if named is not None:
            return named
    return None


def is_unavailable(exc: BaseException) -> bool:
    """Whether a driver or Peewee error means the server cannot be reached or went away."""
    orig = _original(exc)
    if any(found.is_unavailable(orig) for found in dialects.registered()):
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
    orig = _original(exc)
    named = _named_cause(orig)
    if named is not None:
        return StoreError(named)
    detail = _detail(orig)
    if is_unavailable(exc):
        return DatabaseUnavailable(
            f"database connection lost ({detail}); will retry" if detail
            else "database connection lost; will retry")
    if is_conflict(exc):
        return StoreError(f"database deadlock or serialization failure "
                          f"({detail or _code(orig)}); will retry")
    if not detail:
        code = _code(orig)
        detail = f"{type(orig).__name__} {code}".strip() if code else (
            f"{type(orig).__name__} without a message")
    return StoreError(f"database error: {detail}")


def retry_conflicts(attempts: int = CONFLICT_ATTEMPTS, pause: float = 0.05,
                    sleep: Callable[[float], None] = time.sleep,
                    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function that runs one whole transaction: deadlocks are retried at once.

    The server already rolled the transaction back (or the transaction block
    did); it runs again after a random pause of up to ``pause * 2**n`` seconds
    (jitter keeps two colliding writers from colliding again), ``attempts``
    times in all. Inside an enclosing transaction nothing is retried: only its
    owner can start it again.
    """
    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            for attempt in range(1, attempts + 1):
                try:
                    return func(*args, **kwargs)
                except _retried() as exc:
                    db = database_proxy.obj
                    if (attempt == attempts or not is_conflict(exc)
                            or (db is not None and db.in_transaction())):
                        raise
                    log.info("%s: %s; retrying (attempt %d of %d)", func.__name__,
                             _detail(_original(exc)) or "deadlock", attempt + 1, attempts)
                    sleep(random.uniform(0, pause * 2 ** attempt))
            raise AssertionError("unreachable")  # pragma: no cover
        return run
    return decorate


def _pool_exhausted(exc: BaseException) -> DatabaseUnavailable:
    """The one line for a thread that waited in vain for a pooled connection."""
    db = database_proxy.obj
    size = getattr(db, "pool_size", "?")
    wait = getattr(db, "pool_timeout", 0.0)
    return DatabaseUnavailable(
        f"no free database connection after {wait:.0f}s: all {size} of this process's "
        "connections are busy ([database] pool_size; lower [sync] concurrency or raise "
        "pool_size within the server's connection limit)")


@contextlib.contextmanager
def map_db_errors(*, connect: bool = True) -> Iterator[None]:
    """Run a block of store code with a pooled connection; database errors leave it as
    ``StoreError``.

    The connection scope: a thread without a connection checks one out of the
    pool (waiting up to ``[database] pool_timeout``) and gives it back when the
    block ends, unless a transaction is still open; nested blocks share it.
    So no thread holds a connection between store calls (a pass waiting on
    Google holds none; ``connect=False``: no scope, for code that opens the
    database itself). Usable as a decorator too (``@map_db_errors()``),
    including on the store's public functions; nested use is harmless.
    """
    db = database_proxy.obj
    opened = False
    try:
        if connect and db is not None and db.is_closed():
            opened = bool(db.connect(reuse_if_open=True))
        yield
    except PoolExhausted as exc:
        raise _pool_exhausted(exc) from exc
    except _drivers.ERRORS as exc:
        raise translate_db_error(exc) from exc
    finally:
        if opened and not db.is_closed() and not db.in_transaction():
            try:
                db.close()  # back to the pool
            except Exception:  # a broken connection: dropped, the pool opens another
                log.debug("returning a database connection failed", exc_info=True)


__all__ = ["is_conflict", "is_unavailable", "map_db_errors", "retry_conflicts",
           "translate_db_error"]
