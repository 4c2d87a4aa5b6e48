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
from collections.abc import Callable, Mapping
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
    counts: Counts  # so far in this pass


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
    is pending), the pass is skipped. ``next_due`` is the next due time the
    caller computed before the pass (start-to-start), stored in the same
    UPDATE that records the pass (as now, if the pass outlasted it).
    """

    full: bool = False
    audit: bool = False
    lease_wait: float = 0.0
    seen: CalendarState | None = None
    next_due: dt.datetime | None = None


# The counters of :class:`Counts`, in order (a tally by name folds into one).
COUNTERS = ("created", "updated", "deleted", "skipped_stale", "unchanged", "bad_events")


@dataclass(frozen=True, slots=True)
class Counts:
    """The decisions a page or a pass made, by kind: the one set of counters.

    A frozen value: a page's counts, a pass's and a whole ``once``'s are sums
    (``+``) of smaller ones, so summaries, logs, metrics and drift reports fold
    the same value instead of copying six fields.
    """

    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped_stale: int = 0
    unchanged: int = 0
    bad_events: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.created + other.created, self.updated + other.updated,
                      self.deleted + other.deleted, self.skipped_stale + other.skipped_stale,
                      self.unchanged + other.unchanged, self.bad_events + other.bad_events)

    @property
    def changed(self) -> int:
        """Rows whose mirrored state changed (created + updated + deleted)."""
        return self.created + self.updated + self.deleted

    @property
    def changes(self) -> dict[str, int]:
        """The change counts by kind (``created``, ``updated``, ``deleted``), in that order."""
        return {"created": self.created, "updated": self.updated, "deleted": self.deleted}

    @staticmethod
    def kind_of(action: Action) -> str | None:
        """The counter one decision adds to (None: a decision that is not counted)."""
        kind = action.change_kind
        if kind is not None:
            return kind
        if action is Action.STALE:
            return "skipped_stale"
        if action is Action.NOOP:
            return "unchanged"
        return None

    @classmethod
    def of(cls, tally: Mapping[str, int]) -> Counts:
        """Counts from a tally by counter name (the planner's per-page dict)."""
        return cls(**tally)


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
    counts: Counts = Counts()
    requests: int = 0
    seconds: float = 0.0
    # Distinct seconds among a full listing's ``updated`` times in the
    # LISTING_WINDOW before it (the adaptive schedule's first estimate; 0 otherwise).
    recent: int = 0

    # Read-only views of ``counts`` for callers that read ``outcome.created``;
    # the counters themselves are declared once, by :class:`Counts`.
    @property
    def created(self) -> int:
        return self.counts.created

    @property
    def updated(self) -> int:
        return self.counts.updated

    @property
    def deleted(self) -> int:
        return self.counts.deleted

    @property
    def bad_events(self) -> int:
        return self.counts.bad_events

    @property
    def full_listing(self) -> bool:
        """Whether the pass listed the whole calendar (and swept what it did not see)."""
        return self.mode == FULL

    @property
    def repaired(self) -> int:
        """Rows a full listing had to fix: its drift when run as an audit."""
        return self.counts.changed


@dataclass(frozen=True, slots=True)
class Attempt:
    """One claimed calendar's result: the pass (None when skipped) and the audit."""

    state: CalendarState  # the row as read after the claim
    outcome: PassOutcome | None  # None: another process had just synced it
    audit: PassOutcome | None = None


__all__ = [
    "COUNTERS",
    "FULL",
    "INCREMENTAL",
    "UPDATED_MIN",
    "Attempt",
    "CalendarState",
    "Counts",
    "Cursor",
    "PageCallback",
    "PageCommitted",
    "PassOutcome",
    "SyncRequest",
]
