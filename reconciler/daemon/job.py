"""One calendar's job under ``run``: read the row, decide, at most one pass, decide again.

The decisions are :func:`reconciler.daemon.planning.decide` (pure: when and
why); this module does the I/O around them: reading the row and the account,
the pass itself (through the current service generation), storing a
failure's next due time, parking a refused account, metrics, the heartbeat
and the log. Its next run is set from the decision, never computed here:
every look sets it, and the job's APScheduler trigger is only a watchdog an
hour long (:data:`reconciler.daemon.roster.WATCHDOG`), which is also what
fires a job whose row is gone (the calendar-set refresh removes it).

A "sync soon" request that arrives while a pass runs is answered by the same
job run: the pass clears the request only if the request counter did not
move, and when it moved the job makes one more pass at once (at most
``MAX_ROUNDS`` back to back).

One cause, one line: a lost database and a refused account are reported
through :class:`reconciler.daemon.causes.Causes`, not by every calendar.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from reconciler.clock import utcnow
from reconciler.config import Config
from reconciler.daemon.backoff import REAUTH_RETRY
from reconciler.daemon.causes import Causes
from reconciler.daemon.generations import Generations
from reconciler.daemon.heartbeat import Heartbeat
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.planning import Decision, Ended, Plan, decide
from reconciler.errors import (
    AuthFailed,
    DatabaseUnavailable,
    GoogleError,
    GoogleUnreachable,
    LeaseHeld,
    ReconcilerError,
    SyncStopped,
    first_line,
)
from reconciler.intervals import grid_of, interval_of
from reconciler.logsetup import log_failure
from reconciler.outcome import CalendarState, PassOutcome, SyncRequest
from reconciler.service import Service
from reconciler.store import calendars

log = logging.getLogger("reconciler.daemon")

MAX_ROUNDS = 5  # passes one job run makes back to back while requests keep coming


@dataclass(slots=True)
class JobContext:
    """What every calendar's job shares with the daemon."""

    generations: Generations
    metrics: Metrics
    heartbeat: Heartbeat
    causes: Causes
    stop_event: threading.Event
    process_started: dt.datetime
    reschedule: Callable[[CalendarJob, dt.datetime], None]
    tracked: Callable[[], AbstractContextManager[None]]
    rand: Callable[[], float] = random.random
    succeeded: threading.Event = field(default_factory=threading.Event)  # a first pass did

    @property
    def config(self) -> Config:
        """The config of the current generation."""
        return self.generations.config


class CalendarJob:
    """What this process knows about one scheduled calendar, and its job."""

    def __init__(self, ctx: JobContext, pk: int, calendar_id: str, account: str,
                 interval: float) -> None:
        self.ctx = ctx
        self.pk = pk
        self.calendar_id = calendar_id
        self.account = account
        self.interval = interval  # the trigger's, as the calendar-set diff last set it
        self.last_interval = interval  # from the latest row read (interval_of): after an error
        self.job_id = job_id_for(account, calendar_id)
        self.first = True
        self.running = False
        self.hold_until: dt.datetime | None = None  # backoff / parked: requests wait until then
        self.last_trigger: tuple[int, float] | None = None
        self.failures = 0
        self.retired = False  # taken off the schedule: a run already queued does nothing
        # When this process's last pass of the calendar began (not a look that skipped):
        # what a new plan's due time counts from.
        self.last_pass_started: dt.datetime | None = None

    def run(self) -> None:
        """The APScheduler entry point: passes while requests keep coming, then the next run."""
        ctx = self.ctx
        with ctx.tracked():
            if ctx.stop_event.is_set() or self.retired:
                return
            self.running = True
            started = utcnow()
            try:
                with ctx.generations.borrow() as svc:
                    for _round in range(MAX_ROUNDS):
                        started = utcnow()
                        if ctx.stop_event.is_set() or not self.look(svc, started):
                            break
            except DatabaseUnavailable as exc:
                ctx.causes.database_lost(exc, self.calendar_id)
                self._error(started)
            except Exception as exc:  # a bug (traceback logged) or a store error: retried later
                log.error("calendar %s: scheduler error: %s", self.calendar_id, first_line(exc),
                          exc_info=not isinstance(exc, ReconcilerError))
                self._error(started)
            finally:
                self.running = False

    def _error(self, started: dt.datetime) -> None:
        now = utcnow()
        self._apply(decide(None, None, now, self.last_interval, started=started,
                           ended=Ended("error"), process_started=self.ctx.process_started))

    def _decide(self, state: CalendarState, account: Any, started: dt.datetime,
                ended: Ended | None = None) -> Decision:
        config = self.ctx.config
        self.last_interval = interval_of(state, config)
        return decide(state, account, utcnow(), self.last_interval, started=started,
                      ended=ended, first=self.first, process_started=self.ctx.process_started,
                      audit_interval=config.sync.audit_interval,
                      backoff_max=config.sync.backoff_max,
                      grid=grid_of(self.calendar_id, config), rand=self.ctx.rand)

    def _apply(self, decision: Decision, *, skip: bool = False) -> None:
        """Set the next run (and the hold on requests) from a decision after a look;
        ``skip``: the look did not sync (counted by reason)."""
        if skip:
            self.ctx.metrics.skips.labels(decision.reason).inc()
        self.hold_until = decision.next_run if decision.hold else None
        if decision.next_run is not None:
            self.ctx.reschedule(self, decision.next_run)

    def look(self, svc: Service, started: dt.datetime) -> bool:
        """One decision and at most one pass; True when a request asks for one more pass."""
        ctx = self.ctx
        state = calendars.read_state(self.pk)
        ctx.causes.database_ok()
        if state is None:
            return False
        account = calendars.get_account(state.account)
        decision = self._decide(state, account, started)
        if not decision.sync:
            self._apply(decision, skip=True)
            return False
        if decision.probe:
            until = started + dt.timedelta(seconds=REAUTH_RETRY[0])
            if not calendars.claim_auth_probe(state.account, started, until):
                self._apply(self._decide(state, account, started, Ended(
                    "skipped", plan=Plan(False, "needs_reauth", wait_until=until))), skip=True)
                return False
            log.info("account %s: trying its credentials again (with calendar %s)",
                     state.account, state.calendar_id)
            svc.recheck_account(state.account)
        self.hold_until = None
        self.last_pass_started = started
        due = decision.next_run
        assert due is not None
        request = SyncRequest(
            audit=decision.audit, seen=None if decision.probe else state,
            # Stored in the same UPDATE that records the pass and releases the lease.
            next_due=due)  # a datetime; the attempt stores now if the pass outlasts it
        try:
            attempt = svc.attempt(state, request)
        except SyncStopped:
            return False
        except LeaseHeld:
            self.first = False
            self._apply(self._decide(state, account, started, Ended("lease_held")), skip=True)
            return False
        except DatabaseUnavailable:
            self.first = False
            raise
        except ReconcilerError as exc:
            self._failed(svc, state, account, started, exc)
            return False
        self.first = False
        fresh = attempt.state
        if attempt.outcome is None:
            # Another process finished a pass between our look and our claim.
            self._apply(self._decide(state, account, started,
                                     Ended("just_synced", stored_due=fresh.next_due)), skip=True)
            return False
        self._succeeded(attempt.outcome, attempt.audit, fresh)
        answered = calendars.clear_sync_request(self.pk, fresh.sync_request_seq)
        self._apply(self._decide(state, account, started, Ended("synced")))
        return not answered

    def _succeeded(self, outcome: PassOutcome, audit: PassOutcome | None,
                   fresh: CalendarState) -> None:
        ctx = self.ctx
        ctx.metrics.record_pass(outcome)
        ctx.heartbeat.poll_succeeded(self.calendar_id, outcome.repaired)
        ctx.causes.account_ok(fresh.account)
        ctx.causes.api_ok()
        ctx.succeeded.set()
        if fresh.sync_requested_at is not None:
            ctx.metrics.sync_requests.inc()
        if audit is not None:
            ctx.metrics.record_pass(audit)
            ctx.metrics.record_audit(audit)
            _log_audit(audit)
        self.failures = 0

    def _failed(self, svc: Service, row: CalendarState, account: Any, started: dt.datetime,
                exc: ReconcilerError) -> None:
        ctx = self.ctx
        self.first = False
        self.failures += 1
        failures = self.failures
        with contextlib.suppress(ReconcilerError):
            failures = max(failures, calendars.consecutive_failures(self.pk))
        decision = self._decide(row, account, started, Ended("failed", error=exc,
                                                             failures=failures))
        due, delay = decision.next_run, decision.delay
        assert due is not None and delay is not None
        try:
            calendars.set_next_due(self.pk, due)
            if isinstance(exc, AuthFailed):
                svc.park_account(row.account, str(exc), next_retry=due)
        except ReconcilerError as store_exc:
            log.debug("calendar %s: could not store next due time: %s", self.calendar_id,
                      store_exc)
        ctx.metrics.failures.labels(type(exc).__name__).inc()
        ctx.heartbeat.poll_failed(self.calendar_id, type(exc).__name__)
        if isinstance(exc, GoogleUnreachable):  # one line for every calendar (Causes)
            ctx.causes.api_unreachable(exc, self.calendar_id)
            log.debug("calendar %s: Google unreachable; next attempt in %.0fs", self.calendar_id,
                      delay.seconds)
            message = ""
        elif not isinstance(exc, AuthFailed):
            if isinstance(exc, GoogleError):  # Google answered: not unreachable (any more)
                ctx.causes.api_ok()
            message = (f"calendar {self.calendar_id}: pass failed ({type(exc).__name__}): "
                       f"{first_line(exc)}; next attempt in {delay.seconds:.0f}s ({delay.reason})")
        elif ctx.causes.account_refused(row.account):  # one line for the account
            message = (f"account {row.account}: credentials refused: {first_line(exc)}; its "
                       f"calendars wait, next try in {delay.seconds:.0f}s ({delay.reason})")
        else:
            log.debug("calendar %s: account %s still refused", self.calendar_id, row.account)
            message = ""
        if message:
            log_failure(log, message, error=exc, calendar=self.calendar_id, account=row.account,
                        retry_in=round(delay.seconds, 3), retry_reason=delay.reason)
        self._apply(decision)


def job_id_for(account: str, calendar_id: str) -> str:
    """The APScheduler job id of a calendar: stable, derived from account and calendar."""
    return f"calendar:{account}:{calendar_id}"


def _log_audit(outcome: PassOutcome) -> None:
    """One line per audit of ``run`` (``once --verify`` reports its own)."""
    if outcome.repaired:
        log.warning("calendar %s: audit: mirror differed from Google (%d missing, "
                    "%d outdated, %d stale rows); repaired", outcome.calendar_id,
                    outcome.created, outcome.updated, outcome.deleted)
    else:
        log.info("calendar %s: audit: mirror matches Google", outcome.calendar_id)
