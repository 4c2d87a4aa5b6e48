"""Wire config, store and API together: resolve the calendar set, sync calendars.

Both ``reconciler once`` and ``reconciler run`` use this, and this is the one
owner of a calendar's attempt: claim the lease, re-read the row, skip when
another process has just synced it, run the pass, record the outcome (one
UPDATE that also releases the lease) and, when asked, follow it with an audit
(a full listing that reports what it repaired). ``once`` calls
:meth:`Service.run_pass`, ``run`` calls :meth:`Service.attempt` per job.

Invariants: every failure of one calendar is caught here, recorded on its row
(``status`` shows it) and returned as a one-line :class:`Failure`, so one sick
calendar never stops the others (not even an unexpected exception); callers
catch ``ReconcilerError`` only (the store maps database errors into it).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import google.auth.credentials

from reconciler import discovery
from reconciler.clock import utcnow
from reconciler.config import AccountConfig, Config
from reconciler.engine import CalendarSync
from reconciler.errors import (
    AccessDenied,
    AuthFailed,
    BadRequest,
    CalendarNotFound,
    GoogleError,
    LeaseHeld,
    LeaseLost,
    ReconcilerError,
    SyncStopped,
    first_line,
)
from reconciler.google.client import ApiPool, CalendarApi
from reconciler.google.credentials import identity_of, load_credentials
from reconciler.google.errors import describe_failure
from reconciler.google.retry import RetryPolicy
from reconciler.logsetup import log_pass
from reconciler.outcome import (
    Attempt,
    CalendarState,
    PageCallback,
    PassOutcome,
    SyncRequest,
)
from reconciler.store import calendars, leases
from reconciler.store.models import Calendar, key_of

log = logging.getLogger("reconciler.service")


@dataclass(frozen=True, slots=True)
class Failure:
    """One thing that failed in a pass, with the line to show the user."""

    subject: str  # calendar id or "account NAME"
    message: str
    kind: str
    account: str | None = None  # the account the failure belongs to


class PassObserver(Protocol):
    """Told about each calendar of :meth:`Service.run_pass` (``reconciler.progress`` fits)."""

    def calendar_started(self, calendar_id: str, account: str) -> None:
        """The pass over ``calendar_id`` is about to claim and sync it."""

    def calendar_finished(self, calendar_id: str, counts: PassOutcome | None = None) -> None:
        """The pass over ``calendar_id`` succeeded (``counts``: its outcome, None if skipped)."""

    def calendar_failed(self, calendar_id: str, message: str) -> None:
        """The pass over ``calendar_id`` failed with the one-line ``message``."""


@dataclass(slots=True)
class PassReport:
    """The outcome of one pass over a set of calendars."""

    results: list[PassOutcome] = field(default_factory=list)
    audits: list[PassOutcome] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _state(calendar: CalendarState | Calendar) -> CalendarState:
    return calendar if isinstance(calendar, CalendarState) else calendars.state_of(calendar)


class Service:
    """The reconciler's moving parts for one process."""

    def __init__(self, config: Config, *, owner: str | None = None,
                 retry: RetryPolicy | None = None,
                 before_request: Callable[[str, str], None] | None = None) -> None:
        self.config = config
        self.owner = owner or leases.make_owner()
        self.retry = retry or RetryPolicy(attempts=config.google.retries + 1,
                                          max_seconds=config.google.max_retry_seconds)
        self.on_page_committed: PageCallback | None = None  # progress display hook
        self.before_request = before_request
        self._credentials: dict[str, google.auth.credentials.Credentials] = {}
        self._credentials_lock = threading.Lock()
        self._accounts_ok: set[str] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_workers = 0
        self.pool = ApiPool(self._make_api)
        self._local = threading.local()
        self._engines: list[CalendarSync] = []
        self._engines_lock = threading.Lock()
        self._claimed: dict[int, CalendarState] = {}  # batch-claimed by run_pass, not yet synced
        self._claimed_lock = threading.Lock()
        self.stopping = threading.Event()

    # -- construction of API handles ------------------------------------------

    def account(self, name: str) -> AccountConfig:
        """The config of account ``name`` (a stored row may name one the config dropped)."""
        try:
            return self.config.account(name)
        except KeyError:
            raise ReconcilerError(f"account {name!r} is not in the config any more") from None

    def credentials_for(self, name: str) -> google.auth.credentials.Credentials:
        """Load (once) the credentials of an account; shared by its threads."""
        with self._credentials_lock:
            creds = self._credentials.get(name)
            if creds is None:
                account = self.account(name)
                creds = load_credentials(name, account.credentials, account.subject,
                                         self.config.google.emulator)
                self._credentials[name] = creds
            return creds

    def _make_api(self, name: str) -> CalendarApi:
        hook = None
        if self.before_request is not None:
            callback = self.before_request

            def hook(method: str) -> None:
                callback(name, method)

        return CalendarApi(self.credentials_for(name), api_endpoint=self.config.google.api_endpoint,
                           timeout=self.config.google.timeout, retry=self.retry,
                           before_request=hook)

    def engine_for(self, account: str) -> CalendarSync:
        """This thread's engine for an account (one API handle, one prefetch thread)."""
        engines: dict[str, CalendarSync] | None = getattr(self._local, "engines", None)
        if engines is None:
            engines = self._local.engines = {}
        engine = engines.get(account)
        if engine is None:
            engine = engines[account] = CalendarSync(self.pool.for_account(account),
                                                     self.config.sync,
                                                     history=self.config.store.history,
                                                     occurrence_days=self.config.store.days())
            with self._engines_lock:
                self._engines.append(engine)
        return engine

    def close(self) -> None:
        """Stop helper threads and give back every lease this process holds."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._engines_lock:
            for engine in self._engines:
                engine.close()
            self._engines.clear()
        self._local = threading.local()
        self.pool.close()  # HTTP connections of every thread (a reload must not leak them)
        try:
            leases.release_all(self.owner)
        except ReconcilerError as exc:  # the database may be the thing that failed
            log.warning("could not release leases: %s", exc)

    # -- which calendars ------------------------------------------------------

    def resolve_calendars(self) -> tuple[list[Calendar], list[Failure]]:
        """The calendars to mirror now, each assigned to one account; removed ones marked."""
        failures: list[Failure] = []
        seen_by: list[tuple[str, str, int | None, str, str | None]] = []
        discovered_ok: set[str] = set()
        for account in self.config.accounts:
            calendars.ensure_account(account.name)
            for entry in account.calendars:
                calendar_id = entry.id
                if calendar_id == "primary":
                    try:
                        calendar_id = self._primary_id(account.name)
                    except ReconcilerError as exc:
                        failures.append(self._failure(f"account {account.name}", exc, account.name))
                        continue
                interval = entry.interval or account.interval
                seen_by.append((calendar_id, account.name, interval, "config", None))
            if account.discover and self._parked(account.name):
                # needs_reauth: do not ask Google again before the planned retry time.
                for item in discovery.visible_calendars(account.name):
                    seen_by.append((item.calendar_id, account.name, account.interval, "discover",
                                    item.summary))
            elif account.discover:
                try:
                    visible = discovery.read_calendar_list(self.pool.for_account(account.name),
                                                           account.name)
                    discovered_ok.add(account.name)
                except ReconcilerError as exc:
                    self._note_account_failure(account.name, exc)
                    failures.append(self._failure(f"account {account.name} (calendarList)", exc,
                                                  account.name))
                    visible = discovery.visible_calendars(account.name)
                for item in visible:
                    seen_by.append((item.calendar_id, account.name, account.interval, "discover",
                                    item.summary))
        chosen = discovery.assign(seen_by)
        # One query for every known row, instead of one (or more) per calendar.
        existing = {row.calendar_key: row for row in calendars.all_calendars()}
        rows: list[Calendar] = []
        for calendar_id, (account_name, interval, source, summary) in chosen.items():
            row = calendars.ensure_calendar(calendar_id, account_name, source=source,
                                            interval=interval, summary=summary,
                                            known=existing.get(key_of(calendar_id)))
            if row.account != account_name:
                log.info("calendar %s: now synced by account %s (was %s)", calendar_id,
                         account_name, row.account)
                calendars.reassign(row.id, account_name)
                row.account = account_name
            rows.append(row)
        wanted = {row.id for row in rows}
        for row in existing.values():
            if not row.removed and row.id not in wanted:
                log.info("calendar %s: no longer configured or listed; stopped polling, rows kept",
                         row.calendar_id)
                calendars.mark_removed(row.id)
        return rows, failures

    @staticmethod
    def _parked(account: str) -> bool:
        row = calendars.get_account(account)
        return bool(row is not None and row.state == "needs_reauth"
                    and row.next_auth_retry is not None and row.next_auth_retry > utcnow())

    def _primary_id(self, account: str) -> str:
        row = calendars.ensure_account(account)
        if row.primary_calendar_id:
            return str(row.primary_calendar_id)
        try:
            resource = self.pool.for_account(account).get_calendar("primary")
        except (CalendarNotFound, AccessDenied, BadRequest) as exc:
            # A server without calendars.get (some emulators): mirror it as "primary".
            log.warning("account %s: cannot resolve 'primary' (%s); mirroring it as 'primary'",
                        account, exc)
            resource = {"id": "primary"}
        calendar_id = str(resource.get("id") or "primary")
        calendars.set_primary_calendar(account, calendar_id)
        return calendar_id

    # -- syncing ---------------------------------------------------------------

    def _keep_lease(self, state: CalendarState) -> Callable[[], None]:
        lease_time = self.config.sync.lease_time
        renewed = [time.monotonic()]

        def keep() -> None:
            # Called after each page commits: the place to stop on shutdown
            # without storing a cursor for pages not yet applied.
            if self.stopping.is_set():
                raise SyncStopped(f"calendar {state.calendar_id}: stopped after the page in "
                                  "flight (shutting down)")
            if time.monotonic() - renewed[0] < lease_time / 3:
                return
            if not leases.renew(state.pk, self.owner, lease_time):
                raise LeaseLost(f"calendar {state.calendar_id}: lease lost mid-pass (another "
                                "process took it); pages so far are kept")
            renewed[0] = time.monotonic()

        return keep

    def claim(self, calendar: CalendarState, wait: float) -> CalendarState:
        """Take the calendar's lease, waiting up to ``wait`` seconds for a live holder,
        and return its row as read under the lease.

        Raises ``LeaseHeld`` when it stays taken; the lease is given back if the
        re-read fails. A calendar ``run_pass`` claimed in a batch is handed over
        as read then, with no statement.
        """
        with self._claimed_lock:
            claimed = self._claimed.pop(calendar.pk, None)
        if claimed is not None:
            return claimed
        deadline = time.monotonic() + wait
        while not leases.claim(calendar.pk, self.owner, self.config.sync.lease_time):
            if time.monotonic() >= deadline or self.stopping.is_set():
                holder = leases.holder_of(calendar.pk) or "another process"
                raise LeaseHeld(f"calendar {calendar.calendar_id} is being synced by {holder}; "
                                "it was skipped this time")
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        try:
            fresh = calendars.read_state(calendar.pk)
        except BaseException:
            leases.release(calendar.pk, self.owner)
            raise
        if fresh is None:  # purged meanwhile
            raise LeaseHeld(f"calendar {calendar.calendar_id} was removed meanwhile; skipped")
        return fresh

    def attempt(self, calendar: CalendarState | Calendar,
                request: SyncRequest | None = None) -> Attempt:
        """Claim, re-read, sync, record and release one calendar; then audit it if asked.

        Raises ``LeaseHeld`` when another live process holds the calendar, and
        the project error of a failed pass (after recording it on the row).
        ``Attempt.outcome`` is None when ``request.seen`` shows that another
        process finished a pass between the caller's look and our claim.
        """
        request = request or SyncRequest()
        fresh = self.claim(_state(calendar), request.lease_wait)
        seen = request.seen
        if (seen is not None and fresh.last_attempt != seen.last_attempt
                and fresh.sync_requested_at is None):
            leases.release(fresh.pk, self.owner)
            return Attempt(fresh, None)
        outcome = self._sync_claimed(fresh, request.full, request.next_due)
        audit = self._audit(fresh, request.lease_wait) if request.audit else None
        return Attempt(fresh, outcome, audit)

    def sync_calendar(self, calendar: CalendarState | Calendar, *, full: bool = False,
                      lease_wait: float = 0.0) -> PassOutcome:
        """One pass over one calendar (see :meth:`attempt`); its outcome."""
        outcome = self.attempt(calendar, SyncRequest(full=full, lease_wait=lease_wait)).outcome
        assert outcome is not None  # no ``seen``: never skipped
        return outcome

    def _audit(self, calendar: CalendarState, lease_wait: float) -> PassOutcome | None:
        """A full listing right after a pass; None when another process holds the lease."""
        try:
            fresh = self.claim(calendar, lease_wait)
        except LeaseHeld:
            return None
        return self._sync_claimed(fresh, True, None)

    def _sync_claimed(self, fresh: CalendarState, full: bool,
                      next_due: Callable[[], dt.datetime] | None) -> PassOutcome:
        """Sync a calendar whose lease this process holds, record the outcome, release."""
        released = False
        try:
            engine = self.engine_for(fresh.account)
            try:
                outcome = engine.sync(fresh, full=full, keep_lease=self._keep_lease(fresh),
                                      on_page_committed=self.on_page_committed)
            except SyncStopped:
                raise
            except ReconcilerError as exc:
                self._record_failure(fresh, exc)
                raise
            except Exception as exc:  # a bug: traceback logged once, then a failure like any other
                log.error("calendar %s: unexpected error", fresh.calendar_id, exc_info=True)
                error = ReconcilerError(f"internal error: {type(exc).__name__}: {first_line(exc)}")
                self._record_failure(fresh, error)
                raise error from exc
            calendars.record_success(fresh, self.owner, outcome,
                                     next_due() if next_due is not None else None)
            released = True
            self._note_account_ok(fresh.account)
            log_pass(log, calendar=outcome.calendar_id, account=outcome.account,
                     mode=outcome.mode, created=outcome.created, updated=outcome.updated,
                     deleted=outcome.deleted, requests=outcome.requests, seconds=outcome.seconds,
                     pages=outcome.pages, full_reason=outcome.full_reason)
            return outcome
        finally:
            if not released:
                try:
                    leases.release(fresh.pk, self.owner)
                except ReconcilerError as exc:  # the database may be what failed
                    log.warning("calendar %s: could not release the lease: %s",
                                fresh.calendar_id, exc)

    def _record_failure(self, row: CalendarState, exc: ReconcilerError) -> None:
        gone = isinstance(exc, CalendarNotFound)
        try:
            calendars.record_failure(row.pk, str(exc), type(exc).__name__, gone=gone)
            if gone:
                discovery.mark_lost(row.account, row.calendar_id)
            if isinstance(exc, AuthFailed):
                self._note_account_failure(row.account, exc)
        except ReconcilerError as store_exc:  # never hide the original failure
            log.warning("calendar %s: could not record failure: %s", row.calendar_id, store_exc)

    def _note_account_failure(self, account: str, exc: ReconcilerError) -> None:
        if isinstance(exc, AuthFailed):
            self.park_account(account, str(exc))

    def park_account(self, account: str, error: str,
                     next_retry: dt.datetime | None = None) -> None:
        """Mark an account ``needs_reauth`` (its credentials were rejected)."""
        self._accounts_ok.discard(account)
        calendars.set_account_state(account, "needs_reauth", error, next_retry=next_retry)

    def recheck_account(self, account: str) -> None:
        """Forget that ``account`` was healthy, so the next success clears a park
        another process (or an earlier run) recorded."""
        self._accounts_ok.discard(account)

    def _note_account_ok(self, account: str) -> None:
        # Once per account per process while it stays healthy: not a statement per poll.
        if account in self._accounts_ok:
            return
        calendars.mark_account_ok(account)
        self._accounts_ok.add(account)

    @staticmethod
    def _failure(subject: str, exc: BaseException, account: str) -> Failure:
        message = str(exc)
        if message.startswith(f"{subject}: "):  # the error already names the account
            message = message[len(subject) + 2:]
        return Failure(subject, message, type(exc).__name__, account)

    def check_credentials(self) -> None:
        """Load every account's credentials now (no network): a missing or malformed
        file is a config error, reported before any calendar is touched."""
        for account in self.config.accounts:
            self.credentials_for(account.name)

    def run_pass(self, rows: Iterable[CalendarState | Calendar],
                 request: SyncRequest | None = None, *,
                 concurrency: int | None = None,
                 observer: PassObserver | None = None) -> PassReport:
        """Sync the given calendars once, ``concurrency`` at a time.

        ``request`` defaults to a normal pass that waits up to ``lease_time`` for
        a live holder. A failure of one calendar, of any kind, is a ``Failure``
        in the report and never stops the others. ``observer`` (a progress
        display) hears when each calendar starts, finishes or fails.
        """
        if request is None:
            request = SyncRequest(lease_wait=self.config.sync.lease_time)
        report = PassReport()
        lock = threading.Lock()

        def one(state: CalendarState) -> None:
            if self.stopping.is_set():
                return
            if observer is not None:
                observer.calendar_started(state.calendar_id, state.account)
            try:
                attempt = self.attempt(state, request)
            except ReconcilerError as exc:
                failure = Failure(state.calendar_id, _describe_error(
                    state, exc, self._credentials.get(state.account)), type(exc).__name__,
                    state.account)
            except Exception as exc:  # a bug: one line for the user, traceback in the log
                log.error("calendar %s: unexpected error", state.calendar_id, exc_info=True)
                failure = Failure(state.calendar_id,
                                  f"internal error: {type(exc).__name__}: {first_line(exc)}",
                                  type(exc).__name__, state.account)
            else:
                with lock:
                    if attempt.outcome is not None:
                        report.results.append(attempt.outcome)
                    if attempt.audit is not None:
                        report.audits.append(attempt.audit)
                if observer is not None:
                    observer.calendar_finished(state.calendar_id, attempt.outcome)
                return
            with lock:
                report.failures.append(failure)
            if observer is not None:
                observer.calendar_failed(state.calendar_id, failure.message)

        workers = max(1, concurrency or self.config.sync.concurrency)
        pool = self._pass_pool(workers)
        # Leases are claimed a batch (``workers`` calendars) at a time, one UPDATE
        # and one SELECT each, and at most two batches ahead of the workers, so
        # a claimed calendar waits for a worker at most one batch's time.
        ahead = threading.Semaphore(2 * workers)

        def run_one(state: CalendarState) -> None:
            try:
                one(state)
            finally:
                ahead.release()

        states = [_state(row) for row in rows]  # converted once
        submitted: list[tuple[CalendarState, Future[None]]] = []
        for start in range(0, len(states), workers):
            if self.stopping.is_set():
                break
            chunk = states[start:start + workers]
            for _ in chunk:
                ahead.acquire()
            self._claim_batch(chunk)
            submitted += [(state, pool.submit(run_one, state)) for state in chunk]
        for state, future in submitted:
            try:
                future.result()
            except Exception as exc:  # never stop the other calendars of the pass
                report.failures.append(Failure(state.calendar_id,
                                               f"internal error: {first_line(exc)}",
                                               type(exc).__name__, state.account))
        self._release_unused([state.pk for state, _ in submitted])
        return report

    def _claim_batch(self, states: list[CalendarState]) -> None:
        """Claim a batch of leases in one statement; ``claim`` hands them out.

        A database failure here is no failure of the pass: each calendar is
        then claimed alone, and fails alone."""
        try:
            held = leases.claim_many([state.pk for state in states], self.owner,
                                     self.config.sync.lease_time)
        except ReconcilerError as exc:
            log.warning("could not claim a batch of calendars: %s", exc)
            return
        with self._claimed_lock:
            self._claimed.update(held)

    def _release_unused(self, pks: list[int]) -> None:
        """Give back batch-claimed leases no worker used (a stop, or a failure first)."""
        with self._claimed_lock:
            unused = [pk for pk in pks if self._claimed.pop(pk, None) is not None]
        for pk in unused:
            try:
                leases.release(pk, self.owner)
            except ReconcilerError as exc:
                log.warning("could not release a lease: %s", exc)

    def _pass_pool(self, workers: int) -> ThreadPoolExecutor:
        """The workers of ``run_pass``, kept for the Service's lifetime: each thread's
        API handles and engines are built once, not once per pass."""
        if self._pool is None or self._pool_workers != workers:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sync")
            self._pool_workers = workers
        return self._pool


def _describe_error(row: CalendarState, exc: BaseException,
                    credentials: google.auth.credentials.Credentials | None) -> str:
    if isinstance(exc, GoogleError):  # the advice lives in reconciler.google.errors
        return describe_failure(exc, row.account, identity_of(credentials), row.calendar_id)
    return str(exc)
