"""Day two with an authorized-user token file: the real CLI as separate processes, access
tokens that expire in the emulator, refreshes written back, and restarts that must accept
the file they wrote (the bug of issue 10: `to_json()` dropped "type")."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from reconciler.store import open_store
from tests.auth_support import emulator_root, endpoint_config, run, start_cli
from tests.helpers import assert_mirror_exact, mirror, wait_for

USER = "alice@example.com"
CAL = "team@group.calendar.google.com"


def token_file(tmp_path: Path, emu: Emulator) -> tuple[Path, dict]:
    original = {
        "type": "authorized_user", "client_id": "id.apps.googleusercontent.com",
        "client_secret": "s3cret", "refresh_token": f"emulator-user:{USER}",
        "token_uri": f"{emulator_root(emu)}/token", "quota_project_id": "billing-project",
        "account": "", "x_site_note": {"kept": True}}
    path = tmp_path / "alice.json"
    path.write_text(json.dumps(original))
    path.chmod(0o600)
    return path, original


def event(summary: str) -> dict:
    return {"summary": summary, "start": {"date": "2025-05-01"}, "end": {"date": "2025-05-02"}}


def assert_file_kept(path: Path, original: dict) -> dict:
    saved = json.loads(path.read_text())
    assert {k: saved[k] for k in original} == original  # every key, same value
    assert set(saved) == set(original) | {"token", "expiry"}
    assert saved["token"] and saved["expiry"].endswith("Z")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    return saved


def ok_lists(emu: Emulator) -> int:
    return sum(1 for r in emu.request_log if r.method == "events.list" and r.status == 200)


def run_until_synced(config: Path, emu: Emulator, summary: str) -> None:
    """Start `reconciler run`, wait until `summary` is mirrored, SIGTERM it; it must exit 0."""
    proc = start_cli("-c", str(config), "run")
    try:
        wait_for(lambda: proc.poll() is not None or any(
            raw.get("summary") == summary for _s, raw in mirror(CAL).values()), 60,
            f"run to mirror {summary!r}")
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.slow
def test_once_expiry_once_once_then_run_restarted_after_refreshes(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    emu.add_calendar(CAL, owners=[USER])
    emu.insert_event(CAL, event("first"), user=USER)
    path, original = token_file(tmp_path, emu)
    db = f"sqlite:///{tmp_path}/m.db"
    config = endpoint_config(emu, tmp_path, db, [
        {"name": "alice", "credentials": path.name, "calendars": [CAL]}], sync={"interval": 1})

    first = run("-c", str(config), "once")
    assert first.returncode == 0, first.stderr
    saved = assert_file_kept(path, original)
    open_store(db)
    assert_mirror_exact(emu, CAL)

    emu.clock.advance(3601)  # the access token expires in the emulator: 401, refresh, retry
    emu.insert_event(CAL, event("second"), user=USER)
    second = run("-c", str(config), "once")
    assert second.returncode == 0, second.stderr
    refreshed = assert_file_kept(path, original)
    assert refreshed["token"] != saved["token"]
    assert_mirror_exact(emu, CAL)

    third = run("-c", str(config), "once")  # starts on the file the refresh wrote
    assert third.returncode == 0, third.stderr
    assert assert_file_kept(path, original)["token"] == refreshed["token"]  # still valid: no refresh

    emu.oauth.expire_access_tokens()
    emu.insert_event(CAL, event("third"), user=USER)
    run_until_synced(config, emu, "third")  # refreshes inside run and writes back
    after_run = assert_file_kept(path, original)
    assert after_run["token"] != refreshed["token"]
    emu.insert_event(CAL, event("fourth"), user=USER)
    run_until_synced(config, emu, "fourth")  # restarted after a refresh
    assert_file_kept(path, original)
    assert_mirror_exact(emu, CAL)


def test_read_only_file_is_one_warning_and_the_sync_succeeds(calendar_emulator: Emulator,
                                                            tmp_path: Path) -> None:
    if shutil.which("chattr") is None:
        pytest.skip("chattr is needed to make a folder read-only for root")
    emu = calendar_emulator
    emu.add_calendar(CAL, owners=[USER])
    emu.insert_event(CAL, event("first"), user=USER)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    path, _original = token_file(secrets, emu)
    before = path.read_text()
    config = endpoint_config(emu, tmp_path, f"sqlite:///{tmp_path}/m.db", [
        {"name": "alice", "credentials": str(path), "calendars": [CAL]}])
    if os.geteuid() == 0:
        lock = subprocess.run(["chattr", "+i", str(path), str(secrets)], capture_output=True)
        if lock.returncode != 0:
            pytest.skip(f"chattr +i refused here: {lock.stderr.strip()}")
    else:
        secrets.chmod(0o500)
        path.chmod(0o400)
    try:
        first = run("-c", str(config), "once")
        emu.oauth.expire_access_tokens()
        second = run("-c", str(config), "once")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path), str(secrets)], check=True)
        else:
            secrets.chmod(0o700)
    for result in (first, second):
        assert result.returncode == 0, result.stderr
        warnings = [line for line in result.stderr.splitlines() if "cannot save" in line]
        assert len(warnings) == 1, result.stderr  # once per process, not per refresh
        assert "Traceback" not in result.stderr
    assert path.read_text() == before


def test_group_readable_file_warns_once(calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    emu.add_calendar(CAL, owners=[USER])
    path, _original = token_file(tmp_path, emu)
    path.chmod(0o644)
    config = endpoint_config(emu, tmp_path, f"sqlite:///{tmp_path}/m.db", [
        {"name": "alice", "credentials": str(path), "calendars": [CAL]}])
    result = run("-c", str(config), "once")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("chmod 600") == 1
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # the write-back tightened it


def test_a_newer_login_is_never_overwritten_by_an_older_grant(tmp_path: Path) -> None:
    from reconciler.google.credentials import PersistingUserCredentials

    path = tmp_path / "t.json"
    path.write_text(json.dumps({"type": "authorized_user", "refresh_token": "new-login",
                                "client_id": "c", "client_secret": "s"}))
    creds = PersistingUserCredentials("tok", refresh_token="old-grant")
    creds._write_back(path, "old-grant")
    assert json.loads(path.read_text())["refresh_token"] == "new-login"
    assert "token" not in json.loads(path.read_text())
