"""Database set-up through the real CLI on the real servers: an unknown database names
the exact ``CREATE DATABASE`` statement (``utf8mb4`` on MariaDB), and running that very
statement makes the next ``once`` succeed; ``config check --skip-credentials`` validates
a config before its key file is installed."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import Emulator
from tests.conftest import MYSQL_SERVER, POSTGRES_SERVER
from tests.helpers import run_cli, write_config

CAL = "team@group.calendar.google.com"


def _admin(kind: str) -> Any:
    from playhouse.db_url import connect

    server = MYSQL_SERVER if kind == "mysql" else POSTGRES_SERVER
    try:
        admin = connect(f"{server}/{'test' if kind == 'mysql' else 'postgres'}")
        admin.connect()
    except Exception as exc:
        if os.environ.get("CI") and kind == "mysql":
            pytest.fail(f"MariaDB at {server} is not answering in CI: {exc}")
        pytest.skip(f"{kind} server {server} not available: {exc}")
    if kind == "postgres":
        admin.connection().autocommit = True
    return admin


@pytest.fixture(params=[pytest.param("mysql", marks=pytest.mark.mysql),
                        pytest.param("postgres", marks=pytest.mark.postgres)])
def missing_database(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, Any]]:
    """(kind, URL of a database the server does not have, an admin connection); dropped after."""
    kind = request.param
    admin = _admin(kind)
    name = f"reconciler_setup_{secrets.token_hex(4)}"
    server = MYSQL_SERVER if kind == "mysql" else POSTGRES_SERVER
    try:
        yield kind, f"{server}/{name}", admin
    finally:
        if kind == "postgres":
            admin.execute_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = %s", (name,))
        admin.execute_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


def test_unknown_database_names_the_statement_that_creates_it(
        calendar_emulator: Emulator, tmp_path: Path,
        missing_database: tuple[str, str, Any]) -> None:
    kind, url, admin = missing_database
    calendar_emulator.add_calendar(CAL, owners=["user@example.com"])
    calendar_emulator.insert_event(CAL, {"summary": "Launch 🚀",
                                         "start": {"dateTime": "2030-01-01T09:00:00Z"},
                                         "end": {"dateTime": "2030-01-01T10:00:00Z"}})
    path = write_config(tmp_path, url, accounts=[{"name": "ops", "calendars": [CAL]}])
    failed = run_cli(calendar_emulator, "-c", str(path), "once")
    assert failed.returncode == 1
    lines = failed.stderr.splitlines()
    assert len(lines) == 1, lines
    name = url.rsplit("/", 1)[1]
    assert f"database '{name}' does not exist on that server; create it with: " in lines[0]
    statement = re.search(r"create it with: (CREATE DATABASE .*) \(see docs/database\.md\)",
                          lines[0])
    assert statement is not None, lines[0]
    if kind == "mysql":
        assert statement.group(1) == (f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 "
                                      "COLLATE utf8mb4_bin")
    else:
        assert statement.group(1).startswith(f'CREATE DATABASE "{name}" OWNER ')
        assert "ENCODING 'UTF8'" in statement.group(1)
    checked = run_cli(calendar_emulator, "-c", str(path), "config", "check", "--skip-credentials")
    assert checked.returncode == 1 and statement.group(1) in checked.stdout

    admin.execute_sql(statement.group(1))  # the statement, verbatim, does the job
    synced = run_cli(calendar_emulator, "-c", str(path), "once")
    assert synced.returncode == 0, synced.stderr
    exported = run_cli(calendar_emulator, "-c", str(path), "export")
    assert "Launch 🚀" in exported.stdout
    if kind == "mysql":
        (charset,) = admin.execute_sql(
            "SELECT default_character_set_name FROM information_schema.schemata "
            "WHERE schema_name = %s", (name,)).fetchone()
        assert charset == "utf8mb4"


def test_config_check_skip_credentials_before_the_key_is_installed(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db", accounts=[
        {"name": "ops", "credentials": "service-account.json", "calendars": [CAL]}])
    env = {"GOOGLE_CALENDAR_EMULATOR_HOST": ""}
    skipped = run_cli(None, "-c", str(path), "config", "check", "--skip-credentials", env=env)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert (f"account ops: credentials file {tmp_path}/service-account.json not installed yet"
            in skipped.stdout.splitlines())
    assert skipped.stderr == ""
    full = run_cli(None, "-c", str(path), "config", "check", env=env)
    assert full.returncode == 2  # tried for real, the missing file is a config error
    assert "service-account.json not found" in full.stderr
    broken = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db", accounts=[
        {"name": "ops", "credentials": "service-account.json", "calendarz": [CAL]}])
    still = run_cli(None, "-c", str(broken), "config", "check", "--skip-credentials", env=env)
    assert still.returncode == 2 and "calendarz" in still.stderr  # the rest is still validated


def _sql_blocks(after: str) -> list[str]:
    """The statements of the first ```sql block after the heading ``after`` in docs/database.md."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "database.md").read_text()
    block = text.split(after, 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]
    return [s.strip() for s in block.split(";") if s.strip()]


@pytest.mark.parametrize("kind", [pytest.param("mysql", marks=pytest.mark.mysql),
                                  pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_documented_set_up_works_verbatim(calendar_emulator: Emulator, tmp_path: Path,
                                              kind: str) -> None:
    """docs/database.md's statements, with only the names made unique, give a user that
    can migrate and sync (MariaDB: utf8mb4; PostgreSQL: the database's owner)."""
    admin = _admin(kind)
    name = f"rcsetup_{secrets.token_hex(4)}"
    heading = "## MySQL / MariaDB" if kind == "mysql" else "## PostgreSQL"
    statements = [re.sub(r"\breconciler\b", name, s) for s in _sql_blocks(heading)]
    calendar_emulator.add_calendar(CAL, owners=["user@example.com"])
    calendar_emulator.insert_event(CAL, {"summary": "Café 🎉",
                                         "start": {"dateTime": "2030-01-01T09:00:00Z"},
                                         "end": {"dateTime": "2030-01-01T10:00:00Z"}})
    host = "127.0.0.1:3306" if kind == "mysql" else "127.0.0.1:5432"
    scheme = "mysql" if kind == "mysql" else "postgresql"
    url = f"{scheme}://{name}:a%20long%20random%20password@{host}/{name}"
    try:
        for statement in statements:  # the driver formats with %: a literal % is %%
            admin.execute_sql(statement.replace("%", "%%") if kind == "mysql" else statement)
        path = write_config(tmp_path, url, accounts=[{"name": "ops", "calendars": [CAL]}])
        synced = run_cli(calendar_emulator, "-c", str(path), "once")
        assert synced.returncode == 0, synced.stderr
        assert "Café 🎉" in run_cli(calendar_emulator, "-c", str(path), "export").stdout
    finally:
        if kind == "postgres":
            admin.execute_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = %s", (name,))
            admin.execute_sql(f"DROP DATABASE IF EXISTS {name}")
            admin.execute_sql(f"DROP ROLE IF EXISTS {name}")
        else:
            admin.execute_sql(f"DROP DATABASE IF EXISTS {name}")
            admin.execute_sql(f"DROP USER IF EXISTS '{name}'@'%%'")
        admin.close()
