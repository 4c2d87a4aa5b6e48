"""The one exception hierarchy of calendar-reconciler.

Every failure a user can cause ends in exactly one of these, and each carries a
one-line message that names what to fix; the CLI prints that line (never a
traceback) and picks the exit status from the class. Each boundary maps
foreign errors into this tree in one place, so callers catch ``ReconcilerError``
only: Google failures in ``reconciler.google.errors`` (and the client's decode
step), database and driver errors in ``reconciler.store.dberrors.map_db_errors``.

    ReconcilerError
    ├── ConfigError                 bad or missing config, credentials file (exit 2)
    ├── StoreError                  the database
    │   └── DatabaseUnavailable     cannot connect / server went away
    ├── LeaseHeld                   another live process is syncing the calendar
    ├── LeaseLost                   our lease expired and another process took it mid-pass
    ├── SyncStopped                 shutting down: the pass stopped after its last page
    └── GoogleError                 a Calendar API call failed (after retries)
        ├── TransientGoogleError    5xx, connection reset, timeout: retry later
        │   ├── RateLimited         403/429 rate limits; honours Retry-After
        │   │   └── QuotaExhausted  403 quotaExceeded: pause longer
        │   └── MalformedResponse   a 200 whose body is not the expected resource
        ├── PageLoop                a listing repeats a page token or never ends
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


class LeaseLost(ReconcilerError):
    """Our lease expired and another process took the calendar mid-pass."""


class SyncStopped(ReconcilerError):
    """The process is shutting down: the pass stopped after its last committed page.

    Not a failure of the calendar: the stored cursor is untouched, so the next
    pass (in this process or another) replays from it.
    """


class InternalError(ReconcilerError):
    """An unexpected exception (a bug) carried as a failure like any other.

    ``kind`` is the class name of what was raised; its traceback is logged once,
    where it was caught (``reconciler.report.as_error``).
    """

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


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


class GoogleUnreachable(TransientGoogleError):
    """No answer from Google at all (connection refused or reset, a time-out, DNS): a
    network or proxy problem every calendar meets, so ``run`` reports it once."""


class RateLimited(TransientGoogleError):
    """Google asked us to slow down."""


class QuotaExhausted(RateLimited):
    """The project's or user's quota is used up; wait much longer."""


class MalformedResponse(TransientGoogleError):
    """Google answered 200 with a body that is not the resource asked for (HTML, a
    JSON array, an empty or cut body): treated like a 5xx, retried, then reported."""


class PageLoop(GoogleError):
    """A listing repeated a page token or ran past any plausible number of pages.

    Not retried inline (the same listing would loop again): the pass fails and the
    calendar backs off like after any failure; the stored cursor is untouched.
    """


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
