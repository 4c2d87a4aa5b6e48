"""Peewee without the database drivers it imports eagerly; each driver loaded when a URL needs it.

Peewee's own module imports psycopg2 and PyMySQL (and PyMySQL pulls in
cryptography) at import time, whatever the database. For a ``reconciler
once`` on SQLite that was ~25 ms of start-up and ~9 MB of resident memory
spent on drivers it never calls (bench/README.md, "Start-up" and "PERF3").

How: while Peewee (and ``playhouse.db_url``, whose ``postgres_ext`` imports
``psycopg2.extras``) is imported, the driver names map to ``None`` in
``sys.modules``, so their ``import`` raises ``ImportError`` and Peewee records
the driver as absent; the entries are removed right after, so any later
``import pymysql`` works as usual. A dialect's loader (:func:`load`) then imports
the driver a URL needs and gives Peewee what its own import would have set.

Invariants:

* This module runs before the first ``import peewee`` of a reconciler process:
  ``reconciler.store``'s ``__init__`` imports it first, and modules outside
  the store take Peewee's names from the store, never from ``peewee`` at the
  top (``tests/test_lazy_drivers.py`` checks a SQLite ``once`` imports
  neither driver). A process that imported Peewee before (a test runner) keeps
  its drivers; nothing here changes then.
* A dialect's ``load_driver`` (:func:`load` with its loader) runs before a
  MySQL or PostgreSQL database object is made (``db.open_database``), and is
  idempotent.
* A loaded driver's error class joins :data:`ERRORS`, which ``map_db_errors``
  catches, so what the driver raises is translated like any database error.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Callable

# What Peewee imports at module level, besides sqlite3.
_DEFERRED = ("psycopg2", "psycopg2cffi", "psycopg", "pymysql", "MySQLdb")


def _import_peewee_without_drivers() -> None:
    if "peewee" in sys.modules:
        return
    blocked = [name for name in _DEFERRED if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # "import name" -> ImportError
    try:
        import peewee  # noqa: F401
        import playhouse.db_url  # noqa: F401
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


_import_peewee_without_drivers()

import peewee  # noqa: E402  (after the deferral above, on purpose)

_lock = threading.Lock()
# The exception classes a database call may raise: Peewee's and sqlite3's always,
# PyMySQL's and psycopg2's once :func:`load` has imported them (a driver
# never imported cannot raise). ``dberrors`` reads this at catch time.
ERRORS: tuple[type[BaseException], ...] = (peewee.PeeweeException, sqlite3.Error)


def load(loader: Callable[[], type[BaseException]]) -> None:
    """Run a dialect's driver ``loader`` (imports the driver, returns its error class) once.

    The error class joins :data:`ERRORS`. Idempotent; each dialect module
    (``store/dialects/*``) owns its loader, so this module knows no backend.
    """
    global ERRORS
    with _lock:
        error = loader()
        if error not in ERRORS:
            ERRORS = (*ERRORS, error)


__all__ = ["ERRORS", "load"]
