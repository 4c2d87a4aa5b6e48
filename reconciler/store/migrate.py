"""Bring the schema up to date with Peewee's own migration runner.

Migrations are the numbered files beside this module; ``init-db`` runs them
explicitly and every command that opens the store runs them automatically.
Several processes starting at once on one server serialise on an advisory lock.
"""

from __future__ import annotations

import time
from pathlib import Path

import peewee
from playhouse.migrations import MigrationError, Runner

from reconciler.errors import StoreError
from reconciler.store.db import advisory_lock
from reconciler.store.dialects import dialect_of

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def migrate(db: peewee.Database, *, patience: float = 30.0) -> list[str]:
    """Apply every pending migration; return the names applied.

    A backend without an advisory lock (SQLite: ``migration_retries``): when
    two processes start on a new file at once, the loser's migration fails (and rolls back) while the winner's
    commits; it then waits for the winner and finds nothing left to do.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            with advisory_lock(db, "reconciler-migrate"):
                return list(Runner(db, directory=str(MIGRATIONS_DIR)).up())
        except MigrationError as exc:
            raise StoreError(f"schema migration failed: {exc}") from exc
        except peewee.DatabaseError as exc:
            if dialect_of(db).migration_retries and time.monotonic() < deadline:
                time.sleep(0.2)
                if not pending(db):
                    return []
                continue
            raise StoreError(f"schema migration failed: {str(exc).splitlines()[0]}") from exc


def pending(db: peewee.Database) -> list[str]:
    """Names of migrations not yet applied (for ``status``)."""
    return [m.name for m in Runner(db, directory=str(MIGRATIONS_DIR)).status() if not m.applied]
