"""The SQL mirror: models, migrations and the batched operations the engine needs.

``open_store`` is the one entry point: it connects, binds the models and brings
the schema up to date, so no command ever runs against an old schema.
"""

from __future__ import annotations

import peewee

from reconciler.store.db import open_database
from reconciler.store.migrate import migrate
from reconciler.store.models import database_proxy


def open_store(url: str, *, run_migrations: bool = True) -> peewee.Database:
    """Connect to ``url``, bind the models to it and apply pending migrations."""
    db = open_database(url)
    database_proxy.initialize(db)
    if run_migrations:
        migrate(db)
    return db


__all__ = ["open_store"]
