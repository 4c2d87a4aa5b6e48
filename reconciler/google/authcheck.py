"""``reconciler auth check``: do an account's credentials work right now?

Why: a token that died (refresh tokens of OAuth apps in "Testing" last 7 days),
a key deleted in IAM or a missing domain-wide delegation otherwise shows up
only at the next sync. This asks Google the two smallest questions that prove
the credentials: one token refresh and one ``calendarList.list`` with
``maxResults=1`` (no retries, so a failure answers at once).

Invariants: nothing is written except the refreshed token merged into its own
file (as every refresh does); the verdict per account is one line; an account
without a credentials file (emulator) is checked anonymously.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import google.auth.credentials
import google_auth_httplib2
import httplib2
from google.oauth2 import service_account
from googleapiclient.discovery import build

from reconciler.config import AccountConfig, Config
from reconciler.errors import ReconcilerError
from reconciler.google.credentials import PersistingUserCredentials, identity_of, load_credentials
from reconciler.google.errors import describe_failure, translate


@dataclass(frozen=True)
class CheckResult:
    """The verdict for one account."""

    account: str
    ok: bool
    line: str


def _kind(credentials: google.auth.credentials.Credentials, endpoint: str | None) -> str:
    """How the account signed in, in words: ``service account X as Y``, ``authorized user``,
    or ``anonymous access to ENDPOINT`` (the emulator needs no credentials)."""
    identity = identity_of(credentials)
    if identity.kind == "service_account":
        who = identity.client_email or "service account"
        return f"service account {who}" + (f" as {identity.subject}" if identity.subject else "")
    if identity.kind == "anonymous":
        return f"anonymous access to {endpoint}" if endpoint else "anonymous access"
    return "authorized user"


def check_account(config: Config, account: AccountConfig) -> CheckResult:
    """One token refresh and one ``calendarList.list(maxResults=1)`` for ``account``."""
    try:
        credentials = load_credentials(account.name, account.credentials, account.subject,
                                       config.google.emulator)
    except ReconcilerError as exc:
        return CheckResult(account.name, False, f"account {account.name}: {exc}")
    http = httplib2.Http(timeout=config.google.timeout)
    try:
        if isinstance(credentials, PersistingUserCredentials | service_account.Credentials):
            credentials.refresh(google_auth_httplib2.Request(http))
        authed = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(
            timeout=config.google.timeout))
        options: Any = ({"api_endpoint": config.google.api_endpoint}
                        if config.google.api_endpoint else None)
        service = build("calendar", "v3", http=authed, static_discovery=True,
                        client_options=options, cache_discovery=False)
        service.calendarList().list(maxResults=1).execute(num_retries=0)
    except Exception as exc:
        translated = translate(exc)
        if translated is None:
            raise
        line = describe_failure(translated, account.name, identity_of(credentials))
        return CheckResult(account.name, False, line)
    how = _kind(credentials, config.google.api_endpoint)
    return CheckResult(account.name, True, f"account {account.name}: ok ({how})")


def check_accounts(config: Config, only: list[str] | None = None) -> list[CheckResult]:
    """Check every configured account (or those named in ``only``), in config order."""
    return [check_account(config, account) for account in config.accounts
            if not only or account.name in only]
