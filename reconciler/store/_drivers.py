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
* A driver that raises registers its error class with ``dberrors``, so
  ``map_db_errors`` translates what it raises.
"""

from __future__ import annotations

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
_loaded: set[str] = set()
_on_load: list[Callable[[tuple[type[BaseException], ...]], None]] = []


def on_driver_errors(callback: Callable[[tuple[type[BaseException], ...]], None]) -> None:
    """Call ``callback`` with the error classes of each driver loaded (also those loaded already)."""
    with _lock:
        _on_load.append(callback)
        already = [_errors_of(name) for name in _loaded]
    for errors in already:
        callback(errors)


def _errors_of(backend: str) -> tuple[type[BaseException], ...]:
    if backend == "mysql":
        import pymysql

        return (pymysql.err.Error,)
    import psycopg2

    return (psycopg2.Error,)


def _load_mysql() -> None:
    import pymysql

    if getattr(peewee, "mysql", None) is None:
        peewee.mysql = pymysql


def _load_postgresql() -> None:
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


def load_driver(backend: str) -> None:
    """Import the driver ``backend`` (``mysql``, ``postgresql``) uses; nothing for ``sqlite``."""
    if backend not in ("mysql", "postgresql"):
        return
    with _lock:
        if backend in _loaded:
            return
        (_load_mysql if backend == "mysql" else _load_postgresql)()
        _loaded.add(backend)
        callbacks = list(_on_load)
    errors = _errors_of(backend)
    for callback in callbacks:
        callback(errors)


__all__ = ["load_driver", "on_driver_errors"]
