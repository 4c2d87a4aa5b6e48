"""Issue 21, findings 4 and 7: token files keep their owner, writers take one lock, login
asks for PKCE itself and never replaces a file that is not a token without ``--force``.

The tests run as root, so "another user" is uid 998: a token file chowned to it
must stay its file after root refreshes it, and a process running as uid 998
must refuse to rewrite root's file (the rename would hand it over).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import google.auth.transport.requests
import pytest

from reconciler.emulator import Emulator
from reconciler.google.credentials import (
    PersistingUserCredentials,
    load_credentials,
    lock_path,
    permission_advice,
    token_file_lock,
)
from reconciler.google.login import login, pasted_code
from tests.auth_support import client_secrets_file, consent, emulator_root, run
from tests.helpers import wait_for

USER = "alice@example.com"
OTHER = 998  # an unprivileged uid/gid that exists on the test machine

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="changes owners: needs root")


def write_token(folder: Path, emu: Emulator, refresh_token: str | None = None) -> Path:
    path = folder / "alice.json"
    path.write_text(json.dumps({
        "type": "authorized_user", "client_id": "id.apps.googleusercontent.com",
        "client_secret": "s3cret", "refresh_token": refresh_token or f"emulator-user:{USER}",
        "token_uri": f"{emulator_root(emu)}/token"}))
    path.chmod(0o600)
    return path


def refresh(path: Path) -> PersistingUserCredentials:
    credentials = load_credentials("alice", path, None, emulator=False)
    assert isinstance(credentials, PersistingUserCredentials)
    credentials.refresh(google.auth.transport.requests.Request())
    return credentials


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder both root and uid 998 can reach (pytest's tmp_path is root's only)."""
    with tempfile.TemporaryDirectory(prefix="rc-tokens-") as name:
        folder = Path(name)
        folder.chmod(0o755)
        yield folder


@needs_root
def test_root_refresh_keeps_the_owner_group_and_a_group_readable_mode(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    path = write_token(tmp_path, calendar_emulator)
    os.chown(path, OTHER, OTHER)
    refresh(path)
    info = path.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (OTHER, OTHER, 0o600)
    assert json.loads(path.read_text())["token"]  # the refreshed token was written
    assert lock_path(path).stat().st_uid == OTHER  # the service user can take the lock too

    path.chmod(0o640)  # root:reconciler 0640, read through the group, stays that way
    os.chown(path, 0, OTHER)
    refresh(path)
    info = path.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, OTHER, 0o640)


@needs_root
def test_another_user_refuses_to_rewrite_a_file_it_does_not_own(
        calendar_emulator: Emulator, shared_dir: Path) -> None:
    path = write_token(shared_dir, calendar_emulator)
    path.chmod(0o644)  # readable, so uid 998 can refresh with it
    shared_dir.chmod(0o777)  # writable, so nothing but the rule stops the rename
    before = path.read_text()
    read_end, write_end = os.pipe()
    pid = os.fork()  # the interpreter lives under /root, which uid 998 cannot run: fork instead
    if pid == 0:  # the child: become uid 998, refresh twice, report the warnings
        status = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(OTHER)
            os.setuid(OTHER)
            handler = logging.StreamHandler(os.fdopen(write_end, "w"))
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger = logging.getLogger("reconciler.credentials")
            logger.addHandler(handler)
            refresh(path).refresh(google.auth.transport.requests.Request())
            handler.flush()
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        stderr = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, stderr
    refusals = [line for line in stderr.splitlines() if "was not saved" in line]
    assert refusals == [f"the refreshed token was not saved to {path}: it belongs to uid 0 and "
                        f"this process runs as uid {OTHER}; run the command as the file's owner; "
                        "it will be refreshed again after a restart"]
    assert path.read_text() == before and path.stat().st_uid == 0


def proc_lock_waiters(lock: Path) -> int:
    """Processes blocked on a flock of ``lock`` (``->`` lines of /proc/locks)."""
    inode = lock.stat().st_ino
    return sum(1 for line in Path("/proc/locks").read_text().splitlines()
               if "->" in line and "FLOCK" in line and line.split()[-3].endswith(f":{inode}"))


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs /proc/locks")
def test_a_refresh_waits_for_the_lock_and_then_keeps_a_newer_login(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    path = write_token(tmp_path, emu)
    credentials = load_credentials("alice", path, None, emulator=False)
    errors: list[BaseException] = []

    def refresh_in_thread() -> None:
        try:
            credentials.refresh(google.auth.transport.requests.Request())
        except BaseException as exc:  # reported below
            errors.append(exc)

    newer = f"emulator-user:{USER}-newer-login"
    with token_file_lock(path):  # another process (an `auth login`) holds the file
        worker = threading.Thread(target=refresh_in_thread)
        worker.start()
        wait_for(lambda: proc_lock_waiters(lock_path(path)) == 1, 30, "the refresh to wait")
        write_token(tmp_path, emu, refresh_token=newer)  # the login writes its newer grant
    worker.join(30)
    assert not errors and not worker.is_alive()
    saved = json.loads(path.read_text())
    assert saved["refresh_token"] == newer and "token" not in saved  # not overwritten


@pytest.mark.parametrize(("mode", "owner", "euid", "folder", "expected"), [
    (0o640, 0, 0, 0o755, []),  # deploy guide: root:reconciler 0640, checked by root
    (0o640, 0, OTHER, 0o750, []),  # the same, read by the service through its group
    (0o600, OTHER, OTHER, 0o700, []),
    (0o644, OTHER, OTHER, 0o755, ["chmod 600 F`"]),
    (0o660, 0, 0, 0o755, ["chmod 600 F` (or `chmod 640` when the service reads it through"]),
    (0o600, OTHER, OTHER, 0o777, ["chmod go-w D`"]),
    (0o600, OTHER, OTHER, 0o1777, []),  # sticky /tmp-like folder: others cannot replace it
])
def test_permission_advice_is_owner_aware(mode: int, owner: int, euid: int, folder: int,
                                          expected: list[str]) -> None:
    advice = permission_advice(mode, owner, euid, folder | stat.S_IFDIR, Path("D"), Path("F"))
    assert len(advice) == len(expected), advice
    for line, fragment in zip(advice, expected, strict=True):
        assert fragment in line


@pytest.fixture
def emu(calendar_emulator: Emulator) -> Emulator:
    calendar_emulator.oauth.consent_user = USER
    return calendar_emulator


@pytest.mark.parametrize("content", [
    json.dumps({"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----"}),
    '[database]\nurl = "sqlite:///reconciler.db"\n',
])
def test_login_output_refuses_a_file_that_is_not_a_token_without_force(
        emu: Emulator, tmp_path: Path, content: str) -> None:
    secrets = client_secrets_file(tmp_path, emu)
    target = tmp_path / "precious"
    target.write_text(content)
    result = run("auth", "login", "--client-secrets", str(secrets), "--output", str(target),
                 "--no-browser", timeout=60)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"reconciler: error: {target} exists and it is ")
    assert line.endswith(": not replaced; choose another file, or give --force to replace it "
                         "with the token")
    assert target.read_text() == content

    urls: list[str] = []
    login(secrets, target, no_browser=True, force=True,
          read_line=lambda: consent(urls[0]),
          echo=lambda text: urls.extend(w for w in text.split() if w.startswith("http://127")))
    assert json.loads(target.read_text())["type"] == "authorized_user"


def test_login_url_carries_pkce_and_the_code_alone_is_enough(emu: Emulator,
                                                              tmp_path: Path) -> None:
    secrets = client_secrets_file(tmp_path, emu)
    urls: list[str] = []

    def paste_query_only() -> str:  # what "only its code=... value" means to a user
        return urllib.parse.urlsplit(consent(urls[0])).query

    login(secrets, tmp_path / "t.json", no_browser=True, read_line=paste_query_only,
          echo=lambda text: urls.extend(w for w in text.split() if w.startswith("http://127")))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(urls[0]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43  # base64url SHA-256, no padding
    assert json.loads((tmp_path / "t.json").read_text())["refresh_token"]


@pytest.mark.parametrize(("pasted", "expected"), [
    ("http://localhost:5/?state=s&code=c1", ("http://localhost:5/?state=s&code=c1", None)),
    ("localhost:5/?state=s&code=c1", ("http://localhost:5/?state=s&code=c1", None)),
    ("code=c%2F1&scope=x", (None, "c/1")),
    ("?state=s&code=c1", (None, "c1")),
    ("4/0Ab-c1", (None, "4/0Ab-c1")),
    ("   ", (None, None)),
])
def test_what_a_user_pastes(pasted: str, expected: tuple[str | None, str | None]) -> None:
    assert pasted_code(pasted) == expected
