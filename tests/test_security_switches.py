"""Issue 21, findings 1 and 3: no silent switch to a fake Google, secrets only over TLS.

Each test drives the real CLI as a separate process and checks the usage-error
contract: exit 2, one line naming what to fix, and not one request sent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from tests.auth_support import endpoint_config, run
from tests.helpers import run_cli, write_config

CAL = "team@group.calendar.google.com"
USER = "alice@example.com"


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("command", [["once"], ["run"], ["config", "check"]])
def test_a_remote_emulator_host_is_a_usage_error_before_any_request(
        tmp_path: Path, command: list[str]) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db")
    # No network is reachable here, so a process that tried would hang in
    # connect/retry for max_retry_seconds (20 s) and beyond the timeout below.
    result = run_cli(None, "-c", str(path), *command, timeout=15,
                     env={"GOOGLE_CALENDAR_EMULATOR_HOST": "198.51.100.9:8085"})
    assert result.returncode == 2, result.stderr
    assert error_lines(result.stderr) == [
        "reconciler: error: $GOOGLE_CALENDAR_EMULATOR_HOST: refused: its host 198.51.100.9 is "
        "not loopback (set $RECONCILER_ALLOW_REMOTE_EMULATOR=1 to allow a remote emulator); the "
        "emulator switch is for tests: unset it, or point [google] api_endpoint at a private "
        "endpoint instead"]
    assert not (tmp_path / "m.db").exists()  # refused before anything else happened


def test_the_emulator_switch_with_configured_credentials_sends_nothing(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    emu.add_calendar(CAL, owners=[USER])
    key = tmp_path / "alice.json"
    key.write_text("{}")
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db",
                        accounts=[{"name": "ops", "credentials": str(key), "calendars": [CAL]}])
    result = run_cli(emu, "-c", str(path), "once")
    assert result.returncode == 2, result.stderr
    (line,) = error_lines(result.stderr)
    assert line.startswith("reconciler: error: $GOOGLE_CALENDAR_EMULATOR_HOST: refused: "
                           "accounts[0] names a credentials file;")
    assert emu.request_log == []


def test_a_loopback_emulator_logs_one_warning_naming_the_endpoint(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    emu.add_calendar(CAL, owners=["user@example.com"])  # the emulator's anonymous user
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db")
    result = run_cli(emu, "-c", str(path), "once", "--log-level", "warning")
    assert result.returncode == 0, result.stderr
    (line,) = error_lines(result.stderr)
    assert " WARNING reconciler.config: $GOOGLE_CALENDAR_EMULATOR_HOST is set: every Calendar " \
           f"API call goes to http://{emu.host}/calendar/v3/ without credentials" in line


def authorized_user(tmp_path: Path, token_uri: str) -> Path:
    path = tmp_path / "alice.json"
    path.write_text(json.dumps({
        "type": "authorized_user", "client_id": "id.apps.googleusercontent.com",
        "client_secret": "s3cret", "refresh_token": f"emulator-user:{USER}",
        "token_uri": token_uri}))
    path.chmod(0o600)
    return path


def test_a_plain_http_token_uri_is_refused_before_any_request(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    emu.add_calendar(CAL, owners=[USER])
    token = authorized_user(tmp_path, "http://198.51.100.9:8080/token")
    path = endpoint_config(emu, tmp_path, f"sqlite:///{tmp_path}/m.db",
                           [{"name": "ops", "credentials": str(token), "calendars": [CAL]}])
    problem = (f"account ops: credentials file {token}: token_uri must be an https URL (plain "
               "http only to a loopback host, or with $RECONCILER_ALLOW_REMOTE_EMULATOR=1)")
    result = run("-c", str(path), "once", timeout=60)
    assert result.returncode == 2, result.stderr
    assert error_lines(result.stderr) == [f"reconciler: error: {problem}"]
    # `auth check` reports it as that account's failed check, as every credentials problem.
    checked = run("-c", str(path), "auth", "check", timeout=60)
    assert (checked.returncode, checked.stdout) == (1, problem + "\n")
    assert emu.request_log == []
    assert json.loads(token.read_text())["token_uri"] == "http://198.51.100.9:8080/token"


def test_a_plain_http_api_endpoint_with_credentials_is_refused(tmp_path: Path) -> None:
    token = authorized_user(tmp_path, "https://oauth2.googleapis.com/token")
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db",
                        accounts=[{"name": "ops", "credentials": str(token), "calendars": [CAL]}])
    path.write_text(path.read_text().replace(
        "[google]\n", '[google]\napi_endpoint = "http://198.51.100.9:8085/calendar/v3/"\n'))
    result = run("-c", str(path), "once", timeout=15)
    assert result.returncode == 2, result.stderr
    assert error_lines(result.stderr) == [
        f"reconciler: error: {path}: google.api_endpoint: must be an https URL (plain http only "
        "to a loopback host, or with $RECONCILER_ALLOW_REMOTE_EMULATOR=1)"]
