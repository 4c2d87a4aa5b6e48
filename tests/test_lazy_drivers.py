"""Peewee's eager driver imports are deferred (``reconciler/store/_drivers.py``), and the drivers still work.

The pytest process itself imported Peewee with its drivers (conftest), so
every check runs in a fresh process, as a user's command does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from tests.helpers import REPO, emulator_env, write_config

DRIVERS = ("pymysql", "psycopg2", "MySQLdb", "psycopg")


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env={**os.environ, **(env or {})})


def test_a_sqlite_once_imports_no_server_driver(calendar_emulator: Emulator,
                                                tmp_path: Path) -> None:
    calendar_emulator.add_calendar("team@group.calendar.google.com", owners=["user@example.com"])
    config = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db")
    code = (
        "import atexit, runpy, sys\n"
        f"atexit.register(lambda: print('drivers:', sorted(m for m in {DRIVERS!r} "
        "if m in sys.modules), file=sys.stderr))\n"
        f"sys.argv = ['reconciler', '-c', {str(config)!r}, 'once']\n"
        "runpy.run_module('reconciler.cli', run_name='__main__')\n")
    result = _python(code, emulator_env(calendar_emulator))
    assert result.returncode == 0, result.stderr
    assert "drivers: []" in result.stderr, result.stderr


def test_a_driver_imported_before_the_store_is_left_as_it_is() -> None:
    result = _python("import pymysql, peewee\n"
                     "import reconciler.store\n"
                     "assert peewee.mysql is pymysql\n"
                     "print('ok')")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


SERVER_CHECK = """
import sys
import peewee
from reconciler.errors import StoreError
from reconciler.store import open_store
from reconciler.store.dberrors import map_db_errors
from reconciler.store.events import count_events

db = open_store({url!r})
assert {driver!r} in sys.modules
assert count_events(1) == 0
try:
    with map_db_errors():  # a raw driver error, not wrapped by Peewee: still ours
        cursor = db.connection().cursor()
        cursor.execute("SELECT no_such_column FROM event")
except StoreError as exc:
    print("mapped:", type(exc).__name__)
db.close()
"""


@pytest.mark.mysql
def test_mysql_works_with_its_driver_loaded_late(mysql_url: str) -> None:
    result = _python(SERVER_CHECK.format(url=mysql_url, driver="pymysql"))
    assert result.returncode == 0, result.stderr
    assert "mapped:" in result.stdout


@pytest.mark.postgres
def test_postgresql_works_with_its_driver_loaded_late(postgres_url: str) -> None:
    result = _python(SERVER_CHECK.format(url=postgres_url, driver="psycopg2"))
    assert result.returncode == 0, result.stderr
    assert "mapped:" in result.stdout


def test_no_module_of_the_project_imports_a_server_driver() -> None:
    # Every module, in the package's own order: one that imported Peewee (or a
    # driver) at its top before the store would bring the drivers back for all.
    code = (
        "import pkgutil, importlib, sys, reconciler\n"
        "for info in pkgutil.walk_packages(reconciler.__path__, 'reconciler.'):\n"
        "    if '.migrations.' in info.name or info.name.endswith('__main__'):\n"
        "        continue\n"
        "    importlib.import_module(info.name)\n"
        f"    loaded = sorted(m for m in {DRIVERS!r} if m in sys.modules)\n"
        "    assert not loaded, (info.name, loaded)\n"
        "print('ok')\n")
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
