"""Issue 21, finding 2: a database password is never shown, whatever path shows the URL.

Peewee hands ``?password=`` / ``?passwd=`` to the driver, so a password can sit
in the query string as well as in the user info. Every place that shows a URL
(config problems, ``config check``, ``init-db``, "cannot open database", reprs,
logs) goes through :func:`reconciler.dburl.redact_url`; these tests drive each
of them with a real password and look for it in everything printed.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from reconciler import dburl
from reconciler.config import DatabaseConfig, load_config
from reconciler.emulator import Emulator
from reconciler.errors import ConfigError
from tests.helpers import run_cli, write_config

SECRET = "hunter2-" + secrets.token_hex(6)
CAL = "team@group.calendar.google.com"


@pytest.fixture
def password_url(mysql_url: str) -> Iterator[str]:
    """A MariaDB database and a user whose password travels as ``?password=``."""
    import pymysql

    parts = urlsplit(mysql_url)
    name = parts.path.strip("/")
    user = f"rc_sec_{secrets.token_hex(3)}"
    admin = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                            user=parts.username or "root", password=parts.password or "")
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{SECRET}'")
            cursor.execute(f"GRANT ALL ON {name}.* TO '{user}'@'%'")
        yield f"mysql://{user}@{parts.hostname}:{parts.port or 3306}/{name}?password={SECRET}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        admin.close()


def shown(result: object) -> str:
    return f"{getattr(result, 'stdout', '')}\n{getattr(result, 'stderr', '')}"


@pytest.mark.mysql
def test_query_password_is_masked_in_config_check_init_db_and_logs(
        calendar_emulator: Emulator, tmp_path: Path, password_url: str) -> None:
    emu = calendar_emulator
    emu.add_calendar(CAL, owners=["user@example.com"])
    path = write_config(tmp_path, password_url)
    masked = password_url.replace(SECRET, "***")

    init = run_cli(emu, "-c", str(path), "init-db")
    assert init.returncode == 0, init.stderr
    assert f"to {masked}:" in init.stdout and SECRET not in shown(init)

    check = run_cli(emu, "-c", str(path), "config", "check", "--skip-credentials")
    assert check.returncode == 0, shown(check)
    assert f"database {masked}" in check.stdout and SECRET not in shown(check)

    once = run_cli(emu, "-c", str(path), "once", "--log-level", "debug")
    assert once.returncode == 0, once.stderr
    assert "DEBUG" in once.stderr and SECRET not in shown(once)


@pytest.mark.mysql
@pytest.mark.parametrize("key", ["password", "passwd"])
def test_query_password_is_masked_in_cannot_open_database(
        tmp_path: Path, password_url: str, key: str) -> None:
    wrong = password_url.replace(f"password={SECRET}", f"{key}=wrong-{SECRET}")
    path = write_config(tmp_path, wrong)
    for command in (["init-db"], ["status"], ["config", "check", "--skip-credentials"]):
        result = run_cli(None, "-c", str(path), *command,
                         env={"GOOGLE_CALENDAR_EMULATOR_HOST": "127.0.0.1:9"})
        assert result.returncode == 1, (command, shown(result))
        assert f"{key}=***" in shown(result), (command, shown(result))
        assert SECRET not in shown(result), (command, shown(result))


@pytest.mark.parametrize("url", [
    "mysql://app:123/s3cret@db.example.com/name",  # a '/' in the password
    "mysql://app:pa?s3cret@db.example.com/name",  # a '?' in the password
    "s3cret",  # the password pasted where the URL belongs
    "app:s3cret@db.example.com/name",  # no scheme
    "mysql://app@db.example.com:0/name?password=s3cret",  # another problem, a query password
    "oracle://app@db.example.com/name?password=s3cret",
])
def test_a_malformed_url_is_refused_without_echoing_it(tmp_path: Path, url: str) -> None:
    path = tmp_path / "reconciler.toml"
    path.write_text(f'[database]\nurl = "{url}"\n[[accounts]]\nname = "a"\ndiscover = true\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {"GOOGLE_CALENDAR_EMULATOR_HOST": "127.0.0.1:8085"})
    (line,) = info.value.problems
    assert line.startswith(f"{path}: database.url: ") and "s3cret" not in line
    result = run_cli(None, "-c", str(path), "once",
                     env={"GOOGLE_CALENDAR_EMULATOR_HOST": "127.0.0.1:8085"})
    assert result.returncode == 2 and "s3cret" not in shown(result)
    env_result = run_cli(None, "-c", str(path), "once",
                         env={"GOOGLE_CALENDAR_EMULATOR_HOST": "127.0.0.1:8085",
                              "RECONCILER_DATABASE_URL": url})
    assert env_result.returncode == 2 and "s3cret" not in shown(env_result)
    assert "$RECONCILER_DATABASE_URL: database.url: " in env_result.stderr


def test_the_slash_in_a_password_is_explained() -> None:
    problem = dburl.url_problem("mysql://app:123/s3cret@host/db")
    assert problem is not None and "percent-encode" in problem and "s3cret" not in problem
    assert dburl.url_problem("mysql://app:123%2Fs3cret@host/db") is None


@pytest.mark.parametrize("url", [
    f"mysql://u@h/n?password={SECRET}",
    f"mysql://u@h/n?charset=utf8mb4&passwd={SECRET}",
    f"postgresql://u@h/n?sslpassword={SECRET}",
    f"mysql://u:{SECRET}@h/n",
])
def test_reprs_hide_every_password(tmp_path: Path, url: str) -> None:
    database = DatabaseConfig(url)
    assert SECRET not in repr(database) and SECRET not in database.redacted_url
    path = write_config(tmp_path, url)
    config = load_config(path, {"GOOGLE_CALENDAR_EMULATOR_HOST": "127.0.0.1:8085"})
    assert SECRET not in repr(config) and SECRET not in str(config)
