"""The SQL mirror: models, migrations and the batched operations the engine needs.

``open_store`` is the one entry point: it connects, binds the models and brings
the schema up to date, so no command ever runs against an old schema.
``create=False`` (read-only commands) refuses to create a missing SQLite file:
a reader run in the wrong folder must not leave an empty database behind.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import StoreError
from reconciler.store import _drivers  # noqa: F401  (first: Peewee without eager drivers)
from reconciler.store.db import DEFAULT_POOL_SIZE, DEFAULT_POOL_TIMEOUT, open_database
from reconciler.store.dberrors import map_db_errors
from reconciler.store.migrate import migrate
from reconciler.store.models import database_proxy

if TYPE_CHECKING:
    import peewee


@map_db_errors(connect=False)
def open_store(url: str, *, run_migrations: bool = True, create: bool = True,
               pool_size: int = DEFAULT_POOL_SIZE,
               pool_timeout: float = DEFAULT_POOL_TIMEOUT) -> peewee.Database:
    """Connect to ``url``, bind the models to it and apply pending migrations.

    With ``create=False`` a SQLite file that does not exist raises ``StoreError``
    naming its absolute path, and nothing is created. The process then holds
    at most ``pool_size`` connections (``[database] pool_size``); the calling
    thread's connection goes back to the pool before this returns, so every
    thread, the main one included, holds one only during a store call.
    """
    if not create:
        missing = missing_sqlite_file(url)
        if missing is not None:
            raise StoreError(f"database {missing} does not exist (check [database] url or -c; "
                             "`reconciler once` or `reconciler init-db` creates it)")
    db = open_database(url, pool_size=pool_size, pool_timeout=pool_timeout)
    database_proxy.initialize(db)
    if run_migrations:
        migrate(db)
    close_thread_connection()
    return db


def missing_sqlite_file(url: str) -> Path | None:
    """The absolute path of the SQLite file ``url`` names when that file does not exist."""
    if not url.lower().startswith("sqlite") or ":///" not in url:
        return None
    path = url.split(":///", 1)[1].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    file = Path(path).absolute()
    return None if file.exists() else file


def is_open() -> bool:
    """Whether a store was opened in this process (:func:`open_store`)."""
    return database_proxy.obj is not None


def close_thread_connection() -> None:
    """Close this thread's database connection, whatever its state.

    Gives it back to the pool. Store calls do this themselves
    (:func:`~reconciler.store.dberrors.map_db_errors`); a thread that serves
    requests (``/metrics``, the watch receiver) also ends each with this, in
    case code outside a store call opened one, or to drop a broken connection.
    """
    db = database_proxy.obj
    # Only when this thread holds one (a thread-local look, no lock): Peewee's close and
    # connect share one process-wide lock, which a connect to a frozen server holds for
    # up to its read time-out, so an unconditional close made every /healthz answer wait
    # behind it (seen as no answer at all for 60 s instead of a 503).
    if db is not None and not db.is_closed():
        try:
            db.close()
        except Exception:  # in a transaction or already broken: nothing more to do
            logging.getLogger("reconciler.store").debug(
                "closing this thread's database connection failed", exc_info=True)


__all__ = ["close_thread_connection", "is_open", "missing_sqlite_file", "open_store"]
