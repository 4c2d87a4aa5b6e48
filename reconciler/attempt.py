"""One calendar's attempt, the same for ``once`` and ``run``: claim, re-read, sync, record, release.

Why one owner: the order matters and is easy to get wrong. The lease is
claimed first (waiting up to ``lease_wait`` for a live holder, said once),
the row is re-read under it, the attempt is skipped when another process has
just synced the calendar, the pass runs, and its outcome is recorded in one
UPDATE that also stores the next due time and releases the lease; when asked,
a full listing (the audit) follows and reports what it repaired.

Invariants: every failure of the pass is recorded on the calendar's row
before it is raised again (a bug as :class:`~reconciler.errors.InternalError`,
its traceback logged once); the lease is given back on every path; a
shutdown (``stopping``) ends the pass after the page in flight, with every
committed page kept and the stored cursor untouched. When the database is
what failed, recording and releasing are not attempted twice over: the
failure is the one line the user sees.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from reconciler import discovery
from reconciler.clock import utcnow
from reconciler.errors import (
    AuthFailed,
    CalendarNotFound,
    DatabaseUnavailable,
    LeaseHeld,
    LeaseLost,
    ReconcilerError,
    StoreError,
    SyncStopped,
)
from reconciler.handles import AccountHandles
from reconciler.logsetup import log_pass
from reconciler.outcome import Attempt, CalendarState, PageCallback, PassOutcome, SyncRequest
from reconciler.report import as_error
from reconciler.store import calendars, leases

log = logging.getLogger("reconciler.service")

LeaseWaitHook = Callable[[CalendarState, str, "dt.datetime | None", float], None]


def _log_lease_wait(state: CalendarState, holder: str, since: dt.datetime | None,
                    wait: float) -> None:
    when = f" since {since:%Y-%m-%d %H:%M:%S} UTC" if since is not None else ""
    log.warning("calendar %s: held by %s%s; waiting up to %.0f s for its lease",
                state.calendar_id, holder, when, wait)


class Attempts:
    """Attempts of one process: every lease is claimed under ``owner``."""

    def __init__(self, handles: AccountHandles, owner: str, stopping: threading.Event, *,
                 on_lease_wait: LeaseWaitHook = _log_lease_wait) -> None:
        self.handles = handles
        self.owner = owner
        self.stopping = stopping
        self.lease_time = handles.config.sync.lease_time
        self.on_lease_wait = on_lease_wait
        self._claimed: dict[int, CalendarState] = {}  # batch-claimed, not yet attempted
        self._claimed_lock = threading.Lock()

    # -- leases ---------------------------------------------------------------------

    def claim_batch(self, states: list[CalendarState]) -> None:
        """Claim a batch of leases in one statement; :meth:`claim` hands them out.

        A database failure here is no failure of the pass: each calendar is
        then claimed alone, and fails alone."""
        try:
            held = leases.claim_many([state.pk for state in states], self.owner, self.lease_time)
        except ReconcilerError as exc:
            log.debug("could not claim a batch of calendars: %s", exc)
            return
        with self._claimed_lock:
            self._claimed.update(held)

    def release_unused(self, pks: list[int]) -> None:
        """Give back batch-claimed leases no attempt used (a stop, or a failure first)."""
        with self._claimed_lock:
            unused = [pk for pk in pks if self._claimed.pop(pk, None) is not None]
        for pk in unused:
            try:
                leases.release(pk, self.owner)
            except ReconcilerError as exc:
                log.debug("could not release a lease: %s", exc)

    def claim(self, calendar: CalendarState, wait: float) -> CalendarState:
        """Take the calendar's lease, waiting up to ``wait`` seconds for a live holder
        (said once, with who holds it and since when), and return its row as read
        under the lease.

        Raises ``LeaseHeld`` when it stays taken; the lease is given back if the
        re-read fails. A calendar claimed in a batch is handed over as read
        then, with no statement.
        """
        with self._claimed_lock:
            claimed = self._claimed.pop(calendar.pk, None)
        if claimed is not None:
            return claimed
        deadline = time.monotonic() + wait
        said = False
        while not leases.claim(calendar.pk, self.owner, self.lease_time):
            if time.monotonic() >= deadline or self.stopping.is_set():
                holder = leases.holder_of(calendar.pk) or "another process"
                raise LeaseHeld(f"calendar {calendar.calendar_id} is being synced by {holder}; "
                                "it was skipped this time")
            if not said:
                said = True
                held = leases.held_by(calendar.pk)
                if held is not None:
                    self.on_lease_wait(calendar, held[0], held[1],
                                       max(0.0, deadline - time.monotonic()))
            if self.stopping.wait(min(0.5, max(0.0, deadline - time.monotonic()))):
                continue
        try:
            fresh = calendars.read_state(calendar.pk)
        except BaseException:
            leases.release(calendar.pk, self.owner)
            raise
        if fresh is None:  # purged meanwhile
            raise LeaseHeld(f"calendar {calendar.calendar_id} was removed meanwhile; skipped")
        return fresh

    def _keep_lease(self, state: CalendarState) -> Callable[[], None]:
        renewed = [time.monotonic()]

        def keep() -> None:
            # Called after each page commits: the place to stop on shutdown
            # without storing a cursor for pages not yet applied.
            if self.stopping.is_set():
                raise SyncStopped(f"calendar {state.calendar_id}: stopped after the page in "
                                  "flight (shutting down)")
            if time.monotonic() - renewed[0] < self.lease_time / 3:
                return
            if not leases.renew(state.pk, self.owner, self.lease_time):
                raise LeaseLost(f"calendar {state.calendar_id}: lease lost mid-pass (another "
                                "process took it); pages so far are kept")
            renewed[0] = time.monotonic()

        return keep

    # -- the attempt ------------------------------------------------------------------

    def attempt(self, calendar: CalendarState, request: SyncRequest,
                on_page: PageCallback | None = None) -> Attempt:
        """Claim, re-read, sync, record and release one calendar; then audit it if asked.

        Raises ``LeaseHeld`` when another live process holds the calendar, and
        the project error of a failed pass (after recording it on the row).
        ``Attempt.outcome`` is None when ``request.seen`` shows that another
        process finished a pass between the caller's look and our claim.
        ``on_page`` hears about each committed page (a progress display).
        """
        fresh = self.claim(calendar, request.lease_wait)
        seen = request.seen
        if (seen is not None and fresh.last_attempt != seen.last_attempt
                and fresh.sync_requested_at is None):
            leases.release(fresh.pk, self.owner)
            return Attempt(fresh, None)
        outcome = self._sync_claimed(fresh, request.full, request.next_due, on_page)
        audit = self._audit(fresh, request.lease_wait, on_page) if request.audit else None
        return Attempt(fresh, outcome, audit)

    def _audit(self, calendar: CalendarState, lease_wait: float,
               on_page: PageCallback | None) -> PassOutcome | None:
        """A full listing right after a pass; None when another process holds the lease."""
        try:
            fresh = self.claim(calendar, lease_wait)
        except LeaseHeld:
            return None
        return self._sync_claimed(fresh, True, None, on_page)

    def _sync_claimed(self, fresh: CalendarState, full: bool, next_due: dt.datetime | None,
                      on_page: PageCallback | None) -> PassOutcome:
        """Sync a calendar whose lease this process holds, record the outcome, release."""
        released = False
        store_failed = False
        try:
            engine = self.handles.engine(fresh.account)
            try:
                outcome = engine.sync(fresh, full=full, keep_lease=self._keep_lease(fresh),
                                      on_page_committed=on_page)
            except SyncStopped:
                raise
            except Exception as exc:  # every failure is recorded, bugs too
                error = as_error(exc, f"calendar {fresh.calendar_id}")
                store_failed = isinstance(error, StoreError)
                if not store_failed:
                    self._record_failure(fresh, error)
                if error is exc:
                    raise
                raise error from exc
            # A due time the pass outlasted becomes now: never in the past.
            due = max(next_due, utcnow()) if next_due is not None else None
            calendars.record_success(fresh, self.owner, outcome, due)
            released = True
            self.handles.ok(fresh.account)
            log_pass(log, outcome)
            return outcome
        except StoreError:
            store_failed = True
            raise
        finally:
            if not released:
                self._release(fresh, quiet=store_failed)

    def _release(self, row: CalendarState, *, quiet: bool) -> None:
        try:
            leases.release(row.pk, self.owner)
        except ReconcilerError as exc:  # the database may be what failed: said once already
            log.log(logging.DEBUG if quiet else _store_level(exc),
                    "calendar %s: could not release the lease: %s", row.calendar_id, exc)

    def _record_failure(self, row: CalendarState, exc: ReconcilerError) -> None:
        gone = isinstance(exc, CalendarNotFound)
        try:
            calendars.record_failure(row.pk, str(exc), type(exc).__name__, gone=gone)
            if gone:
                discovery.mark_lost(row.account, row.calendar_id)
            if isinstance(exc, AuthFailed):
                self.handles.refused(row.account, exc)
        except ReconcilerError as store_exc:  # never hide the original failure
            log.log(_store_level(store_exc), "calendar %s: could not record failure: %s",
                    row.calendar_id, store_exc)


def _store_level(exc: ReconcilerError) -> int:
    """A lost database is one cause its caller reports once (``run``: one line for the
    outage); a follow-up write that fails for it is DEBUG. Any other store error: WARNING."""
    return logging.DEBUG if isinstance(exc, DatabaseUnavailable) else logging.WARNING


__all__ = ["Attempts"]
