"""Errors that say what to fix: one line each, naming the account, never a tuple repr.

End to end through the CLI against the emulator (404 for a calendar not shared with a
service account, 403 insufficientPermissions with domain-wide delegation, 401 after a
successful refresh), plus the translation of google-auth's RefreshError itself."""

from __future__ import annotations

from pathlib import Path

import google.auth.exceptions
import pytest

from reconciler.emulator import Emulator
from reconciler.errors import AuthFailed, TransientGoogleError
from reconciler.google.errors import Identity, refresh_failure, translate
from tests.auth_support import endpoint_config, run
from tests.test_accounts import authorized_user_file, service_account_file

SCOPE = "https://www.googleapis.com/auth/calendar.readonly"
ROBOT = "robot@demo.iam.gserviceaccount.com"
CAL = "ops@group.calendar.google.com"


def one_line(stderr: str) -> str:
    """The one error line (log lines of libraries aside)."""
    lines = [line for line in stderr.splitlines() if line.startswith("reconciler: ")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert "('" not in lines[0]
    return lines[0]


def test_calendar_not_shared_with_the_service_account_names_its_client_email(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    emu.add_calendar(CAL, owners=["ann@example.com"])
    key = service_account_file(tmp_path, emu)
    config = endpoint_config(emu, tmp_path, f"sqlite:///{tmp_path}/m.db", [
        {"name": "robot", "credentials": str(key), "calendars": [CAL]}])
    result = run("-c", str(config), "once")
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "account robot" in line and f"calendar id '{CAL}'" in line
    assert f"shared with {ROBOT}" in line


def test_insufficient_permissions_with_delegation_names_subject_client_and_scope(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    emu.add_calendar("bob@example.com", owners=["bob@example.com"])
    emu.inject_fault("bob@example.com", status=403, reason="insufficientPermissions", count=10,
                     methods=["events.list"])
    key = service_account_file(tmp_path, emu)
    config = endpoint_config(emu, tmp_path, f"sqlite:///{tmp_path}/m.db", [
        {"name": "bob", "credentials": str(key), "subject": "bob@example.com",
         "calendars": ["bob@example.com"]}])
    result = run("-c", str(config), "once")
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "account bob" in line and "domain-wide delegation for subject bob@example.com" in line
    assert f"client ID 1 for the scope {SCOPE}" in line


def test_401_after_a_successful_refresh_asks_for_a_new_login(calendar_emulator: Emulator,
                                                             tmp_path: Path) -> None:
    emu = calendar_emulator
    emu.add_calendar("carol@example.com", owners=["carol@example.com"])
    emu.inject_fault("carol@example.com", status=401, reason="authError", count=10,
                     methods=["events.list"])
    token = authorized_user_file(tmp_path, emu, "carol@example.com")
    config = endpoint_config(emu, tmp_path, f"sqlite:///{tmp_path}/m.db", [
        {"name": "carol", "credentials": str(token), "calendars": ["carol@example.com"]}])
    result = run("-c", str(config), "once")
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "account carol: HTTP 401" in line
    assert "`reconciler auth login --client-secrets CLIENT.json --account carol`" in line


def test_refresh_error_is_translated_without_the_tuple() -> None:
    exc = google.auth.exceptions.RefreshError(
        "invalid_grant: Token has been expired or revoked.",
        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    plain = translate(exc)
    assert isinstance(plain, AuthFailed) and plain.reason == "invalid_grant"
    assert "('" not in str(plain) and "{" not in str(plain)
    advised = refresh_failure(exc, "dana", Identity("authorized_user"))
    assert str(advised) == (
        "the refresh token was rejected (invalid_grant: Token has been expired or revoked.): "
        "re-authorise the account with "
        "`reconciler auth login --client-secrets CLIENT.json --account dana` "
        '(refresh tokens of OAuth apps in "Testing" expire after 7 days; publish the app to '
        "keep them)")
    retry = google.auth.exceptions.RefreshError("internal_failure: x", {"error": "internal_failure"},
                                                retryable=True)
    assert isinstance(refresh_failure(retry, "dana", Identity("authorized_user")),
                      TransientGoogleError)


@pytest.mark.parametrize("reason", ["unauthorized_client", "access_denied"])
def test_delegation_refused_at_refresh_names_client_and_scope(reason: str) -> None:
    exc = google.auth.exceptions.RefreshError(
        f"{reason}: Client is unauthorized to retrieve access tokens using this method.",
        {"error": reason})
    error = refresh_failure(exc, "ops", Identity("service_account", ROBOT, "1234", "x@example.com"))
    assert isinstance(error, AuthFailed)
    assert "domain-wide delegation for subject x@example.com" in str(error)
    assert f"client ID 1234 for the scope {SCOPE}" in str(error)
