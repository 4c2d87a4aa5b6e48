"""Translate every failure of a Calendar API call into the project's error tree.

This is the only place that looks at HTTP status codes and Google's ``reason``
strings (as gcal_sync does). Classification goes by ``reason`` first: Google
has answered rate limits as 403 with ``PERMISSION_DENIED``, so a status code
alone would misfile them. Messages never include tokens or URLs with tokens.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import socket
import ssl
import time
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
        text = " ".join(str(exc).split())
        if getattr(exc, "retryable", False):
            return TransientGoogleError(f"token refresh failed, will retry: {text}")
        return AuthFailed(f"credentials rejected while refreshing the access token: {text}")
    if isinstance(exc, google.auth.exceptions.TransportError):
        return TransientGoogleError(f"cannot reach the token endpoint: {exc}")
    if isinstance(exc, TRANSPORT_ERRORS):
        detail = str(exc) or type(exc).__name__
        return TransientGoogleError(f"connection problem: {type(exc).__name__}: {detail}")
    return None
