"""The one pass contract: what goes into a pass, what it reports, what comes out.

Pure data, no I/O. The store builds a :class:`CalendarState` from its row, the
engine runs a pass over it and reports each committed page as a
:class:`PageCommitted` (the progress display is built on it) and the whole
pass as a :class:`PassOutcome`, which the store records in one UPDATE
(``calendars.record_success``). Nothing here knows the ORM, HTTP or click.

Invariants: every class is frozen (a value crosses threads safely); a
``PassOutcome`` carries the *new* cursor (``cursor``) and the store writes it
only after every page of the pass was applied, so a crash anywhere replays
from the old cursor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.reconcile import Action

# The mode of one pass, as logged, recorded in ``calendar.last_mode`` and shown.
INCREMENTAL = "incremental"
FULL = "full"
UPDATED_MIN = "updated_min"


@dataclass(frozen=True, slots=True)
class CalendarState:
    """What a pass needs to know about one calendar, read from its row."""

    pk: int
    calendar_id: str
    account: str
    sync_token: str | None = None
    updated_min_cursor_ms: int | None = None
    last_mode: str | None = None
    last_full_sync: dt.datetime | None = None
    last_attempt: dt.datetime | None = None
    last_success: dt.datetime | None = None
    next_due: dt.datetime | None = None
    sync_requested_at: dt.datetime | None = None
    sync_request_seq: int = 0
    consecutive_failures: int = 0
    removed: bool = False
    event_types: str | None = None  # JSON list the stored sync token was made with (None: all)
    interval: int | None = None  # the calendar's own interval (None: the default); see intervals
    change_rate: float = 0.0  # adaptive schedule: estimated changes per second
    rate_weight: float = 0.0  # seconds of observation behind change_rate (0: none yet)
    planned_interval: float | None = None  # seconds, set by the adaptive schedule's replanning


@dataclass(frozen=True, slots=True)
class PageCommitted:
    """One page of a pass was applied and committed (a progress report)."""

    calendar_id: str
    account: str
    mode: str  # "incremental"|"full"|"updated_min"
    page: int  # 1-based, page just committed in this pass
    items: int  # items seen so far this pass
    created: int
    updated: int
    deleted: int  # so far in this pass


PageCallback = Callable[[PageCommitted], None]


@dataclass(frozen=True, slots=True)
class Cursor:
    """The calendar's new listing position after a complete pass.

    ``None`` fields are left as stored, except ``sync_token``: it is written
    whenever ``token_updated_at`` is set (the listing ended; a listing that
    ended without a token stores None, forcing a full listing next time).
    """

    sync_token: str | None = None
    token_updated_at: dt.datetime | None = None
    updated_min_cursor_ms: int | None = None
    last_full_sync: dt.datetime | None = None
    event_types: str | None = None  # stored with ``sync_token``: the eventTypes it was made with


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """What a caller asks of one calendar's pass (``once``, ``run``, the audit).

    ``full`` forces a full listing; ``audit`` follows a successful pass with a
    full listing (mark and sweep) that reports what it had to repair;
    ``lease_wait`` is how long to wait for a live holder of the lease;
    ``seen`` is the row as the caller read it when deciding to sync: when
    another process attempted the calendar since (and no "sync soon" request
    is pending), the pass is skipped. ``next_due`` supplies the next due time
    stored in the same UPDATE that records the pass.
    """

    full: bool = False
    audit: bool = False
    lease_wait: float = 0.0
    seen: CalendarState | None = None
    next_due: Callable[[], dt.datetime] | None = None


@dataclass(slots=True)
class Counts:
    """The decisions a page or a pass made, by kind: the one accumulator the planner
    and the engine share (mutable while a pass runs; frozen into :class:`PassOutcome`)."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped_stale: int = 0
    unchanged: int = 0
    bad_events: int = 0

    def count(self, action: Action) -> None:
        """Tally one decision."""
        kind = action.change_kind
        if kind == "created":
            self.created += 1
        elif kind == "updated":
            self.updated += 1
        elif kind == "deleted":
            self.deleted += 1
        elif action is Action.STALE:
            self.skipped_stale += 1
        elif action is Action.NOOP:
            self.unchanged += 1

    def add(self, other: Counts) -> None:
        """Add ``other``'s counts to these (a page's into its pass)."""
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_fields(self) -> dict[str, int]:
        """The counts as keyword arguments of :class:`PassOutcome`."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class PassOutcome:
    """What one successful pass did: the new cursor, counts, cost and why."""

    calendar_id: str
    account: str
    mode: str  # "incremental"|"full"|"updated_min"
    cursor: Cursor
    full_reason: str | None = None  # why a full listing happened (None: it did not)
    pages: int = 0
    items: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped_stale: int = 0
    unchanged: int = 0
    bad_events: int = 0
    requests: int = 0
    seconds: float = 0.0

    @property
    def full_listing(self) -> bool:
        """Whether the pass listed the whole calendar (and swept what it did not see)."""
        return self.mode == FULL

    @property
    def repaired(self) -> int:
        """Rows a full listing had to fix: its drift when run as an audit."""
        return self.created + self.updated + self.deleted


@dataclass(frozen=True, slots=True)
class Attempt:
    """One claimed calendar's result: the pass (None when skipped) and the audit."""

    state: CalendarState  # the row as read after the claim
    outcome: PassOutcome | None  # None: another process had just synced it
    audit: PassOutcome | None = None


def describe(outcome: PassOutcome) -> str:
    """The one INFO line logged per pass."""
    extra = f" ({outcome.full_reason})" if outcome.full_reason else ""
    return (f"calendar {outcome.calendar_id}: {outcome.mode}{extra}, {outcome.pages} page(s), "
            f"{outcome.created} created, {outcome.updated} updated, {outcome.deleted} deleted, "
            f"{outcome.requests} request(s), {outcome.seconds:.2f}s")


__all__ = ["FULL", "INCREMENTAL", "UPDATED_MIN", "Attempt", "CalendarState", "Cursor",
           "PageCallback", "PageCommitted", "PassOutcome", "SyncRequest", "describe"]
