"""One CLI grammar, driven through the real CLI as subprocesses.

Global options before or after the subcommand; one exit-status table for every
command (in ``reconciler --help``); an unknown ``--calendar`` is a usage error
(2) everywhere, naming the closest known ids; read-only commands never create
a database; usage errors are one line.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from tests.helpers import run_cli, without_emulator_warning, write_config

TEAM = "team@group.calendar.google.com"
EVERY_COMMAND = [["once"], ["run"], ["export"], ["changes"], ["status"], ["init-db"], ["receiver"],
                 ["watch", "list"], ["watch", "stop-all"], ["demo"], ["emulator"]]
READ_ONLY = [["status"], ["export"], ["changes"], ["watch", "list"]]
NEEDS_CONFIG = [["once"], ["run"], ["init-db"], ["receiver"], ["watch", "stop-all"]]


def seed(emu: Emulator, *calendar_ids: str) -> None:
    for calendar_id in calendar_ids:
        emu.add_calendar(calendar_id, owners=["user@example.com"])
        emu.seed_raw(calendar_id, [{
            "kind": "calendar#event", "etag": '"1"', "id": "evt1", "status": "confirmed",
            "updated": "2025-01-01T00:00:00.000Z", "summary": "one",
            "start": {"dateTime": "2025-01-01T10:00:00Z"}, "end": {"dateTime": "2025-01-01T11:00:00Z"},
        }])


def run_in(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``reconciler ARGS`` started in ``cwd`` (the "wrong folder" case)."""
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    full_env.pop("RECONCILER_CONFIG", None)
    full_env.pop("RECONCILER_DATABASE_URL", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=60)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_help_prints_the_exit_status_table() -> None:
    result = run_cli(None, "--help")
    assert result.returncode == 0
    text = result.stdout
    assert "Exit statuses" in text
    for code in ("0  everything asked for succeeded", "1  a calendar or account failed",
                 "2  usage or config error"):
        assert code in text
    assert "status --check" in text


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=" ".join)
def test_an_unknown_option_is_one_line_and_exit_2(command: list[str]) -> None:
    result = run_cli(None, *command, "--no-such-option")
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "--no-such-option" in line and f"reconciler {' '.join(command)}" in line


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=" ".join)
def test_global_options_are_accepted_after_every_command(command: list[str]) -> None:
    result = run_cli(None, *command, "--log-level", "warning", "--log-format", "json", "--debug",
                     "-c", "x.toml", "--help")
    assert result.returncode == 0, result.stderr
    assert "--log-level" in result.stdout and "Usage: reconciler" in result.stdout


@pytest.mark.parametrize("command", NEEDS_CONFIG + READ_ONLY, ids=" ".join)
def test_a_missing_config_file_is_exit_2_before_or_after(command: list[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.toml")
    for args in (["-c", missing, *command], [*command, "-c", missing]):
        result = run_in(tmp_path, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert "nope.toml" in one_line(result.stderr)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_read_only_commands_never_create_a_database(command: list[str], tmp_path: Path) -> None:
    result = run_in(tmp_path, *command)  # no config: the default sqlite:///reconciler.db
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert str(tmp_path / "reconciler.db") in line and "does not exist" in line
    url = f"sqlite:///{tmp_path}/elsewhere.db"
    result = run_in(tmp_path, *command, env={"RECONCILER_DATABASE_URL": url})
    assert result.returncode == 1 and str(tmp_path / "elsewhere.db") in one_line(result.stderr)
    assert list(tmp_path.iterdir()) == []


def test_once_exit_statuses_and_options_after_the_subcommand(calendar_emulator: Emulator,
                                                             tmp_path: Path) -> None:
    seed(calendar_emulator, TEAM)
    good = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db")
    # The example: a global option after the subcommand.
    result = run_cli(calendar_emulator, "once", "--log-level", "warning", "-c", str(good))
    assert result.returncode == 0, result.stderr
    # INFO lines suppressed by the option given after `once`
    assert without_emulator_warning(result.stderr) == ""

    missing_dir = tmp_path / "other"
    missing_dir.mkdir()
    failing = write_config(missing_dir, f"sqlite:///{tmp_path}/m2.db", accounts=[
        {"name": "ops", "calendars": [TEAM, "gone@group.calendar.google.com"]}])
    result = run_cli(calendar_emulator, "once", "-c", str(failing), "--log-level", "error")
    assert result.returncode == 1
    assert "gone@group.calendar.google.com" in result.stderr and "Traceback" not in result.stderr


def test_unknown_calendar_is_a_usage_error_everywhere_with_suggestions(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    ids = [f"team{i}@group.calendar.google.com" for i in range(7)]
    seed(calendar_emulator, *ids)
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db",
                        accounts=[{"name": "ops", "calendars": ids}])
    assert run_cli(calendar_emulator, "-c", str(path), "once").returncode == 0
    typo = "team3@group.calendar.gogle.com"
    for command in (["once"], ["export"], ["changes"], ["status"], ["status", "--json"]):
        result = run_cli(calendar_emulator, *command, "-c", str(path), "--calendar", typo)
        assert result.returncode == 2, (command, result.stderr)
        line = one_line(result.stderr)
        assert typo in line and "did you mean" in line, line
        suggested = line.split("did you mean", 1)[1]
        assert "team3@group.calendar.google.com" in suggested
        assert sum(cid in suggested for cid in ids) <= 5
        assert result.stdout == ""
    # A known id still works in every reader.
    export = run_cli(None, "-c", str(path), "export", "--calendar", ids[0])
    assert export.returncode == 0 and json.loads(export.stdout.splitlines()[0])["calendar"] == ids[0]
    changes = run_cli(None, "changes", "--calendar", ids[1], "-c", str(path))
    assert changes.returncode == 0
    assert {json.loads(x)["calendar"] for x in changes.stdout.splitlines()} == {ids[1]}


def test_json_errors_follow_log_format_after_the_subcommand(tmp_path: Path) -> None:
    result = run_in(tmp_path, "status", "--log-format", "json")
    assert result.returncode == 1
    entry = json.loads(one_line(result.stderr))
    assert entry["level"].lower() == "error" and "reconciler.db" in entry["event"]
    assert entry["time"].endswith("Z")


def test_shell_completion_script_is_offered() -> None:
    env = dict(os.environ, _RECONCILER_COMPLETE="bash_source")
    result = subprocess.run([sys.executable, "-m", "reconciler.cli"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "_reconciler_completion" in result.stdout


def test_emulator_module_entry_point_still_works() -> None:
    result = subprocess.run([sys.executable, "-m", "reconciler.emulator", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--port" in result.stdout


@pytest.mark.parametrize("args", [
    ["changes", "--since", "99999999999999999999999999"],
    ["changes", "--poll", "1e300", "--follow"],
    ["status", "--check", "--max-lag", "1e30"],
    ["once", "--concurrency", "100000"],
    ["emulator", "--port", "99999"],
], ids=" ".join)
def test_every_cli_number_is_range_checked(args: list[str], tmp_path: Path) -> None:
    result = run_in(tmp_path, *args)
    assert result.returncode == 2
    line = one_line(result.stderr)
    option = next(arg for arg, value in itertools.pairwise(args)
                  if arg.startswith("--") and value[0].isdigit())
    assert option in line and "range" in line
    assert not list(tmp_path.iterdir())  # nothing created on the way
