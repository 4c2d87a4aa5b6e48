"""Peewee without the database drivers it imports eagerly; each driver loaded when a URL needs it.

Peewee's own module imports psycopg2 and PyMySQL (and PyMySQL pulls in
cryptography) at import time, whatever the database. For a ``reconciler
once`` on SQLite that was ~25 ms of start-up and ~9 MB of resident memory
spent on drivers it never calls (bench/README.md, "Start-up" and "PERF3").

How: while Peewee (and ``playhouse.db_url``, whose ``postgres_ext`` imports
``psycopg2.extras``) is imported, the driver names map to ``None`` in
``sys.modules``, so their ``import`` raises ``ImportError`` and Peewee records
the driver as absent; the entries are removed right after, so any later
``import pymysql`` works as usual. :func:`load_driver` then imports the
driver a URL needs and gives Peewee what its own import would have set.

Invariants:

* This module runs before the first ``import peewee`` of a reconciler process:
  ``reconciler.store``'s ``__init__`` imports it first, and modules outside
  the store take Peewee's names from the store, never from ``peewee`` at the
  top (``tests/test_lazy_drivers.py`` checks a SQLite ``once`` imports
  neither driver). A process that imported Peewee before (a test runner) keeps
  its drivers; nothing here changes then.
* :func:`load_driver` runs before a MySQL or PostgreSQL database object is
  made (``db.open_database``), and is idempotent.
* A loaded driver's error class joins :data:`ERRORS`, which ``map_db_errors``
  catches, so what the driver raises is translated like any database error.
"""

from __future__ import annotations

import sqlite3
import sys
import threading

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
# PyMySQL's and psycopg2's once :func:`load_driver` has imported them (a driver
# never imported cannot raise). ``dberrors`` reads this at catch time.
ERRORS: tuple[type[BaseException], ...] = (peewee.PeeweeException, sqlite3.Error)


def _load_mysql() -> type[BaseException]:
    import pymysql

    if getattr(peewee, "mysql", None) is None:
        peewee.mysql = pymysql
    return pymysql.err.Error


def _load_postgresql() -> type[BaseException]:
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


def load_driver(backend: str) -> None:
    """Import the driver ``backend`` (``mysql``, ``postgresql``) uses; nothing for ``sqlite``."""
    global ERRORS
    if backend not in ("mysql", "postgresql"):
        return
    with _lock:
        error = _load_mysql() if backend == "mysql" else _load_postgresql()
        if error not in ERRORS:
            ERRORS = (*ERRORS, error)


__all__ = ["ERRORS", "load_driver"]
