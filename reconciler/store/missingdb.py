"""The exact statement that creates a database the server does not have.

Why: a new deployment's first run against MariaDB or PostgreSQL often fails
because nobody created the database (MariaDB error 1049 "Unknown database",
PostgreSQL ``FATAL: database "x" does not exist``). Connecting never creates
one, so the message should say what to run, with the character set this
project needs (``utf8mb4`` on MariaDB/MySQL, for emoji titles).

A pure function of the URL and the driver's error; which error means "no such
database" and the statement are each dialect's
(:mod:`reconciler.store.dialects`). ``docs/database.md`` has the whole set-up
per backend (database, character set, user, grants).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from reconciler.dburl import backend_of
from reconciler.store.dialects import for_backend


def _database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def _user(url: str) -> str:
    return unquote(urlsplit(url).username or "")


def create_statement(url: str) -> str:
    """``CREATE DATABASE`` for the database ``url`` names, as this project needs it."""
    found = for_backend(backend_of(url))
    statement = found.create_database(_database_name(url), _user(url)) if found else None
    return statement or ""


def missing_database_hint(url: str, error: BaseException) -> str | None:
    """For an "unknown database" error while connecting to ``url``: one line naming the
    database and the statement that creates it; ``None`` for any other error."""
    found = for_backend(backend_of(url))
    if found is None:
        return None
    for candidate in (error, error.__cause__):
        if isinstance(candidate, BaseException) and found.is_missing_database(candidate):
            return (f"database {_database_name(url)!r} does not exist on that server; create it "
                    f"with: {create_statement(url)} (see docs/database.md)")
    return None
