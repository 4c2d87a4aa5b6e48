"""Accounts end to end: real credential flows against the emulator's token endpoint,
``primary`` resolution, discovery through calendarList, and shared calendars.

These use ``[google] api_endpoint`` (not the environment variable, which makes
every account anonymous) so that credentials files are really used.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from reconciler.config import load_config
from reconciler.emulator import Emulator
from reconciler.once import run_once
from reconciler.store import open_store
from reconciler.store.models import Account, Calendar
from tests.helpers import assert_mirror_exact, mirror, run_cli, write_config

SHARED = "shared@group.calendar.google.com"


@pytest.fixture(autouse=True)
def _credentials_really_used(calendar_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator fixture exports GOOGLE_CALENDAR_EMULATOR_HOST; drop it here."""
    monkeypatch.delenv("GOOGLE_CALENDAR_EMULATOR_HOST", raising=False)


def endpoint_config(emu: Emulator, tmp_path: Path, database_url: str,
                    accounts: list[dict]) -> Path:
    path = write_config(tmp_path, database_url, accounts=accounts)
    text = path.read_text().replace("[google]\n", f'[google]\napi_endpoint = "{emu.base_url}"\n')
    path.write_text(text)
    return path


def load(path: Path):
    config = load_config(path, env={})
    open_store(config.database.url)
    return config


def authorized_user_file(tmp_path: Path, emu: Emulator, user: str, name: str = "token.json"
                         ) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({
        "type": "authorized_user", "client_id": "id.apps.googleusercontent.com",
        "client_secret": "s3cret", "refresh_token": f"emulator-user:{user}",
        "token_uri": emu.base_url.split("/calendar/v3/")[0] + "/token"}))
    path.chmod(0o600)
    return path


def service_account_file(tmp_path: Path, emu: Emulator) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "demo", "private_key_id": "k1",
        "private_key": pem, "client_email": "robot@demo.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": emu.base_url.split("/calendar/v3/")[0] + "/token"}))
    path.chmod(0o600)
    return path


def test_authorized_user_token_is_refreshed_and_written_back_0600(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    emu.add_calendar("alice@example.com", owners=["alice@example.com"])
    event = emu.insert_event("alice@example.com", {"summary": "alice's",
                                                   "start": {"date": "2025-05-01"},
                                                   "end": {"date": "2025-05-02"}},
                             user="alice@example.com")
    token = authorized_user_file(tmp_path, emu, "alice@example.com")
    path = endpoint_config(emu, tmp_path, f"sqlite:///{tmp_path}/m.db", [
        {"name": "alice", "credentials": str(token), "calendars": ["primary"]}])
    result = run_cli(None, "-c", str(path), "once")
    assert result.returncode == 0, result.stderr
    saved = json.loads(token.read_text())
    assert saved["token"] and saved["refresh_token"] == "emulator-user:alice@example.com"
    assert stat.S_IMODE(os.stat(token).st_mode) == 0o600
    load(path)
    assert set(mirror("alice@example.com")) == {event["id"]}  # primary resolved to its real id


def test_revoked_refresh_token_parks_the_account_with_one_line(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    emu.add_calendar("carol@example.com", owners=["carol@example.com"])
    token = authorized_user_file(tmp_path, emu, "carol@example.com")
    emu.revoke_refresh_token("emulator-user:carol@example.com")
    path = endpoint_config(emu, tmp_path, f"sqlite:///{tmp_path}/m.db", [
        {"name": "carol", "credentials": str(token), "calendars": ["carol@example.com"]}])
    result = run_cli(None, "-c", str(path), "once")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("reconciler:")]
    assert len(lines) == 1 and "carol" in lines[0] and "re-authorise" in lines[0]
    assert "Traceback" not in result.stderr and "emulator-user" not in result.stderr
    status = run_cli(None, "-c", str(path), "status", "--json")
    assert json.loads(status.stdout.splitlines()[0])["state"] == "needs_reauth"


def test_service_account_with_domain_wide_delegation(calendar_emulator: Emulator,
                                                     tmp_path: Path) -> None:
    emu = calendar_emulator
    emu.add_calendar("bob@example.com", owners=["bob@example.com"])
    emu.insert_event("bob@example.com", {"summary": "bob's", "start": {"date": "2025-05-01"},
                                         "end": {"date": "2025-05-02"}}, user="bob@example.com")
    key = service_account_file(tmp_path, emu)
    path = endpoint_config(emu, tmp_path, f"sqlite:///{tmp_path}/m.db", [
        {"name": "bob", "credentials": str(key), "subject": "bob@example.com",
         "calendars": ["primary"]}])
    config = load(path)
    assert run_once(config) == 0
    assert_mirror_exact(emu, "bob@example.com")
    users = {r.user for r in emu.request_log if r.method == "events.list"}
    assert users == {"bob@example.com"}


def test_discovery_mirrors_a_shared_calendar_once_and_hands_it_over(
        calendar_emulator: Emulator, database_url: str, tmp_path: Path) -> None:
    emu = calendar_emulator
    for user in ("ann@example.com", "ben@example.com"):
        emu.add_calendar(user, owners=[user])
    emu.add_calendar(SHARED, owners=["ann@example.com"])
    emu.share(SHARED, "ben@example.com", role="writer")
    emu.insert_event(SHARED, {"summary": "team", "start": {"date": "2025-05-01"},
                              "end": {"date": "2025-05-02"}}, user="ann@example.com")
    path = endpoint_config(emu, tmp_path, database_url, [
        {"name": "ann", "subject": "ann@example.com", "discover": True},
        {"name": "ben", "subject": "ben@example.com", "discover": True, "calendars": ["primary"]},
    ])
    config = load(path)
    assert run_once(config) == 0
    rows = {c.calendar_id: c.account for c in Calendar.select()}
    assert rows == {"ann@example.com": "ann", "ben@example.com": "ben", SHARED: "ann"}
    assert_mirror_exact(emu, SHARED)
    assert Account.get(Account.name == "ben").primary_calendar_id == "ben@example.com"

    emu.unshare(SHARED, "ann@example.com")
    emu.insert_event(SHARED, {"summary": "after the handover", "start": {"date": "2025-05-03"},
                              "end": {"date": "2025-05-04"}}, user="ben@example.com")
    assert run_once(config) == 0
    assert Calendar.get(Calendar.calendar_id == SHARED).account == "ben"
    assert_mirror_exact(emu, SHARED)

    emu.unshare(SHARED, "ben@example.com")
    assert run_once(config) == 0
    row = Calendar.get(Calendar.calendar_id == SHARED)
    assert row.removed  # nobody lists it any more: no longer polled, rows kept
    assert len(mirror(SHARED)) == 2


def test_discovery_survives_an_expired_calendar_list_token(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    emu.add_calendar("dan@example.com", owners=["dan@example.com"])
    emu.add_calendar(SHARED, owners=["dan@example.com"])
    path = endpoint_config(emu, tmp_path, f"sqlite:///{tmp_path}/m.db", [
        {"name": "dan", "subject": "dan@example.com", "discover": True}])
    config = load(path)
    assert run_once(config) == 0
    emu.add_calendar("later@group.calendar.google.com", owners=["dan@example.com"])
    emu.expire_tokens()  # event and calendarList tokens alike
    emu.clear_request_log()
    assert run_once(config) == 0
    assert {c.calendar_id for c in Calendar.select().where(~Calendar.removed)} == {
        "dan@example.com", SHARED, "later@group.calendar.google.com"}
    lists = [r for r in emu.request_log if r.method == "calendarList.list"]
    assert [r.status for r in lists] == [410, 200]


def test_service_account_without_subject_reads_calendars_shared_with_it(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    robot = "robot@demo.iam.gserviceaccount.com"
    emu.add_calendar(SHARED, owners=["ann@example.com"])
    emu.share(SHARED, robot, role="reader")
    emu.insert_event(SHARED, {"summary": "shared with the robot", "start": {"date": "2025-05-01"},
                              "end": {"date": "2025-05-02"}}, user="ann@example.com")
    key = service_account_file(tmp_path, emu)
    path = endpoint_config(emu, tmp_path, f"sqlite:///{tmp_path}/m.db", [
        {"name": "robot", "credentials": str(key), "calendars": [SHARED]}])
    result = run_cli(None, "-c", str(path), "once")
    assert result.returncode == 0, result.stderr
    load(path)
    assert_mirror_exact(emu, SHARED)
    assert {r.user for r in emu.request_log if r.method == "events.list"} == {robot}
    assert json.loads(key.read_text())["type"] == "service_account"  # never written back
