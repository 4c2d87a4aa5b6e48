"""Google-shaped API errors.

Every failure the emulator reports goes through :class:`ApiError`, whose body is
byte-for-byte the envelope Google writes
(``{"error":{"errors":[{domain,reason,message,locationType,location}],"code","message"}}``),
so ``HttpError.status_code`` and ``HttpError.error_details[0]["reason"]`` behave as
they do against the real service.
"""

from __future__ import annotations

import json
from typing import Any


class ApiError(Exception):
    """An error answered to an API caller with Google's JSON envelope."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        domain: str = "global",
        location_type: str | None = None,
        location: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Describe one error; ``headers`` are extra response headers (Retry-After)."""
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.domain = domain
        self.location_type = location_type
        self.location = location
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """Return the error envelope as Google writes it."""
        item: dict[str, Any] = {
            "domain": self.domain,
            "reason": self.reason,
            "message": self.message,
        }
        if self.location_type is not None:
            item["locationType"] = self.location_type
        if self.location is not None:
            item["location"] = self.location
        return {"error": {"errors": [item], "code": self.code, "message": self.message}}

    def body_bytes(self) -> bytes:
        """Return the envelope serialised, ready to send."""
        return json.dumps(self.body(), indent=1).encode()


def not_found() -> ApiError:
    """404 for a missing calendar, event or channel (also: not visible to the user)."""
    return ApiError(404, "notFound", "Not Found")


def deleted() -> ApiError:
    """410 for an operation on an already deleted resource."""
    return ApiError(410, "deleted", "Resource has been deleted")


def duplicate() -> ApiError:
    """409 when a client-chosen id is already taken by a live event."""
    return ApiError(409, "duplicate", "The requested identifier already exists.")


def full_sync_required() -> ApiError:
    """410 for an expired, invalidated or tampered sync token."""
    msg = "Sync token is no longer valid, a full sync is required."
    return ApiError(410, "fullSyncRequired", msg, "calendar", "parameter", "syncToken")


def updated_min_too_long_ago() -> ApiError:
    """410 for an ``updatedMin`` older than the server keeps deletions."""
    msg = "The requested minimum modification time lies too far in the past."
    return ApiError(410, "updatedMinTooLongAgo", msg, "calendar", "parameter", "updatedMin")


def invalid(message: str, location: str | None = None, location_type: str = "parameter") -> ApiError:
    """400 ``invalid`` for a malformed parameter or body field."""
    return ApiError(400, "invalid", message, "global", location_type if location else None, location)


def bad_request(message: str = "Bad Request") -> ApiError:
    """400 ``badRequest`` for requests that make no sense as a whole."""
    return ApiError(400, "badRequest", message)


def required(message: str, location: str | None = None) -> ApiError:
    """400 ``required`` for a missing mandatory field."""
    return ApiError(400, "required", message, "global", None, location)


def auth_error() -> ApiError:
    """401 for invalid or revoked credentials."""
    return ApiError(401, "authError", "Invalid Credentials", "global", "header", "Authorization")


_STATUS_REASONS: dict[str, tuple[int, str, str]] = {
    "backendError": (500, "global", "Backend Error"),
    "rateLimitExceeded": (403, "usageLimits", "Rate Limit Exceeded"),
    "userRateLimitExceeded": (403, "usageLimits", "User Rate Limit Exceeded"),
    "quotaExceeded": (403, "usageLimits", "Calendar usage limits exceeded."),
    "authError": (401, "global", "Invalid Credentials"),
    "notFound": (404, "global", "Not Found"),
    "fullSyncRequired": (
        410,
        "calendar",
        "Sync token is no longer valid, a full sync is required.",
    ),
}


def fault_error(status: int, reason: str | None, retry_after: float | None) -> ApiError:
    """Build the error an injected fault answers with (status plus Google's reason)."""
    if reason is None:
        reason = {
            500: "backendError",
            503: "backendError",
            429: "rateLimitExceeded",
            403: "rateLimitExceeded",
            401: "authError",
        }.get(status, "backendError")
    _, domain, message = _STATUS_REASONS.get(reason, (status, "global", reason))
    if status == 503:
        message = "The service is currently unavailable."
    headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else None
    if reason == "authError":
        return ApiError(status, reason, message, domain, "header", "Authorization", headers)
    if reason == "fullSyncRequired":
        return ApiError(status, reason, message, domain, "parameter", "syncToken", headers)
    return ApiError(status, reason, message, domain, headers=headers)
