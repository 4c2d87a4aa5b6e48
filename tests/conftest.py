"""Shared fixtures: real databases (SQLite, MariaDB, PostgreSQL) and the real samples.

MariaDB/PostgreSQL tests use a fresh database per test on the servers named by
``$RECONCILER_TEST_MYSQL_URL`` / ``$RECONCILER_TEST_POSTGRES_URL`` (defaults:
the local servers). When ``$CI`` is set an unreachable MariaDB is a failure,
never a skip: the MySQL tests must run in CI.

Hypothesis runs without its per-example deadline (200 ms by default), as its
profile for CI (``$CI`` set: derandomized, no deadline) already does: a
deadline is a timed assertion, and on a loaded two-core machine a property
whose examples take 5 ms failed a run by it. Timing belongs in ``bench/``.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest
from hypothesis import settings

from reconciler.store import open_store

pytest_plugins = ["reconciler.emulator.pytest_plugin"]

if settings.get_current_profile_name() == "default":  # CI's own profile has no deadline
    settings.register_profile("untimed", deadline=None)
    settings.load_profile("untimed")

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "tests" / "data" / "samples"
MYSQL_SERVER = os.environ.get("RECONCILER_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306")
POSTGRES_SERVER = os.environ.get("RECONCILER_TEST_POSTGRES_URL",
                                 "postgresql://postgres@127.0.0.1:5432")


def load_sample(name: str) -> Any:
    """A JSON file from tests/data/samples (copied from the shared captures; see SOURCES.md there)."""
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def sample_events() -> list[tuple[str, dict[str, Any]]]:
    """Every event resource in the samples: lone events and the items of list captures."""
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(SAMPLES.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if path.name.startswith("event-"):
            found.append((path.name, data))
        elif path.name.startswith("list-"):
            for i, item in enumerate(data.get("items", [])):
                found.append((f"{path.name}[{i}]", item))
    return found


def _server_db(server: str, kind: str) -> Iterator[str]:
    name = f"reconciler_test_{secrets.token_hex(4)}"
    from playhouse.db_url import connect

    base_db = "test" if kind == "mysql" else "postgres"
    try:
        admin = connect(f"{server}/{base_db}")
        admin.connect()
    except Exception as exc:
        if os.environ.get("CI") and kind == "mysql":
            pytest.fail(f"MariaDB at {server} is not answering in CI: {exc}")
        pytest.skip(f"{kind} server {server} not available: {exc}")
    if kind == "postgres":
        admin.connection().autocommit = True
    admin.execute_sql(f"CREATE DATABASE {name}" + (" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                                                  if kind == "mysql" else ""))
    try:
        yield f"{server}/{name}"
    finally:
        if kind == "postgres":
            admin.execute_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,))
        admin.execute_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """A fresh, empty MariaDB database."""
    yield from _server_db(MYSQL_SERVER, "mysql")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database."""
    yield from _server_db(POSTGRES_SERVER, "postgres")


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql),
                        pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: SQLite, MariaDB, then PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/mirror.db"
    else:
        yield request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql),
                        pytest.param("postgres", marks=pytest.mark.postgres)])
def any_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every supported engine, for the store's contract tests."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/mirror.db"
    else:
        yield request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def store(any_database_url: str) -> Iterator[peewee.Database]:
    """An opened, migrated store on each engine."""
    db = open_store(any_database_url)
    yield db
    db.close()
