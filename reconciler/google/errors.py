"""Translate every failure of a Calendar API call into the project's error tree.

This is the only place that looks at HTTP status codes and Google's ``reason``
strings (as gcal_sync does). Classification goes by ``reason`` first: Google
has answered rate limits as 403 with ``PERMISSION_DENIED``, so a status code
alone would misfile them. Messages never include tokens or URLs with tokens.

It is also the one place that turns an auth or access failure into advice
(:func:`refresh_failure`, :func:`describe_failure`): one line that names the
account and says what to fix (a new login, the sharing of a calendar with a
service account's ``client_email``, domain-wide delegation for ``subject`` with
the scope string, the calendar id). google-auth's ``RefreshError`` carries a
tuple in ``args``; only its first, human part is ever shown.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

import google.auth.exceptions
import httplib2
from googleapiclient.errors import HttpError

from reconciler.errors import (
    AccessDenied,
    AuthFailed,
    BadRequest,
    CalendarNotFound,
    GoogleError,
    GoogleUnreachable,
    QuotaExhausted,
    RateLimited,
    SyncTokenInvalid,
    TransientGoogleError,
    UpdatedMinTooOld,
)

RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
TRANSIENT_REASONS = frozenset({"backendError", "internalError"})
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
SCOPE = "https://www.googleapis.com/auth/calendar.readonly"
TESTING_NOTE = 'refresh tokens of OAuth apps in "Testing" expire after 7 days'


def _error_body(exc: HttpError) -> dict[str, Any]:
    try:
        content = exc.content.decode("utf-8") if isinstance(exc.content, bytes) else exc.content
        body = json.loads(content)
    except (ValueError, AttributeError, UnicodeDecodeError):
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _reason_and_message(exc: HttpError) -> tuple[str | None, str]:
    error = _error_body(exc)
    errors = error.get("errors")
    reason = None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        reason = errors[0].get("reason")
    if reason is None:
        details = error.get("details")
        if isinstance(details, list):
            for detail in details:
                if isinstance(detail, dict) and detail.get("reason"):
                    reason = detail["reason"]
                    break
    message = error.get("message") or exc.resp.reason or "no message"
    return (str(reason) if reason else None), " ".join(str(message).split())


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def translate_http_error(exc: HttpError) -> GoogleError:
    """The project error for an HTTP error answer from Google."""
    status = int(exc.status_code or exc.resp.status)
    reason, message = _reason_and_message(exc)
    retry_after = parse_retry_after(exc.resp.get("retry-after"))
    text = f"HTTP {status} {reason or ''}".rstrip() + f": {message}"
    kwargs: dict[str, Any] = {"status": status, "reason": reason, "retry_after": retry_after}
    cls: type[GoogleError]
    if reason in QUOTA_REASONS:
        cls = QuotaExhausted
    elif reason in RATE_LIMIT_REASONS or status == 429:
        cls = RateLimited
    elif status in TRANSIENT_STATUSES or reason in TRANSIENT_REASONS:
        cls = TransientGoogleError
    elif status == 401:
        cls = AuthFailed
    elif status == 404:
        cls = CalendarNotFound
    elif status == 410:
        cls = UpdatedMinTooOld if reason == "updatedMinTooLongAgo" else SyncTokenInvalid
    elif status == 403:
        cls = AccessDenied
    else:
        cls = BadRequest
    return cls(text, **kwargs)


TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError,
    socket.timeout,
    ConnectionError,
    http.client.HTTPException,
    httplib2.HttpLib2Error,
    ssl.SSLError,
    OSError,
)


def translate(exc: BaseException) -> GoogleError | None:
    """The project error for any exception raised by an API call, or None if foreign."""
    if isinstance(exc, GoogleError):
        return exc
    if isinstance(exc, HttpError):
        return translate_http_error(exc)
    if isinstance(exc, google.auth.exceptions.RefreshError):
        reason, text = refresh_details(exc)
        if getattr(exc, "retryable", False):
            return TransientGoogleError(f"token refresh failed, will retry: {text}", reason=reason)
        return AuthFailed(f"credentials rejected while refreshing the access token: {text}",
                          reason=reason)
    if isinstance(exc, google.auth.exceptions.TransportError):
        return GoogleUnreachable(f"cannot reach the token endpoint: {exc}")
    if isinstance(exc, TRANSPORT_ERRORS):
        detail = str(exc) or type(exc).__name__
        return GoogleUnreachable(f"connection problem: {type(exc).__name__}: {detail}")
    return None


@dataclass(frozen=True)
class Identity:
    """Who an account's credentials act as, for advice in error messages."""

    kind: str  # "service_account" | "authorized_user" | "anonymous"
    client_email: str | None = None
    client_id: str | None = None
    subject: str | None = None


def login_command(account: str) -> str:
    """The exact command that gives ``account`` a new authorized-user token file."""
    return f"reconciler auth login --client-secrets CLIENT.json --account {account}"


def refresh_details(exc: google.auth.exceptions.RefreshError) -> tuple[str | None, str]:
    """(OAuth error code, one line of text) of a refresh failure, never a tuple repr.

    google-auth raises ``RefreshError(message, response_data)``; the message is
    ``"invalid_grant: Token has been expired or revoked."`` and the data the
    token endpoint's JSON answer.
    """
    args = exc.args
    data = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
    text = args[0] if args and isinstance(args[0], str) else type(exc).__name__
    text = " ".join(text.split()) or type(exc).__name__
    reason = data.get("error") if isinstance(data.get("error"), str) else None
    if reason is None:
        head = text.split(":", 1)[0]
        reason = head if head.replace("_", "").isalpha() and head.islower() else None
    return reason, text


def _delegation(identity: Identity) -> str:
    client = f"client ID {identity.client_id}" if identity.client_id else "the service account's client ID"
    return (f"check domain-wide delegation for subject {identity.subject}: in the Admin console "
            f"(Security > API controls > Domain-wide delegation) authorise {client} for "
            f"the scope {SCOPE}")


def _shared_with(identity: Identity) -> str:
    if identity.kind == "service_account" and identity.subject:
        return f"that {identity.subject} can see it"
    if identity.kind == "service_account":
        who = identity.client_email or "the service account's client_email"
        return f"that it is shared with {who} (calendar Settings and sharing > Share with specific people)"
    return "that it is shared with the signed-in Google user"


def refresh_failure(exc: google.auth.exceptions.RefreshError, account: str,
                    identity: Identity) -> GoogleError:
    """The project error, with advice, for a token refresh that Google refused."""
    reason, text = refresh_details(exc)
    if getattr(exc, "retryable", False):
        return TransientGoogleError(f"token refresh failed, will retry: {text}", reason=reason)
    if identity.kind == "service_account":
        if identity.subject and reason in ("unauthorized_client", "access_denied", "invalid_grant"):
            advice = _delegation(identity)
        else:
            advice = ("check that the service account key is current (not deleted in IAM > "
                      "Service accounts > Keys) and the machine's clock is right")
        return AuthFailed(f"service account key rejected while refreshing the access token "
                          f"({text}): {advice}", status=400, reason=reason)
    if reason == "invalid_grant":
        return AuthFailed(f"the refresh token was rejected ({text}): re-authorise the account with "
                          f"`{login_command(account)}` ({TESTING_NOTE}; publish the app to keep them)",
                          status=400, reason=reason)
    return AuthFailed(f"credentials rejected while refreshing the access token ({text}): "
                      f"re-authorise the account with `{login_command(account)}`",
                      status=400, reason=reason)


def advice_for(exc: BaseException, account: str, identity: Identity,
               calendar_id: str | None = None) -> str | None:
    """What to check for an auth or access failure, or None when there is nothing to add."""
    if not isinstance(exc, GoogleError):
        return None
    user = identity.kind == "authorized_user"
    delegated = identity.kind == "service_account" and bool(identity.subject)
    calendar = f"calendar {calendar_id}" if calendar_id else "the calendar"
    if isinstance(exc, AuthFailed):
        if exc.status == 400:  # a refresh failure: already carries its advice
            return None
        if user:
            return f"re-authorise the account with `{login_command(account)}`"
        if delegated:
            return _delegation(identity)
        if identity.kind == "service_account":
            return ("check that the service account and its key are enabled and the Calendar API "
                    "is enabled in its project")
        return "check the account's credentials"
    if isinstance(exc, CalendarNotFound):
        return (f"check the calendar id {calendar_id!r} (Settings and sharing > Integrate calendar "
                f"> Calendar ID) and {_shared_with(identity)}")
    if isinstance(exc, AccessDenied):
        if exc.reason == "accessNotConfigured":
            return "enable the Google Calendar API in the credentials' Cloud project"
        if exc.reason == "insufficientPermissions":
            if user:
                return (f"the token lacks the scope {SCOPE}: re-authorise with "
                        f"`{login_command(account)}`")
            if delegated:
                return _delegation(identity)
        if delegated:
            return f"check {_shared_with(identity)} ({calendar}) and {_delegation(identity)}"
        return f"check {_shared_with(identity)} ({calendar})"
    return None


def describe_failure(exc: BaseException, account: str, identity: Identity,
                     calendar_id: str | None = None) -> str:
    """One line for a failed call of ``account``: the error and what to do about it."""
    text = str(exc)
    advice = advice_for(exc, account, identity, calendar_id)
    prefix = "" if text.startswith(f"account {account}:") else f"account {account}: "
    return f"{prefix}{text}" + (f"; {advice}" if advice else "")
