"""Credentials for one account: service account, authorized-user token, or none (emulator).

Why: a token file must stay a valid credentials file across any number of
refreshes and restarts. google-auth's ``to_json()`` drops ``type`` (and any key
it does not model), so writing it back made the *next* start refuse the file.

Invariants:

- A refreshed authorized-user token is MERGED into the file's own JSON: every
  key the file has keeps its value, only ``token`` and ``expiry`` change (and
  ``refresh_token`` when Google rotates it). The write is atomic (temp file in
  the same folder + ``os.replace`` + fsync of the folder) with mode 0600 (0640
  when the file was readable by its group only), so a crash mid-write cannot corrupt the
  file and nobody else can read it.
- The rewritten file keeps its owner and group: root (``config check`` run by
  an operator) gives it back to the service user; another user never rewrites
  a file it does not own (a warning once saying why).
- If the file on disk no longer holds the refresh token we refreshed with (a
  new ``auth login`` replaced it while ``run`` was up), it is left alone: the
  newer login wins, it is never overwritten with an older grant. Read and
  replace happen under an advisory ``flock`` on a sidecar ``.NAME.lock`` that
  every writer (other processes, ``auth login``) takes.
- A file that cannot be written (read-only mount) costs a warning once per
  process and file, never a failed sync; a file readable by others or writable
  by its group, or a folder others can write, is a warning once per process and
  file (a file only its group may read is fine: :func:`permission_advice`).
- A refresh that Google rejects raises :class:`~reconciler.errors.AuthFailed`
  with one line naming what to do (built by ``reconciler.google.errors``).
- Nothing here ever logs a token.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google.auth.credentials
import google.auth.exceptions
import google.oauth2.credentials
from google.oauth2 import service_account

from reconciler.config import rules
from reconciler.errors import ConfigError
from reconciler.google.errors import SCOPE, Identity, refresh_failure

SCOPES = [SCOPE]  # the one scope string, also named in error advice
EMULATOR_TOKEN_PREFIX = "emulator-user:"

log = logging.getLogger("reconciler.credentials")

_write_lock = threading.Lock()
_warned: set[tuple[str, Path]] = set()
_warned_lock = threading.Lock()


def _warn_once(kind: str, path: Path, message: str, *args: object) -> None:
    with _warned_lock:
        if (kind, path) in _warned:
            return
        _warned.add((kind, path))
    log.warning(message, *args)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (the new directory entry reaches the disk)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # a platform or mount without directory descriptors: nothing to sync
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_secret_file(path: Path, text: str, *, owner: tuple[int, int] | None = None,
                      mode: int = 0o600) -> None:
    """Replace ``path`` with ``text`` atomically, readable by the owner (and ``mode``'s group).

    ``owner`` (uid, gid) is given to the new file before it is renamed into
    place, so a root process refreshing a service user's token leaves it the
    service user's. The folder is fsynced after the rename.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        os.fchmod(fd, mode)
        if owner is not None and owner != (os.geteuid(), os.getegid()):
            os.fchown(fd, *owner)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


def lock_path(path: Path) -> Path:
    """The sidecar file whose advisory lock guards ``path`` (``.NAME.lock`` beside it)."""
    return path.parent / f".{path.name}.lock"


@contextlib.contextmanager
def token_file_lock(path: Path) -> Iterator[None]:
    """Hold the advisory lock of a token file (across processes) for read-then-replace.

    Every writer of a token file (a refresh's write-back, ``auth login``) takes
    it, so a refresh in ``run`` can never replace a newer login it did not see.
    The lock file is created 0600 and, when root creates it, given to the token
    file's owner so that the service user can lock it too. A lock file that
    cannot be opened at all (a read-only folder) means no writer can write
    either: go on without it.
    """
    lock = lock_path(path)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(lock, flags, 0o600)
    except OSError:
        try:
            fd = os.open(lock, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            yield
            return
    try:
        if os.geteuid() == 0:
            with contextlib.suppress(OSError):
                info = path.stat()
                os.fchown(fd, info.st_uid, info.st_gid)
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_owner(path: Path) -> tuple[tuple[int, int] | None, int, str | None]:
    """Who the rewritten ``path`` must belong to, its mode, and why we must not write it.

    Root keeps the file's owner and group; another user may only rewrite a file
    it owns (the rename would hand it over to that user, locking the real owner
    out), keeping the group. The mode stays 0600, or 0640 when the file was
    readable by its group but not by others (a service that reads it through
    its group).
    """
    try:
        info = path.stat()
    except OSError:
        return None, 0o600, None
    old = stat.S_IMODE(info.st_mode)
    mode = 0o600 | (old & 0o040 if not old & 0o007 else 0)
    euid = os.geteuid()
    if euid != 0 and info.st_uid != euid:
        return None, mode, (f"it belongs to uid {info.st_uid} and this process runs as uid "
                            f"{euid}; run the command as the file's owner")
    return (info.st_uid, info.st_gid), mode, None


def format_expiry(expiry: dt.datetime | None) -> str | None:
    """``expiry`` as google-auth writes and reads it: naive UTC, ``...Z``."""
    if expiry is None:
        return None
    if expiry.tzinfo is not None:
        expiry = expiry.astimezone(dt.UTC).replace(tzinfo=None)
    return expiry.strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_refreshed(stored: dict[str, Any], token: str | None, expiry: dt.datetime | None,
                    refresh_token: str | None) -> dict[str, Any]:
    """The file's JSON with a refreshed token merged in (pure).

    Every key of ``stored`` is kept in its order; only ``token``, ``expiry`` and
    (when it changed) ``refresh_token`` get new values.
    """
    merged = dict(stored)
    merged["token"] = token
    merged["expiry"] = format_expiry(expiry)
    if refresh_token and refresh_token != stored.get("refresh_token"):
        merged["refresh_token"] = refresh_token
    return merged


def permission_advice(mode: int, owner_uid: int, euid: int, folder_mode: int,
                      folder: Path, path: Path) -> list[str]:
    """What to change about a credentials file's and its folder's permissions (pure).

    Owner-aware: a file readable by its group only (the deploy guide's 0640
    root:reconciler key, read by the service through its group) is right as it
    is, whoever runs the check; "others" must never read it and the group never
    write it. The advice names 0600 for a file the service owns itself, and
    also 0640 where the service may read it through its group (root's file).
    The folder must not be writable by group or others (without the sticky
    bit): whoever can write there can replace the file.
    """
    advice = []
    if mode & 0o027:
        own = owner_uid == euid and euid != 0
        advice.append(f"credentials file {path} has mode {mode:04o}: it holds secrets; run "
                      f"`chmod 600 {path}`" + ("" if own else " (or `chmod 640` when the service "
                                                              "reads it through its group)"))
    if folder_mode & 0o022 and not folder_mode & stat.S_ISVTX:
        advice.append(f"folder {folder} of credentials file {path} has mode "
                      f"{stat.S_IMODE(folder_mode):04o}: others can replace the file; run "
                      f"`chmod go-w {folder}`")
    return advice


def check_permissions(path: Path) -> None:
    """Warn (once per process and file) about a credentials file others could read or replace."""
    try:
        info = path.stat()
        folder_mode = path.parent.stat().st_mode
    except OSError:
        return
    for line in permission_advice(stat.S_IMODE(info.st_mode), info.st_uid, os.geteuid(),
                                  folder_mode, path.parent, path):
        _warn_once("mode:" + line[:6], path, "%s", line)


class PersistingUserCredentials(google.oauth2.credentials.Credentials):
    """Authorized-user credentials that merge each refreshed token into their file."""

    _store_path: Path | None = None
    _account: str = ""

    def refresh(self, request: Any) -> None:
        """Refresh the access token, then write it back (see the module invariants)."""
        used_refresh_token = self.refresh_token
        try:
            super().refresh(request)
        except google.auth.exceptions.RefreshError as exc:
            raise refresh_failure(exc, self._account, Identity("authorized_user")) from exc
        if self._store_path is not None:
            self._write_back(self._store_path, used_refresh_token)

    def _write_back(self, path: Path, used_refresh_token: str | None) -> None:
        with _write_lock, token_file_lock(path):
            try:
                stored = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                stored = None
            if not isinstance(stored, dict):
                _warn_once("unreadable", path, "credentials file %s is no longer readable JSON; "
                           "the refreshed token was not saved", path)
                return
            if stored.get("refresh_token") != used_refresh_token:
                log.info("credentials file %s was replaced by a newer login; not overwritten", path)
                return
            merged = merge_refreshed(stored, self.token, self.expiry, self.refresh_token)
            owner, mode, refusal = write_owner(path)
            if refusal is not None:
                _warn_once("owner", path, "the refreshed token was not saved to %s: %s; it will "
                           "be refreshed again after a restart", path, refusal)
                return
            if owner is not None and owner[1] != os.getegid() and os.geteuid() != 0:
                owner = (owner[0], owner[1]) if _in_group(owner[1]) else None
            try:
                write_secret_file(path, json.dumps(merged, indent=2) + "\n", owner=owner,
                                  mode=mode)
            except OSError as exc:
                _warn_once("write", path, "cannot save the refreshed token to %s (%s); it will be "
                           "refreshed again after a restart", path, exc.strerror or exc)


def _in_group(gid: int) -> bool:
    """Whether this process may give a file it owns to group ``gid``."""
    return gid == os.getegid() or gid in os.getgroups()


class AdvisedServiceAccountCredentials(service_account.Credentials):
    """Service-account credentials whose rejected refreshes say what to fix."""

    _account: str = ""
    _client_id_for_advice: str | None = None

    def refresh(self, request: Any) -> None:
        """Fetch an access token; a rejection becomes one actionable line."""
        try:
            super().refresh(request)
        except google.auth.exceptions.RefreshError as exc:
            raise refresh_failure(exc, self._account, identity_of(self)) from exc


def identity_of(credentials: google.auth.credentials.Credentials | None) -> Identity:
    """What kind of principal ``credentials`` are, for error advice."""
    if isinstance(credentials, service_account.Credentials):
        return Identity("service_account", client_email=credentials.service_account_email,
                        client_id=getattr(credentials, "_client_id_for_advice", None),
                        subject=getattr(credentials, "_subject", None))
    if isinstance(credentials, google.oauth2.credentials.Credentials) and credentials.refresh_token:
        return Identity("authorized_user")
    return Identity("anonymous")


def _read_json(path: Path, account: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"account {account}: credentials file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"account {account}: credentials file {path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"account {account}: credentials file {path} is not a JSON object")
    return data


def _check_token_uri(account: str, path: Path, token_uri: object) -> None:
    """Refuse a ``token_uri`` the refresh token and client secret must not travel to.

    The refresh POSTs both, so the URL must be https unless its host is
    loopback (the emulator's ``/token``) or ``$RECONCILER_ALLOW_REMOTE_EMULATOR=1``.
    """
    if token_uri is None:
        return  # google-auth's default, https://oauth2.googleapis.com/token
    problem = (rules.insecure_url_problem(token_uri, allow_remote=rules.remote_emulator_allowed(
        os.environ)) if isinstance(token_uri, str) else "must be a string URL")
    if problem:
        raise ConfigError(f"account {account}: credentials file {path}: token_uri {problem}")


def load_credentials(account: str, path: Path | None, subject: str | None,
                     emulator: bool) -> google.auth.credentials.Credentials:
    """The credentials an account's API calls are made with.

    With the emulator and no file: anonymous, or (when ``subject`` is set) a
    static token naming that user, which the project's emulator understands
    as "act as this user" just as domain-wide delegation does with Google.
    """
    if path is None:
        if not emulator:
            raise ConfigError(f"account {account}: no credentials file configured")
        if subject:
            return google.oauth2.credentials.Credentials(token=EMULATOR_TOKEN_PREFIX + subject)
        return google.auth.credentials.AnonymousCredentials()
    info = _read_json(path, account)
    kind = info.get("type")
    try:
        if kind == "service_account":
            sa = AdvisedServiceAccountCredentials.from_service_account_info(info, scopes=SCOPES)
            if subject:
                sa = sa.with_subject(subject)
            sa._account = account
            sa._client_id_for_advice = info.get("client_id") if isinstance(
                info.get("client_id"), str) else None
            check_permissions(path)
            return sa
        if kind == "authorized_user":
            user = PersistingUserCredentials.from_authorized_user_info(info, scopes=SCOPES)
            _check_token_uri(account, path, info.get("token_uri"))
            if isinstance(info.get("token_uri"), str):
                # google-auth ignores the file's token_uri; honour it (private
                # deployments and the emulator's /token endpoint). Its copy drops
                # the expiry: keep it, so an expired token is refreshed before use.
                expiry = user.expiry
                user = user.with_token_uri(info["token_uri"])
                user.expiry = expiry
            user._store_path = path
            user._account = account
            check_permissions(path)
            return user
    except (ValueError, KeyError) as exc:
        raise ConfigError(
            f"account {account}: credentials file {path} is incomplete: {exc}") from None
    raise ConfigError(
        f"account {account}: credentials file {path} has type {kind!r}; expected "
        "'service_account' (a key from the Cloud console) or 'authorized_user' "
        f"(from `reconciler auth login --client-secrets CLIENT.json --account {account}`)")
