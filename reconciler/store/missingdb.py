"""The exact statement that creates a database the server does not have.

Why: a new deployment's first run against MariaDB or PostgreSQL often fails
because nobody created the database (MariaDB error 1049 "Unknown database",
PostgreSQL ``FATAL: database "x" does not exist``). Connecting never creates
one, so the message should say what to run, with the character set this
project needs (``utf8mb4`` on MariaDB/MySQL, for emoji titles).

A pure function of the URL and the driver's error; ``docs/database.md`` has
the whole set-up per backend (database, character set, user, grants).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from reconciler.dburl import backend_of

MYSQL_UNKNOWN_DATABASE = 1049


def _database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def _user(url: str) -> str:
    return unquote(urlsplit(url).username or "")


def _is_missing(backend: str | None, error: BaseException) -> bool:
    if backend == "mysql":
        return bool(error.args) and error.args[0] == MYSQL_UNKNOWN_DATABASE
    if backend == "postgresql":
        text = str(error)
        return 'database "' in text and "does not exist" in text
    return False


def create_statement(url: str) -> str:
    """``CREATE DATABASE`` for the database ``url`` names, as this project needs it."""
    name = _database_name(url)
    if backend_of(url) == "mysql":
        quoted = "`" + name.replace("`", "``") + "`"
        return f"CREATE DATABASE {quoted} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    quoted = '"' + name.replace('"', '""') + '"'
    user = _user(url)
    owner = ' OWNER "' + user.replace('"', '""') + '"' if user else ""
    return f"CREATE DATABASE {quoted}{owner} ENCODING 'UTF8' TEMPLATE template0"


def missing_database_hint(url: str, error: BaseException) -> str | None:
    """For an "unknown database" error while connecting to ``url``: one line naming the
    database and the statement that creates it; ``None`` for any other error."""
    for candidate in (error, error.__cause__):
        if isinstance(candidate, BaseException) and _is_missing(backend_of(url), candidate):
            return (f"database {_database_name(url)!r} does not exist on that server; create it "
                    f"with: {create_statement(url)} (see docs/database.md)")
    return None
