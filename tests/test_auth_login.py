"""``reconciler auth login`` through the real google-auth-oauthlib InstalledAppFlow against the
emulator's authorization and token endpoints: loopback redirect (the browser step done with
urllib in a thread), ``--no-browser`` as a separate process, and a revoked refresh token."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from reconciler.google.login import login
from reconciler.store import open_store
from tests.auth_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    client_secrets_file,
    consent,
    emulator_root,
    endpoint_config,
    run,
    start_cli,
)
from tests.helpers import assert_mirror_exact, mirror

USER = "erin@example.com"
KEYS = {"type", "client_id", "client_secret", "refresh_token", "token_uri", "token", "expiry",
        "scopes"}


@pytest.fixture
def emu(calendar_emulator: Emulator) -> Emulator:
    calendar_emulator.oauth.consent_user = USER
    calendar_emulator.add_calendar(USER, owners=[USER])
    calendar_emulator.insert_event(USER, {"summary": "erin's", "start": {"date": "2025-05-01"},
                                          "end": {"date": "2025-05-02"}}, user=USER)
    return calendar_emulator


def assert_token_file(path: Path, emu: Emulator) -> dict:
    data = json.loads(path.read_text())
    assert set(data) >= KEYS
    assert data["type"] == "authorized_user" and data["client_id"] == CLIENT_ID
    assert data["client_secret"] == CLIENT_SECRET
    assert data["token_uri"] == f"{emulator_root(emu)}/token"
    assert data["refresh_token"] in emu.oauth.refresh_tokens()
    assert data["scopes"] == ["https://www.googleapis.com/auth/calendar.readonly"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    return data


def test_loopback_login_writes_a_complete_token_file_that_syncs(emu: Emulator,
                                                               tmp_path: Path) -> None:
    secrets = client_secrets_file(tmp_path, emu)
    out = tmp_path / "erin.json"
    seen: list[str] = []
    done: list[BaseException | None] = []

    def browser(url: str) -> None:  # the user's browser: follows the redirect to the loopback
        seen.append(url)

        def visit() -> None:
            try:
                urllib.request.urlopen(url, timeout=10).read()
                done.append(None)
            except BaseException as exc:  # reported below
                done.append(exc)

        threading.Thread(target=visit, daemon=True).start()

    login(secrets, out, open_browser=browser, echo=lambda _line: None, timeout=30)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(seen[0]).query)
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]
    assert query["code_challenge_method"] == ["S256"]  # PKCE
    assert query["redirect_uri"][0].startswith("http://localhost:")
    assert_token_file(out, emu)

    path = endpoint_config(emu, tmp_path, f"sqlite:///{tmp_path}/m.db", [
        {"name": "erin", "credentials": str(out), "calendars": ["primary"]}])
    result = run("-c", str(path), "once")
    assert result.returncode == 0, result.stderr
    open_store(f"sqlite:///{tmp_path}/m.db")
    assert_mirror_exact(emu, USER)
    check = run("-c", str(path), "auth", "check")
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines() == ["account erin: ok (authorized user)"]


def test_no_browser_login_for_an_account_then_a_revoked_token_is_one_line(
        emu: Emulator, tmp_path: Path) -> None:
    secrets = client_secrets_file(tmp_path, emu)
    path = endpoint_config(emu, tmp_path, f"sqlite:///{tmp_path}/m.db", [
        {"name": "erin", "credentials": "tokens/erin.json", "calendars": [USER]}])
    (tmp_path / "tokens").mkdir()
    proc = start_cli("-c", str(path), "auth", "login", "--client-secrets", str(secrets),
                     "--account", "erin", "--no-browser", stdin=True)
    assert proc.stdout is not None and proc.stdin is not None
    url = ""
    for line in proc.stdout:  # the instructions, then the URL on its own line
        if line.startswith("http"):
            url = line.strip()
            break
    assert url.startswith(f"{emulator_root(emu)}/o/oauth2/auth?"), url
    redirected = consent(url)  # done "on another machine": the address the browser shows
    assert redirected.startswith("http://localhost:")
    out, err = proc.communicate(redirected + "\n", timeout=60)
    assert proc.returncode == 0, err
    token = tmp_path / "tokens" / "erin.json"
    assert f"wrote {token}" in out
    data = assert_token_file(token, emu)

    assert run("-c", str(path), "once").returncode == 0
    open_store(f"sqlite:///{tmp_path}/m.db")
    before = mirror(USER)
    assert before

    emu.revoke_refresh_token(data["refresh_token"])
    emu.oauth.expire_access_tokens()
    result = run("-c", str(path), "once")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    failures = [line for line in lines if line.startswith("reconciler: ")]
    assert len(failures) == 1, lines  # the failure, then only the run's summary line
    assert lines[-1].startswith("synced 0 calendars, 1 failed;"), lines
    line = failures[0]
    assert "account erin" in line and '"Testing" expire after 7 days' in line
    assert "`reconciler auth login --client-secrets CLIENT.json --account erin`" in line
    assert "('" not in line and "{" not in line and data["refresh_token"] not in line
    assert mirror(USER) == before  # nothing lost

    check = run("-c", str(path), "auth", "check")
    assert check.returncode == 1
    assert check.stdout.count("\n") == 1 and "--account erin" in check.stdout


def test_pasting_only_the_code_works_and_a_foreign_state_is_refused(emu: Emulator,
                                                                   tmp_path: Path) -> None:
    secrets = client_secrets_file(tmp_path, emu)
    out = tmp_path / "t.json"
    urls: list[str] = []

    def paste_code() -> str:
        location = consent(urls[0])
        return urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]

    login(secrets, out, no_browser=True, read_line=paste_code,
          echo=lambda text: urls.extend(w for w in text.split() if w.startswith("http://127")))
    assert_token_file(out, emu)

    from reconciler.errors import AuthFailed

    urls.clear()

    def paste_forged() -> str:
        location = consent(urls[0])
        return location.replace("state=", "state=forged")

    with pytest.raises(AuthFailed, match="not granted"):
        login(secrets, tmp_path / "u.json", no_browser=True, read_line=paste_forged,
              echo=lambda text: urls.extend(w for w in text.split() if w.startswith("http://127")))
    assert not (tmp_path / "u.json").exists()


def test_token_endpoint_checks_client_redirect_and_pkce(emu: Emulator, tmp_path: Path) -> None:
    client_secrets_file(tmp_path, emu)
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode()
    redirect = "http://localhost:9/"

    def code() -> str:
        url = f"{emulator_root(emu)}/o/oauth2/auth?" + urllib.parse.urlencode({
            "client_id": CLIENT_ID, "redirect_uri": redirect, "response_type": "code",
            "scope": "https://www.googleapis.com/auth/calendar.readonly", "state": "s1",
            "code_challenge": challenge.rstrip("="), "code_challenge_method": "S256",
            "access_type": "offline"})
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(consent(url)).query)
        assert query["state"] == ["s1"]
        return query["code"][0]

    def exchange(**form: str) -> tuple[int, dict]:
        body = urllib.parse.urlencode({"grant_type": "authorization_code", "client_id": CLIENT_ID,
                                       "client_secret": CLIENT_SECRET, "redirect_uri": redirect,
                                       **form}).encode()
        try:
            answer = urllib.request.urlopen(f"{emulator_root(emu)}/token", body, timeout=10)
            return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    assert exchange(code=code(), code_verifier="w" * 50)[1]["error"] == "invalid_grant"
    assert exchange(code=code(), code_verifier=verifier, client_secret="nope")[0] == 401
    assert exchange(code=code(), code_verifier=verifier,
                    redirect_uri="http://localhost:10/")[1]["error"] == "redirect_uri_mismatch"
    good = code()
    status, payload = exchange(code=good, code_verifier=verifier)
    assert status == 200 and payload["refresh_token"] and payload["access_token"]
    assert exchange(code=good, code_verifier=verifier)[1]["error"] == "invalid_grant"  # single use
    with pytest.raises(urllib.error.HTTPError) as info:
        consent(f"{emulator_root(emu)}/o/oauth2/auth?client_id=unknown&redirect_uri={redirect}")
    assert info.value.code == 401


def test_login_usage_and_bad_client_file_are_one_line(emu: Emulator, tmp_path: Path) -> None:
    bad = tmp_path / "client.json"
    bad.write_text(json.dumps({"type": "service_account"}))
    result = run("auth", "login", "--client-secrets", str(bad), "--output", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "'Desktop app'" in result.stderr
    both = run("auth", "login", "--client-secrets", str(bad))
    assert both.returncode == 2 and "exactly one of --output FILE or --account NAME" in both.stderr
