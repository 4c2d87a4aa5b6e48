"""One token refresh per account at a time, counted at the emulator's ``/token``.

The real CLI as a separate process, 40 calendars of one account synced by 32
threads that share the account's credentials: after the access token expires
(on the emulator's side: every thread's request answers 401; or on the client's
side: the stored expiry is past), the pass sends exactly one token request. A
service account whose delegation is refused is one line for the account and
one token request, not one of each per calendar.
"""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.emulator import Emulator
from tests.auth_support import endpoint_config, run
from tests.test_accounts import authorized_user_file, service_account_file

USER = "alice@example.com"
CALENDARS = [f"c{n:02d}@group.calendar.google.com" for n in range(40)]


def _fleet(emu: Emulator, tmp_path: Path) -> tuple[Path, Path]:
    for cal in CALENDARS:
        emu.add_calendar(cal, owners=[USER])
        emu.insert_event(cal, {"summary": "x", "start": {"date": "2025-05-01"},
                               "end": {"date": "2025-05-02"}}, user=USER)
    token = authorized_user_file(tmp_path, emu, USER)
    config = endpoint_config(emu, tmp_path, f"sqlite:///{tmp_path}/m.db", [
        {"name": "alice", "credentials": token.name, "calendars": CALENDARS}],
        sync={"concurrency": 32})
    return config, token


def _refreshes(emu: Emulator) -> int:
    return sum(1 for grant in emu.token_requests if grant == "refresh_token")


def test_a_pass_over_40_calendars_after_a_401_expiry_sends_one_token_request(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    config, _token = _fleet(emu, tmp_path)
    first = run("-c", str(config), "once")
    assert first.returncode == 0, first.stderr
    assert _refreshes(emu) == 1  # the file had no access token yet

    emu.oauth.expire_access_tokens()  # the client still thinks its token valid: 32 threads get 401
    emu.set_latency(fixed_ms=100)  # every thread's first request is in flight before any 401 returns
    before = _refreshes(emu)
    second = run("-c", str(config), "once")
    assert second.returncode == 0, second.stderr
    assert _refreshes(emu) - before == 1


def test_a_pass_after_the_stored_expiry_passed_sends_one_token_request(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    config, token = _fleet(emu, tmp_path)
    first = run("-c", str(config), "once")
    assert first.returncode == 0, first.stderr
    saved = json.loads(token.read_text())
    saved["expiry"] = "2000-01-01T00:00:00Z"  # every thread sees the token expired before sending
    token.write_text(json.dumps(saved))
    emu.set_latency(fixed_ms=100)
    before = _refreshes(emu)
    second = run("-c", str(config), "once")
    assert second.returncode == 0, second.stderr
    assert _refreshes(emu) - before == 1


def test_refused_delegation_is_one_line_and_one_token_request_for_the_account(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    subject = "bob@example.com"
    cals = [f"b{n}@group.calendar.google.com" for n in range(5)]
    for cal in cals:
        emu.add_calendar(cal, owners=[subject])
    emu.refused_subjects.add(subject)
    key = service_account_file(tmp_path, emu)
    config = endpoint_config(emu, tmp_path, f"sqlite:///{tmp_path}/m.db", [
        {"name": "bob", "credentials": str(key), "subject": subject, "calendars": cals}],
        sync={"concurrency": 8})
    emu.set_latency(fixed_ms=50)
    result = run("-c", str(config), "once")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("reconciler: ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("reconciler: account bob: ")
    assert "domain-wide delegation for subject bob@example.com" in lines[0]
    assert "(5 calendars not synced)" in lines[0]
    assert "Traceback" not in result.stderr
    assert sum(1 for grant in emu.token_requests if "jwt" in grant) == 1
