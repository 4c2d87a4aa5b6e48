"""Credentials for one account: service account, authorized-user token, or none (emulator).

Why: a token file must stay a valid credentials file across any number of
refreshes and restarts. google-auth's ``to_json()`` drops ``type`` (and any key
it does not model), so writing it back made the *next* start refuse the file.

Invariants:

- A refreshed authorized-user token is MERGED into the file's own JSON: every
  key the file has keeps its value, only ``token`` and ``expiry`` change (and
  ``refresh_token`` when Google rotates it). The write is atomic (temp file in
  the same folder + ``os.replace``) with mode 0600, so a crash mid-write cannot
  corrupt the file and nobody else can read it.
- If the file on disk no longer holds the refresh token we refreshed with (a
  new ``auth login`` replaced it while ``run`` was up), it is left alone: the
  newer login wins, it is never overwritten with an older grant.
- A file that cannot be written (read-only mount) costs a warning once per
  process and file, never a failed sync; a file readable by group or others is
  a warning once per process and file.
- A refresh that Google rejects raises :class:`~reconciler.errors.AuthFailed`
  with one line naming what to do (built by ``reconciler.google.errors``).
- Nothing here ever logs a token.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any

import google.auth.credentials
import google.auth.exceptions
import google.oauth2.credentials
from google.oauth2 import service_account

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


def write_secret_file(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, readable by the owner only."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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


def check_permissions(path: Path) -> None:
    """Warn (once per process and file) when a credentials file is readable by group/other."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o077:
        _warn_once("mode", path, "credentials file %s has mode %04o: it holds secrets; "
                   "run `chmod 600 %s`", path, mode, path)


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
        with _write_lock:
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
            try:
                write_secret_file(path, json.dumps(merged, indent=2) + "\n")
            except OSError as exc:
                _warn_once("write", path, "cannot save the refreshed token to %s (%s); it will be "
                           "refreshed again after a restart", path, exc.strerror or exc)


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
