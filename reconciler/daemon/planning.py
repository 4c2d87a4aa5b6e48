"""When each calendar runs: first-pass spread, the shared due time, audits, the next run.

Pure functions of the stored row and "now", so the schedule can be tested
with freezegun and no scheduler. The database row is the schedule shared by
every ``run`` process (``calendar.next_due``): a process whose job fires
early (another process synced the calendar meanwhile) looks at the row and
waits until the stored due time instead of syncing twice.

:func:`decide` is the one decision of a calendar's job: before a pass,
whether to sync (:func:`plan`); after it, when to run next and why, from how
the look ended (:class:`Ended`). The job does the I/O and nothing else, so
"when does this calendar run next" has one answer in one place.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.daemon.backoff import Delay, failure_delay
from reconciler.intervals import Grid
from reconciler.outcome import CalendarState
from reconciler.schedule.spread import next_point, next_poll
from reconciler.store.records import AccountState

FIRST_PASS_SPREAD_MAX = 0.1  # DESIGN: first passes start at once, spread over <= 10% of the interval
DUE_TOLERANCE = dt.timedelta(seconds=0.5)
HOLDING = ("backoff", "needs_reauth")  # reasons during which "sync soon" requests wait


@dataclass(frozen=True, slots=True)
class Plan:
    """What a calendar's job does this time."""

    sync: bool
    reason: str  # due | first | requested | not_due | backoff | needs_reauth | removed | probe
    wait_until: dt.datetime | None = None  # when to look again if not syncing
    audit: bool = False  # follow the pass with a full listing (mark and sweep)
    probe: bool = False  # the account is parked: this pass tries its credentials again


def first_run_offset(interval: float, jitter: float,
                     rand: Callable[[], float] = random.random) -> float:
    """Seconds from start to a calendar's first pass: uniform in [0, jitter*interval], jitter <= 10%."""
    return rand() * min(max(jitter, 0.0), FIRST_PASS_SPREAD_MAX) * interval


def next_after_pass(started: dt.datetime, interval: float, now: dt.datetime,
                    grid: Grid | None = None) -> dt.datetime:
    """When the next pass is due, never in the past: start to start (``interval`` after
    this one started), or the calendar's next grid point under ``adaptive``; a due time
    already past is ``now`` (fixed) or the calendar's first grid point from now
    (adaptive: calendars overdue together do not all poll at once), but never
    later than ``max_interval`` after ``started`` unless that is past too (a plan
    that lengthened the interval of a calendar whose new due time has passed
    must not add a whole interval to its gap: seen as a 130 s gap at a 60 s bound)."""
    due = due_after(started, interval, grid)
    if due >= now:
        return due
    if grid is None:
        return now
    at = next_point(now, interval, grid.phase)
    if grid.max_interval is not None:  # but no gap past the bound (when not already past)
        at = min(at, max(now, started + dt.timedelta(seconds=max(grid.max_interval, interval))))
    return at


def audit_fraction(calendar_id: str) -> float:
    """A stable number in [0, 1) per calendar, used to spread audits out."""
    return int(hashlib.sha1(calendar_id.encode("utf-8")).hexdigest()[:8], 16) / 0x1_0000_0000


def audit_due(row: CalendarState, now: dt.datetime, audit_interval: float) -> bool:
    """Whether the calendar's periodic full listing is due.

    Due ``audit_interval * (1 - fraction/2)`` after the last full pass, where the
    fraction is fixed per calendar: calendars whose first (full) pass happened
    together are audited at times spread over half an interval, and stay spread.
    """
    if audit_interval <= 0 or row.last_full_sync is None or not row.last_success:
        return False
    threshold = audit_interval * (1.0 - 0.5 * audit_fraction(row.calendar_id))
    return bool((now - row.last_full_sync).total_seconds() >= threshold)


def plan(row: CalendarState, account: AccountState | None, now: dt.datetime, *, first: bool,
         process_started: dt.datetime, audit_interval: float = 0) -> Plan:
    """Decide whether the job syncs the calendar now, and if not, when to look again.

    ``first`` is this process's first pass of the calendar: it runs at once
    (DESIGN), unless another process attempted the calendar after this one
    started. Afterwards the stored ``next_due`` rules; a "sync soon" request
    makes a calendar due early, except during a failure backoff.
    """
    if row.removed:
        return Plan(False, "removed")
    audit = audit_due(row, now, audit_interval)
    if account is not None and account.state == "needs_reauth":
        retry = account.next_auth_retry
        if retry is not None and retry > now:
            return Plan(False, "needs_reauth", wait_until=retry)
        return Plan(True, "probe", probe=True)
    others_tried = (row.last_attempt is not None
                    and row.last_attempt >= process_started.replace(microsecond=0))
    if first and not others_tried:
        return Plan(True, "first", audit=audit)
    next_due = row.next_due
    if next_due is not None and next_due > now + DUE_TOLERANCE:
        if row.consecutive_failures:
            return Plan(False, "backoff", wait_until=next_due)
        if row.sync_requested_at is not None:
            return Plan(True, "requested", audit=audit)
        return Plan(False, "not_due", wait_until=next_due)
    return Plan(True, "due", audit=audit)


@dataclass(frozen=True, slots=True)
class Ended:
    """How one look at a calendar ended, as the job saw it.

    ``kind``: ``synced`` (a pass succeeded), ``lease_held`` (another live
    process syncs it), ``just_synced`` (another process finished a pass between
    our look and our claim; ``stored_due`` is its due time), ``skipped`` (the
    plan said not now; ``plan`` says why), ``failed`` (the pass raised
    ``error``, the ``failures``-th failure in a row), ``error`` (the look
    itself failed: the database, or a bug).
    """

    kind: str
    plan: Plan | None = None
    stored_due: dt.datetime | None = None
    error: BaseException | None = None
    failures: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """What a calendar's job does: sync now or not, and when it runs next, and why.

    Before a pass ``next_run`` is the due time stored with it (start to start);
    after one it is when the job fires again (None: never, the calendar is
    removed). ``hold``: "sync soon" requests wait until ``next_run`` (a failure
    backoff or a parked account). ``delay`` is the wait after a failure (its
    kind and length, for the log line).
    """

    sync: bool
    reason: str
    next_run: dt.datetime | None
    audit: bool = False
    probe: bool = False
    hold: bool = False
    delay: Delay | None = None


def due_after(started: dt.datetime, interval: float, grid: Grid | None) -> dt.datetime:
    """When the pass after one that started at ``started`` is due: start to start, or the
    next point of the calendar's grid (may be in the past after a long pass)."""
    if grid is None:
        return started + dt.timedelta(seconds=interval)
    return next_poll(started, interval, grid.phase, grid.max_interval)


def decide(row: CalendarState | None, account: AccountState | None, now: dt.datetime,
           interval: float, *,
           started: dt.datetime, ended: Ended | None = None, first: bool = False,
           process_started: dt.datetime, audit_interval: float = 0,
           backoff_max: float = 3600.0, grid: Grid | None = None,
           rand: Callable[[], float] = random.random) -> Decision:
    """The decision of a calendar's job: before a pass (``ended`` None) or after a look.

    ``row`` and ``account`` are the stored state as the job read it (``row`` may be
    None only after a look that could not read it, ``Ended("error")``), ``now`` the
    time of the decision, ``interval`` the calendar's interval (from
    :func:`reconciler.intervals.interval_of`), ``started`` when the job's look
    began (start-to-start: the next pass is due an interval after it; with an
    adaptive ``grid``, on the calendar's next grid point instead).
    """
    due = due_after(started, interval, grid)
    on_schedule = next_after_pass(started, interval, now, grid)
    if ended is None:
        assert row is not None
        chosen = plan(row, account, now, first=first, process_started=process_started,
                      audit_interval=audit_interval)
        if chosen.sync:
            return Decision(True, chosen.reason, due,
                            audit=chosen.audit, probe=chosen.probe)
        ended = Ended("skipped", plan=chosen)
    if ended.kind == "skipped":
        assert ended.plan is not None
        reason = ended.plan.reason
        if reason == "removed":
            return Decision(False, reason, None)
        return Decision(False, reason, ended.plan.wait_until or on_schedule,
                        hold=reason in HOLDING)
    if ended.kind == "failed":
        assert ended.error is not None
        delay = failure_delay(ended.error, ended.failures, interval, backoff_max, rand)
        return Decision(False, delay.reason, now + dt.timedelta(seconds=delay.seconds),
                        hold=True, delay=delay)
    if ended.kind == "just_synced":
        return Decision(False, ended.kind, ended.stored_due or on_schedule)
    if ended.kind == "error":
        return Decision(False, ended.kind, now + dt.timedelta(seconds=interval))
    return Decision(False, ended.kind, on_schedule)  # synced, lease_held
