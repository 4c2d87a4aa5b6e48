"""What a pass over many calendars reports, and the one place a failure becomes a report line.

Why: a failure used to be turned into the user's line in three places (the
attempt, the worker of a pass, the collection of its futures), each with its
own "internal error" text. Here :func:`as_error` turns anything raised into a
project error (a bug: traceback logged once, then a failure like any other)
and :func:`failure_of` turns a project error into the :class:`Failure` shown
to the user (with the advice of :mod:`reconciler.google.errors`).

Invariants: a :class:`Failure` is one line; one cause is one line in
:meth:`PassReport.folded`: an account whose credentials were refused, or a
database that went away, however many calendars failed with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from reconciler.errors import (
    AuthFailed,
    DatabaseUnavailable,
    GoogleError,
    InternalError,
    ReconcilerError,
    first_line,
)
from reconciler.google.errors import Identity, describe_failure
from reconciler.outcome import PassOutcome

log = logging.getLogger("reconciler.service")


@dataclass(frozen=True, slots=True)
class Failure:
    """One thing that failed in a pass, with the line to show the user."""

    subject: str  # calendar id or "account NAME"
    message: str
    kind: str
    account: str | None = None  # the account the failure belongs to

    @property
    def of_account(self) -> bool:
        """Whether the subject is an account (its calendar set, or its credentials)."""
        return self.subject.startswith("account ")


def as_error(exc: BaseException, subject: str) -> ReconcilerError:
    """``exc`` as a project error; a bug has its traceback logged here, once."""
    if isinstance(exc, ReconcilerError):
        return exc
    log.error("%s: unexpected error", subject, exc_info=exc)
    return InternalError(f"internal error: {type(exc).__name__}: {first_line(exc)}",
                         type(exc).__name__)


def failure_of(subject: str, exc: BaseException, account: str | None, *,
               identity: Identity | None = None, calendar_id: str | None = None) -> Failure:
    """The one conversion of anything raised into the line shown for ``subject``."""
    error = as_error(exc, subject)
    kind = error.kind if isinstance(error, InternalError) else type(error).__name__
    if isinstance(error, GoogleError) and account is not None and calendar_id is not None:
        message = describe_failure(error, account, identity or Identity("anonymous"), calendar_id)
    else:
        message = str(error)
    if message.startswith(f"{subject}: "):  # the error already names its subject
        message = message[len(subject) + 2:]
    return Failure(subject, message, kind, account)


@dataclass(slots=True)
class PassReport:
    """The outcome of one pass over a set of calendars."""

    results: list[PassOutcome] = field(default_factory=list)
    audits: list[PassOutcome] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    stopped: bool = False  # the pass was interrupted (shutdown, Ctrl-C)

    @property
    def ok(self) -> bool:
        return not self.failures

    def folded(self) -> list[Failure]:
        """The failures to show, one line per cause: one per account whose credentials
        were refused and one for a database that went away (each naming how many
        calendars it kept from syncing); the rest as they are."""
        groups: dict[str, list[Failure]] = {}
        for failure in self.failures:
            key = _cause(failure)
            if key is not None:
                groups.setdefault(key, []).append(failure)
        shown: list[Failure] = []
        for failure in self.failures:
            key = _cause(failure)
            if key is None:
                shown.append(failure)
                continue
            group = groups.pop(key, None)
            if group is None:  # already shown
                continue
            first = group[0]
            subject = f"account {first.account}" if key.startswith("account ") else "database"
            message = _without_prefix(first.message, f"{subject}: ")
            calendars = sum(1 for f in group if not f.of_account)
            if calendars:
                noun = "calendar" if calendars == 1 else "calendars"
                message += f" ({calendars} {noun} not synced)"
            shown.append(Failure(subject, message, first.kind, first.account))
        return shown


def _cause(failure: Failure) -> str | None:
    """The shared cause a failure is folded under (None: it stands alone)."""
    if failure.kind == AuthFailed.__name__ and failure.account is not None:
        return f"account {failure.account}"
    if failure.kind == DatabaseUnavailable.__name__:
        return "database"
    return None


def _without_prefix(message: str, prefix: str) -> str:
    return message[len(prefix):] if message.startswith(prefix) else message


__all__ = ["Failure", "PassReport", "as_error", "failure_of"]
