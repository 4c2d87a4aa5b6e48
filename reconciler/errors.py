"""The one exception hierarchy of calendar-reconciler.

Every failure a user can cause ends in exactly one of these, and each carries a
one-line message that names what to fix; the CLI prints that line (never a
traceback) and picks the exit status from the class. Google failures are
translated into this tree in one place (``reconciler.google.errors``) so the rest
of the code never inspects HTTP status codes.

    ReconcilerError
    ├── ConfigError                 bad or missing config, credentials file (exit 2)
    ├── StoreError                  the database
    │   └── DatabaseUnavailable     cannot connect / server went away
    ├── LeaseHeld                   another live process is syncing the calendar
    └── GoogleError                 a Calendar API call failed (after retries)
        ├── TransientGoogleError    5xx, connection reset, timeout: retry later
        │   └── RateLimited         403/429 rate limits; honours Retry-After
        │       └── QuotaExhausted  403 quotaExceeded: pause longer
        ├── AuthFailed              401, revoked refresh token: re-authorise the account
        ├── CalendarNotFound        404: gone or not shared with the account
        ├── AccessDenied            any other 403
        ├── SyncTokenInvalid        410 fullSyncRequired (or 400 on a stored token)
        ├── UpdatedMinTooOld        410 updatedMinTooLongAgo
        └── BadRequest              any other 4xx
"""

from __future__ import annotations


class ReconcilerError(Exception):
    """Base of every error the reconciler reports to a user.

    ``str(error)`` is a single line fit to print as-is.
    """

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return " ".join(self.message.split("\n")) if self.message else type(self).__name__


class ConfigError(ReconcilerError):
    """The configuration (or a file it names) is unusable; exit status 2.

    ``problems`` holds every problem, one line each (the CLI prints one line per
    problem); ``str()`` is the one-line summary: the first problem, and how many
    more there are.
    """

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [str(self)]


class StoreError(ReconcilerError):
    """The database refused an operation."""


class DatabaseUnavailable(StoreError):
    """The database cannot be reached; nothing was written."""


class LeaseHeld(ReconcilerError):
    """Another live process holds the calendar's lease."""


class GoogleError(ReconcilerError):
    """A Calendar API call failed after the retries allowed for it."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


class TransientGoogleError(GoogleError):
    """A failure that is expected to pass: server errors, resets, time-outs."""


class RateLimited(TransientGoogleError):
    """Google asked us to slow down."""


class QuotaExhausted(RateLimited):
    """The project's or user's quota is used up; wait much longer."""


class AuthFailed(GoogleError):
    """Credentials were rejected; the account needs re-authorisation."""


class CalendarNotFound(GoogleError):
    """The calendar does not exist or is not shared with this account."""


class AccessDenied(GoogleError):
    """Google refused the request for a reason other than rate limits."""


class SyncTokenInvalid(GoogleError):
    """The stored sync token can no longer be used; a full sync is required."""


class UpdatedMinTooOld(GoogleError):
    """``updatedMin`` lies too far back; a full sync is required."""


class BadRequest(GoogleError):
    """Google rejected the request as malformed."""


def first_line(error: object) -> str:
    """The first non-blank line of an error's text, or its type's name.

    Driver and library messages often run over several lines (PostgreSQL adds
    DETAIL/HINT lines, tuples print as reprs); a user sees one line, so every
    boundary that wraps a foreign error uses this one helper.
    """
    text = str(error)
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__
