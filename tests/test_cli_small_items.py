"""Small things a new user trips on, each through the real CLI as a separate process:
a re-run ``demo`` starts from an empty database, ``status`` at 80 columns keeps LAST
ERROR, ``--max-lag`` without ``--check`` is a usage error, ``history`` hints at
``[store] history`` only when it is off, and ``config check`` words an anonymous
account properly."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from tests.helpers import run_cli, write_config

CAL = "team@group.calendar.google.com"


def _seed(emu: Emulator) -> None:
    emu.add_calendar(CAL, summary="Team", owners=["user@example.com"])
    emu.seed_raw(CAL, [{
        "kind": "calendar#event", "etag": '"1"', "id": "evt1", "status": "confirmed",
        "updated": "2025-01-01T00:00:00.000Z", "summary": "one",
        "start": {"dateTime": "2025-01-01T10:00:00Z"}, "end": {"dateTime": "2025-01-01T11:00:00Z"},
    }])


def _feed(stdout: str) -> list[str]:
    return [line.split()[1] for line in stdout.splitlines() if line.startswith("  #")]


def test_demo_run_twice_starts_from_an_empty_database_and_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/demo.db"
    first = run_cli(None, "demo", "--database", url)
    assert first.returncode == 0, first.stderr
    assert "earlier demo" not in first.stdout
    second = run_cli(None, "demo", "--database", url)
    assert second.returncode == 0, second.stderr
    assert f"Removed the mirror of an earlier demo run ({tmp_path}/demo.db)" in second.stdout
    assert "410" not in second.stdout + second.stderr  # no resync of the old mirror
    assert sorted(_feed(second.stdout)) == sorted(_feed(first.stdout)) == ["deleted", "updated"]


def test_demo_refuses_a_database_that_is_not_a_demo_mirror(calendar_emulator: Emulator,
                                                          tmp_path: Path) -> None:
    _seed(calendar_emulator)
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/real.db",
                        accounts=[{"name": "ops", "calendars": [CAL]}])
    assert run_cli(calendar_emulator, "-c", str(path), "once").returncode == 0
    result = run_cli(None, "demo", "--database", f"sqlite:///{tmp_path}/real.db")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"reconciler: error: demo: {tmp_path}/real.db holds a mirror that is not the demo's; "
        "give --database a new file"]
    with sqlite3.connect(tmp_path / "real.db") as db:  # untouched
        assert db.execute("SELECT COUNT(*) FROM event").fetchone() == (1,)


def test_status_at_80_columns_keeps_last_error(calendar_emulator: Emulator,
                                              tmp_path: Path) -> None:
    _seed(calendar_emulator)  # discovered: the calendar's name shows next to its id
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db",
                        accounts=[{"name": "ops", "discover": True}])
    assert run_cli(calendar_emulator, "-c", str(path), "once").returncode == 0
    calendar_emulator.inject_fault(CAL, kind="status", status=403, reason="forbidden", count=None)
    assert run_cli(calendar_emulator, "-c", str(path), "once").returncode == 1
    result = run_cli(None, "-c", str(path), "status", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "CALENDAR" in line)
    assert "LAST ERROR" in header and "STATE" in header
    row = next(line for line in lines if line.startswith(CAL) or f" {CAL}" in line)
    assert "403" in row
    assert max(len(line) for line in lines[lines.index(header):]) <= 80


def test_max_lag_without_check_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(None, "status", "--max-lag", "900",
                     env={"RECONCILER_DATABASE_URL": f"sqlite:///{tmp_path}/none.db"})
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "--max-lag works only with --check" in result.stderr


def test_history_hints_at_store_history_only_when_it_is_off(calendar_emulator: Emulator,
                                                           tmp_path: Path) -> None:
    _seed(calendar_emulator)
    for history in (0, 3):
        folder = tmp_path / f"h{history}"
        folder.mkdir()
        path = write_config(folder, f"sqlite:///{folder}/m.db",
                            accounts=[{"name": "ops", "calendars": [CAL]}],
                            extra=f"\n[store]\nhistory = {history}\n")
        assert run_cli(calendar_emulator, "-c", str(path), "once").returncode == 0
        result = run_cli(calendar_emulator, "-c", str(path), "history", "no-such-event")
        assert result.returncode == 1
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and "no stored versions of event no-such-event" in lines[0]
        assert ("[store] history" in lines[0]) == (history == 0), lines


def test_config_check_words_an_anonymous_account_properly(calendar_emulator: Emulator,
                                                         tmp_path: Path) -> None:
    _seed(calendar_emulator)
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db",
                        accounts=[{"name": "ops", "calendars": [CAL]}])
    result = run_cli(calendar_emulator, "-c", str(path), "config", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("account ops:"))
    assert line == f"account ops: ok (anonymous access to {calendar_emulator.base_url})"
    assert result.stdout.startswith(f"config {path}: ok (1 account, 1 configured calendar)\n")
    assert "(s)" not in result.stdout and "((" not in result.stdout


def test_demo_suggests_commands_that_work_without_the_venv_on_path(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "reconciler"
    if not script.is_file():
        pytest.skip(f"no installed `reconciler` entry point beside {sys.executable}")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if Path(p) != script.parent)
    env = dict(os.environ, PATH=path)
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run([str(script), "demo"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    suggested = re.search(r"then `(.+?) status`", last)
    assert suggested is not None, last
    assert suggested.group(1) != "reconciler"  # `command not found` in this shell
    status = subprocess.run(f"{suggested.group(1)} status", shell=True, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120,
                            env=dict(env, RECONCILER_DATABASE_URL="sqlite:///reconciler-demo.db"))
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("3 calendars: 3 ok")
