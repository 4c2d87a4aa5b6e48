"""Credentials for one account: service account, authorized-user token, or none (emulator).

Refreshed authorized-user tokens are written back to their file atomically
(temp file + rename, mode 0600) so a restart does not need a new consent and a
crash mid-write cannot corrupt the file. Nothing here ever logs a token.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import google.auth.credentials
import google.oauth2.credentials
from google.oauth2 import service_account

from reconciler.errors import ConfigError

SCOPES = ["https://www.googleapis.com/auth/calendar.readonly"]
EMULATOR_TOKEN_PREFIX = "emulator-user:"

_write_lock = threading.Lock()


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


class PersistingUserCredentials(google.oauth2.credentials.Credentials):
    """Authorized-user credentials that save each refreshed token to their file."""

    _store_path: Path | None = None

    def refresh(self, request: Any) -> None:
        super().refresh(request)
        if self._store_path is not None:
            with _write_lock:
                write_secret_file(self._store_path, self.to_json())


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
            creds = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
            return creds.with_subject(subject) if subject else creds
        if kind == "authorized_user":
            user = PersistingUserCredentials.from_authorized_user_info(info, scopes=SCOPES)
            if isinstance(info.get("token_uri"), str):
                # google-auth ignores the file's token_uri; honour it (private
                # deployments and the emulator's /token endpoint).
                user = user.with_token_uri(info["token_uri"])
            user._store_path = path
            return user
    except (ValueError, KeyError) as exc:
        raise ConfigError(
            f"account {account}: credentials file {path} is incomplete: {exc}") from None
    raise ConfigError(
        f"account {account}: credentials file {path} has type {kind!r}; expected "
        "'service_account' or 'authorized_user'")
