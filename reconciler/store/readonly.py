"""Look at a database without changing it: does it exist, which schema does it have?

Why: ``reconciler config check`` is a dry run. It must not create a SQLite
file, set its journal mode, create the migrations table or migrate anything;
it only reports what the next ``once`` or ``run`` would find.

Invariants: SQLite files are opened with ``mode=ro`` (the driver refuses any
write); server databases are only read (``SELECT``s through the migration
runner's ``status``, which never creates its table); the connection is
closed before returning; every error names the database with its password
redacted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import peewee
from playhouse.migrations import Runner

from reconciler.dburl import MEMORY, redact_url, sqlite_path
from reconciler.errors import DatabaseUnavailable, first_line
from reconciler.store.db import open_database
from reconciler.store.dialects._pool import BoundedPool
from reconciler.store.migrate import MIGRATIONS_DIR


@dataclass(frozen=True)
class DatabaseInfo:
    """What a read-only look at a database found."""

    shown: str  # the URL with its password redacted (SQLite: absolute path)
    exists: bool
    applied: tuple[str, ...] = ()  # migrations recorded in the database, in order
    pending: tuple[str, ...] = ()  # migrations this version has and the database lacks
    unknown: tuple[str, ...] = ()  # migrations the database has and this version lacks

    @property
    def version(self) -> str | None:
        """The schema version: the name of the last migration applied (None: no schema)."""
        return self.applied[-1] if self.applied else None

    @property
    def ok(self) -> bool:
        """Usable by this version (a missing SQLite file is created at the first start)."""
        return not self.unknown

    @property
    def line(self) -> str:
        """One line for ``config check``."""
        head = f"database {self.shown}"
        if not self.exists:
            return (f"{head}: does not exist yet (the first `reconciler once`, `run` or "
                    "`init-db` creates it)")
        if self.unknown:
            return (f"{head}: schema {self.version} is newer than this version knows "
                    f"({', '.join(self.unknown)}); upgrade calendar-reconciler")
        if not self.applied:
            return f"{head}: exists, no schema yet ({len(self.pending)} migrations to apply)"
        if self.pending:
            return (f"{head}: exists, schema {self.version}; {len(self.pending)} "
                    f"migration(s) pending, applied at the next start")
        return f"{head}: exists, schema {self.version} (up to date)"


def _open_read_only(url: str) -> tuple[peewee.Database | None, str]:
    """A connection that cannot write, or None when the SQLite file does not exist."""
    path = sqlite_path(url)
    if path is None:  # a server: connecting never creates the database
        return open_database(url), redact_url(url)
    if path == MEMORY:
        return None, url
    file = Path(path).absolute()
    if not file.exists():
        return None, str(file)
    db = peewee.SqliteDatabase(f"file:{quote(str(file))}?mode=ro", uri=True)
    try:
        db.connect()
        db.execute_sql("SELECT 1 FROM sqlite_master LIMIT 1")  # not a database: fails here
    except peewee.PeeweeException as exc:
        db.close()
        raise DatabaseUnavailable(f"cannot open database {file}: {first_line(exc)}") from exc
    return db, str(file)


def inspect_database(url: str) -> DatabaseInfo:
    """Open ``url`` read-only and report whether it exists and its schema version."""
    db, shown = _open_read_only(url)
    if db is None:
        return DatabaseInfo(shown, exists=False)
    try:
        status = Runner(db, directory=str(MIGRATIONS_DIR)).status()
    except peewee.PeeweeException as exc:
        raise DatabaseUnavailable(f"cannot read database {shown}: {first_line(exc)}") from exc
    finally:
        db.close()
        if isinstance(db, BoundedPool):
            db.close_pool()  # the pooled connection too, not just back to the pool
    return DatabaseInfo(shown, exists=True,
                        applied=tuple(m.name for m in status if m.applied),
                        pending=tuple(m.name for m in status if not m.applied),
                        unknown=tuple(m.name for m in status if m.applied and m.path is None))


__all__ = ["DatabaseInfo", "inspect_database"]
