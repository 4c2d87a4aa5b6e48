"""The ``reconciler run`` loop: one APScheduler job per calendar, shared through the database.

* **Jobs.** Each calendar has an ``IntervalTrigger`` job (``max_instances=1``,
  ``coalesce=True``, a misfire grace time) on a thread pool of
  ``sync.concurrency`` workers. After every run the job sets its own next run
  time from the outcome: ``interval`` after the pass started (start-to-start),
  a backoff after a failure, the stored due time when another process got
  there first. The first pass of every calendar starts at once, spread over at
  most 10% of the interval.
* **Shared schedule.** ``calendar.next_due`` is the schedule of the whole fleet:
  before syncing, a job reads the row (see :mod:`reconciler.daemon.planning`),
  then claims the lease with no wait; a calendar held by another live process
  is skipped this time (not a failure).
* **Sync soon.** ``request_sync`` sets ``sync_requested_at`` and bumps
  ``sync_request_seq``. A poller (every 0.5 s) brings the job of a requested
  calendar forward. A pass remembers the counter it started from and clears
  the request only if the counter did not move; if it moved, the same job
  instance makes exactly one more pass at once (APScheduler would drop a run
  requested while the job runs, so the repeat never goes through it).
* **Control jobs** (their own small thread pool, so busy sync workers never
  delay them): the request poller, ``resolve_calendars`` every interval and
  after SIGHUP (jobs added and removed to match), the watch runtime's tick.
* **Logs.** Each pass logs through ``log_pass`` (DEBUG when it changed nothing),
  each failure through ``log_failure`` (with ``error_kind``), and a control job
  logs one INFO heartbeat per ``HEARTBEAT_SECONDS`` ("62 calendars polled, 3
  changes, 0 failing"), so a quiet fleet logs one line a minute, not one per poll.
* **Shutdown.** Stop scheduling, let passes stop after the page in flight
  (``Service.stopping``), stop the watch runtime, release leases. Bounded: if a
  worker is stuck in a request, leases are released anyway and the caller
  exits hard (``run`` returns False).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.clock import utcnow
from reconciler.config import Config
from reconciler.daemon.backoff import REAUTH_RETRY, failure_delay
from reconciler.daemon.exitguard import EXIT_DEADLINE, exit_deadline
from reconciler.daemon.heartbeat import Heartbeat
from reconciler.daemon.metrics import HealthServer, Metrics
from reconciler.daemon.planning import Plan, first_run_offset, next_after_pass, plan
from reconciler.daemon.quota import QuotaBudget
from reconciler.daemon.reload import reload_config
from reconciler.errors import AuthFailed, LeaseHeld, ReconcilerError, SyncStopped, first_line
from reconciler.google.retry import RetryPolicy
from reconciler.logsetup import log_failure
from reconciler.outcome import CalendarState, PassOutcome, SyncRequest
from reconciler.schedule import plan as adaptive
from reconciler.service import Service
from reconciler.store import calendars, leases
from reconciler.store import schedule as schedule_rows
from reconciler.store.records import CalendarRow as Calendar

log = logging.getLogger("reconciler.daemon")

UTC = dt.UTC
REQUEST_POLL_SECONDS = 0.5  # how often the database is asked for "sync soon" requests
RETRIGGER_SECONDS = 3.0  # a request still pending after a trigger is triggered again
WATCH_TICK_SECONDS = 5.0
MAX_ROUNDS = 5  # passes one job run makes back to back while requests keep coming
JOB_STOP_WAIT = 10.0  # seconds shutdown waits for passes to finish their page
INLINE_RETRY_MAX = 30.0  # seconds one request may spend in inline retries under `run`
MIN_RESCHEDULE = dt.timedelta(seconds=0.2)
HEARTBEAT_SECONDS = 60.0  # one INFO line per minute
HEARTBEAT_CHECK_SECONDS = 1.0  # how often the control job asks whether a beat is due


@dataclass(slots=True)
class _Cal:
    """What this process knows about one scheduled calendar."""

    pk: int
    calendar_id: str
    account: str
    interval: int
    job_id: str
    first: bool = True
    running: bool = False
    hold_until: dt.datetime | None = None  # backoff / parked: requests wait until then
    last_trigger: tuple[int, float] | None = None
    failures: int = 0
    planned: float | None = None  # the adaptive schedule's interval, as last read from the row
    last_started: dt.datetime | None = None  # start of this process's last pass


def job_id_for(account: str, calendar_id: str) -> str:
    """The APScheduler job id of a calendar: stable, derived from account and calendar."""
    return f"calendar:{account}:{calendar_id}"


class Daemon:
    """One ``reconciler run`` process."""

    def __init__(self, config: Config, *, config_path: str | Path | None = None,
                 rand: Callable[[], float] = random.random,
                 clock: Callable[[], float] = time.monotonic,
                 heartbeat_period: float = HEARTBEAT_SECONDS) -> None:
        self.config = config
        self.config_path = config_path if config_path is not None else config.path
        self.rand = rand
        self.stop_event = threading.Event()
        self.heartbeat = Heartbeat(clock, heartbeat_period)
        self.metrics = Metrics(owners=self.owners,
                               default_interval=lambda: self.config.sync.interval,
                               hash_calendar_ids=lambda: self.config.metrics.hash_calendar_ids)
        self.budget = QuotaBudget(config.quota, self.stop_event,
                                  on_wait=self.metrics.quota_waits.inc)
        self._svc_lock = threading.Lock()
        self._uses: dict[int, int] = {}
        self._retired: list[Service] = []
        self.service = self._new_service(config)
        self._all_services: list[Service] = [self.service]
        self._lock = threading.RLock()
        self._calendars: dict[int, _Cal] = {}
        self._active = 0
        self._active_cond = threading.Condition()
        self._stop_requested = False
        self._reload_requested = False
        self._last_tick = time.monotonic()
        self._resolve_failures: set[str] = set()
        self.process_started = utcnow()
        self.runtime: Any = None
        self.http: HealthServer | None = None
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(config.sync.concurrency),
                       "control": ThreadPoolExecutor(4)},
            job_defaults={"coalesce": True, "max_instances": 1})

    # -- services (a new one per config reload) --------------------------------------------

    def _new_service(self, config: Config) -> Service:
        retry = RetryPolicy(attempts=config.google.retries + 1,
                            max_seconds=min(config.google.max_retry_seconds, INLINE_RETRY_MAX))
        return Service(config, retry=retry, before_request=self._before_request)

    def _before_request(self, account: str, method: str) -> None:
        self.metrics.requests.labels(method).inc()
        self.budget.before_request(account, method)

    def owners(self) -> list[str]:
        """Lease owner ids of this process (one per config generation)."""
        with self._svc_lock:
            return [svc.owner for svc in self._all_services]

    @contextlib.contextmanager
    def _borrow(self) -> Iterator[Service]:
        with self._svc_lock:
            svc = self.service
            self._uses[id(svc)] = self._uses.get(id(svc), 0) + 1
        try:
            yield svc
        finally:
            close = False
            with self._svc_lock:
                self._uses[id(svc)] -= 1
                if svc in self._retired and not self._uses[id(svc)]:
                    self._retired.remove(svc)
                    self._all_services.remove(svc)  # closed: its leases are released
                    close = True
            if close:
                svc.close()

    # -- lifecycle ----------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask the main loop to shut down (safe from a signal handler: sets a flag only)."""
        self._stop_requested = True

    def request_reload(self) -> None:
        """Ask the main loop to reload the config (safe from a signal handler)."""
        self._reload_requested = True

    def start(self) -> None:
        """Resolve the calendars, schedule their first passes, start serving."""
        self.service.check_credentials()  # a malformed key file: exit 2 before scheduling
        # A restart tries parked accounts once (the credentials may be fixed).
        calendars.retry_parked_accounts(self.process_started)
        self._resolve(initial=True)
        interval = self.config.sync.interval
        self.scheduler.add_job(self._poll_requests, IntervalTrigger(seconds=REQUEST_POLL_SECONDS),
                               id="control:requests", executor="control")
        self.scheduler.add_job(self._resolve, IntervalTrigger(seconds=interval),
                               id="control:resolve", executor="control")
        self.scheduler.add_job(self.beat, IntervalTrigger(seconds=HEARTBEAT_CHECK_SECONDS),
                               id="control:heartbeat", executor="control")
        if self.config.sync.schedule == "adaptive":
            self.scheduler.add_job(self._replan, IntervalTrigger(seconds=max(1.0, interval / 4)),
                                   id="control:replan", executor="control")
        else:  # a plan left by an adaptive run must not steer status and metrics
            schedule_rows.clear_planned_intervals()
        if self.config.metrics.port:
            self._start_http()
        if self.config.watch.enabled:
            self._start_watch()
        self.scheduler.start()
        log.info("run: %d calendar(s) scheduled, %d worker(s), owner %s",
                 len(self._calendars), self.config.sync.concurrency, self.service.owner)

    def _start_http(self) -> None:
        host, port = self.config.metrics.host, self.config.metrics.port
        assert port is not None
        try:
            self.http = HealthServer(host, port, self.metrics, self.health)
        except OSError as exc:
            raise ReconcilerError(f"metrics.port: cannot listen on {host}:{port}: "
                                  f"{exc.strerror or exc}") from None
        self.http.start()
        log.info("metrics on http://%s:%d/metrics, health on /healthz", host, self.http.port)

    def _start_watch(self) -> None:
        try:
            from reconciler.watch.runtime import WatchRuntime  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            log.warning("watch.enabled is set but the watch runtime is not available (%s); "
                        "polling only", exc)
            return
        try:
            runtime = WatchRuntime(self.service, self.config)
            runtime.start()
        except Exception as exc:
            log.error("watch runtime did not start (%s); polling only", exc)
            return
        self.runtime = runtime
        self.scheduler.add_job(self._watch_tick, IntervalTrigger(seconds=WATCH_TICK_SECONDS),
                               id="control:watch", executor="control")

    def run(self, *, install_signals: bool = True) -> bool:
        """Serve until stopped; True when everything shut down cleanly.

        False means a worker was stuck (e.g. in a stalled request) past the
        shutdown deadline: leases were released, and the caller should exit
        without waiting for that thread.
        """
        if install_signals:
            signal.signal(signal.SIGTERM, lambda *_: self.request_stop())
            signal.signal(signal.SIGINT, lambda *_: self.request_stop())
            if hasattr(signal, "SIGHUP"):
                signal.signal(signal.SIGHUP, lambda *_: self.request_reload())
        try:
            self.start()
            while not self._stop_requested:
                time.sleep(0.1)
                self._last_tick = time.monotonic()
                if self._reload_requested:
                    self._reload_requested = False
                    self.scheduler.add_job(self._reload, id="control:reload", executor="control",
                                           replace_existing=True)
        finally:
            if install_signals:  # a real process: exit in time even if the database hangs
                exit_deadline(EXIT_DEADLINE)
            clean = self.shutdown()
        return clean

    def shutdown(self) -> bool:
        """Stop scheduling, let passes finish their page, release leases."""
        started = time.monotonic()
        log.info("run: stopping (finishing the pages in flight)")
        self.stop_event.set()
        with self._svc_lock:
            services = list(self._all_services)
        for svc in services:
            svc.stopping.set()
        with contextlib.suppress(SchedulerNotRunningError):
            self.scheduler.shutdown(wait=False)
        with self._active_cond:
            self._active_cond.wait_for(lambda: self._active == 0, timeout=JOB_STOP_WAIT)
            clean = self._active == 0
        if self.runtime is not None:
            try:
                self.runtime.stop()
            except Exception as exc:
                log.warning("watch runtime did not stop cleanly: %s", exc)
        for svc in services:
            if clean:
                svc.close()
            else:
                try:
                    leases.release_all(svc.owner)
                except ReconcilerError as exc:
                    log.warning("could not release leases: %s", exc)
        if self.http is not None:
            self.http.stop()
        log.info("run: stopped in %.1fs%s", time.monotonic() - started,
                 "" if clean else " (a pass was stuck in a request; leases released anyway)")
        return clean

    def health(self) -> tuple[bool, dict[str, Any]]:
        """For ``/healthz``: the main loop ticks (the metrics server's probe, with its
        deadline, is what asks the database)."""
        detail: dict[str, Any] = {"calendars": len(self._calendars)}
        tick_age = time.monotonic() - self._last_tick
        ok = tick_age < 10 and not self.stop_event.is_set()
        if not ok:
            detail["problem"] = "stopping" if self.stop_event.is_set() else "main loop stalled"
        return ok, detail

    @contextlib.contextmanager
    def _tracked(self) -> Iterator[None]:
        with self._active_cond:
            self._active += 1
        try:
            yield
        finally:
            with self._active_cond:
                self._active -= 1
                self._active_cond.notify_all()

    # -- the calendar set -------------------------------------------------------------------

    def _resolve(self, initial: bool = False) -> None:
        if self.stop_event.is_set():
            return
        with self._tracked(), self._borrow() as svc:
            try:
                rows, failures = svc.resolve_calendars()
            except ReconcilerError as exc:
                if initial:
                    raise
                log.warning("could not refresh the calendar set: %s", exc)
                return
        messages = {f"{f.subject}: {f.message}" for f in failures}
        for message in sorted(messages - self._resolve_failures):
            log.warning("%s", message)
        self._resolve_failures = messages
        self._apply_calendar_set(rows)
        if self.config.sync.purge_removed:
            self._purge_removed()

    def _apply_calendar_set(self, rows: list[Calendar]) -> None:
        wanted = {row.id: row for row in rows}
        now = utcnow()
        with self._lock:
            for pk, known in list(self._calendars.items()):
                row = wanted.get(pk)
                if row is None or row.account != known.account:
                    with contextlib.suppress(JobLookupError):
                        self.scheduler.remove_job(known.job_id)
                    del self._calendars[pk]
                    self.heartbeat.forget(known.calendar_id)
                    if row is None:
                        log.info("calendar %s: removed from the schedule", known.calendar_id)
            for pk, row in wanted.items():
                interval = int(row.interval or self.config.sync.interval)
                cal = self._calendars.get(pk)
                if cal is None:
                    cal = _Cal(pk, row.calendar_id, row.account, interval,
                               job_id_for(row.account, row.calendar_id))
                    self._calendars[pk] = cal
                    offset = first_run_offset(interval, self.config.sync.jitter, self.rand)
                    first = now + dt.timedelta(seconds=offset)
                    self.scheduler.add_job(
                        self._calendar_job, IntervalTrigger(seconds=interval, timezone=UTC),
                        args=[pk], id=cal.job_id, name=f"sync {row.calendar_id}",
                        max_instances=1, coalesce=True, misfire_grace_time=max(30, interval),
                        next_run_time=first.replace(tzinfo=UTC), replace_existing=True)
                elif cal.interval != interval:
                    cal.interval = interval
                    with contextlib.suppress(JobLookupError):
                        self.scheduler.modify_job(
                            cal.job_id, trigger=IntervalTrigger(seconds=interval, timezone=UTC),
                            misfire_grace_time=max(30, interval))

    def beat(self) -> bool:
        """Log the heartbeat line if one is due; True when it logged one."""
        beat = self.heartbeat.due()
        if beat is None:
            return False
        log.info(beat.message, extra=beat.fields)
        return True

    def _purge_removed(self) -> None:
        for pk, calendar_id in calendars.removed_calendars():
            calendars.purge_calendar(pk)
            log.info("calendar %s: rows deleted (sync.purge_removed = true)", calendar_id)

    def scheduled(self) -> dict[int, str]:
        """Calendar pk -> calendar id of every calendar this process schedules."""
        with self._lock:
            return {pk: cal.calendar_id for pk, cal in self._calendars.items()}

    def next_run_times(self) -> dict[str, dt.datetime]:
        """Job id -> next run time (UTC, aware), for tests and diagnostics."""
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs()
                if job.id.startswith("calendar:") and job.next_run_time is not None}

    # -- control jobs ------------------------------------------------------------------------

    def _poll_requests(self) -> None:
        if self.stop_event.is_set():
            return
        try:
            pending = calendars.pending_requests()
        except ReconcilerError as exc:
            log.debug("request poll failed: %s", exc)
            return
        now, mono = utcnow(), time.monotonic()
        for pk, seq in pending:
            with self._lock:
                cal = self._calendars.get(pk)
                if cal is None or cal.running:
                    continue  # a running pass checks the counter itself when it ends
                if cal.hold_until is not None and cal.hold_until > now:
                    continue  # backoff or parked account: the request waits for it
                if (cal.last_trigger is not None and cal.last_trigger[0] == seq
                        and mono - cal.last_trigger[1] < RETRIGGER_SECONDS):
                    continue
                cal.last_trigger = (seq, mono)
            self._schedule(cal, now)

    def _watch_tick(self) -> None:
        if self.runtime is None or self.stop_event.is_set():
            return
        try:
            self.runtime.tick()
        except Exception as exc:
            log.warning("watch runtime tick failed: %s", exc)

    def _reload(self) -> None:
        new = reload_config(self.config, self.config_path)
        if new is None:
            return
        svc = self._new_service(new)
        with self._svc_lock:
            old = self.service
            self.config = new
            self.budget = QuotaBudget(new.quota, self.stop_event,
                                      on_wait=self.metrics.quota_waits.inc)
            self.service = svc
            self._all_services.append(svc)
            # The watch runtime keeps the service it started with: that one stays
            # open until shutdown. Any other old service closes once unused.
            close_now = False
            if self.runtime is None or old is not self.runtime.service:
                if self._uses.get(id(old), 0):
                    self._retired.append(old)
                else:
                    close_now = True
                    self._all_services.remove(old)
        if close_now:
            old.close()
        with contextlib.suppress(JobLookupError):
            self.scheduler.modify_job("control:resolve",
                                      trigger=IntervalTrigger(seconds=new.sync.interval))
        log.info("config reloaded from %s", self.config_path or "the default location")
        self._resolve()

    # -- one calendar ------------------------------------------------------------------------

    def _schedule(self, cal: _Cal, when: dt.datetime) -> None:
        when = max(when, utcnow() + MIN_RESCHEDULE)
        with contextlib.suppress(JobLookupError, SchedulerNotRunningError):
            self.scheduler.modify_job(cal.job_id, next_run_time=when.replace(tzinfo=UTC))

    def _calendar_job(self, pk: int) -> None:
        with self._tracked():
            with self._lock:
                found = self._calendars.get(pk)
                if found is None or self.stop_event.is_set():
                    return
                cal = found
                cal.running = True
            try:
                with self._borrow() as svc:
                    for _round in range(MAX_ROUNDS):
                        if self.stop_event.is_set() or not self._attempt(svc, cal):
                            break
            except Exception as exc:  # a bug or a database outage: log, retry later
                log.error("calendar %s: scheduler error: %s", cal.calendar_id, first_line(exc),
                          exc_info=not isinstance(exc, ReconcilerError))
                self._schedule(cal, utcnow() + dt.timedelta(seconds=cal.interval))
            finally:
                cal.running = False

    def _attempt(self, svc: Service, cal: _Cal) -> bool:
        """One decision and at most one pass; True when a request asks for one more pass."""
        started = utcnow()
        state = calendars.read_state(cal.pk)
        if state is None:
            return False
        cal.planned = state.planned_interval
        cal.last_started = started
        account = calendars.get_account(state.account)
        decision = plan(state, account, started, first=cal.first,
                        process_started=self.process_started,
                        audit_interval=self.config.sync.audit_interval)
        if not decision.sync:
            return self._skip(cal, decision, started)
        if decision.probe:
            until = started + dt.timedelta(seconds=REAUTH_RETRY[0])
            if not calendars.claim_auth_probe(state.account, started, until):
                return self._skip(cal, Plan(False, "needs_reauth", wait_until=until), started)
            log.info("account %s: trying its credentials again (with calendar %s)",
                     state.account, state.calendar_id)
            svc.recheck_account(state.account)
        cal.hold_until = None
        request = SyncRequest(
            audit=decision.audit, seen=None if decision.probe else state,
            # Start-to-start, known before the pass; stored in the UPDATE that records it.
            next_due=self._next_due(cal, started))
        try:
            attempt = svc.attempt(state, request)
        except SyncStopped:
            return False
        except LeaseHeld:
            cal.first = False
            self.metrics.skips.labels("lease_held").inc()
            self._schedule(cal, self._next_due(cal, started))
            return False
        except ReconcilerError as exc:
            self._after_failure(cal, state, exc)
            return False
        cal.first = False
        fresh = attempt.state
        if attempt.outcome is None:
            # Another process finished a pass between our look and our claim.
            self.metrics.skips.labels("just_synced").inc()
            self._schedule(cal, fresh.next_due or self._next_due(cal, started))
            return False
        self.metrics.record_pass(attempt.outcome)
        self.heartbeat.poll_succeeded(cal.calendar_id, attempt.outcome.repaired)
        if fresh.sync_requested_at is not None:
            self.metrics.sync_requests.inc()
        if attempt.audit is not None:
            self.metrics.record_pass(attempt.audit)
            self.metrics.record_audit(attempt.audit)
            _log_audit(attempt.audit)
        cal.failures = 0
        answered = calendars.clear_sync_request(cal.pk, fresh.sync_request_seq)
        self._schedule(cal, self._next_due(cal, started))
        return not answered

    def interval_of(self, cal: _Cal) -> float:
        """The one place that says how often a calendar is polled (fixed or adaptive)."""
        return adaptive.interval_of(cal.interval, cal.planned,
                                    self.config.sync.schedule == "adaptive")

    def _next_due(self, cal: _Cal, started: dt.datetime) -> dt.datetime:
        if self.config.sync.schedule != "adaptive":
            return next_after_pass(started, cal.interval, utcnow())
        return adaptive.next_due(cal.calendar_id, started, utcnow(), self.interval_of(cal),
                                 adaptive=self.config.sync.schedule == "adaptive",
                                 max_interval=self.config.sync.interval_bounds[1])

    def _replan(self) -> None:
        """Adaptive schedule: the fleet's estimates (every process's) -> planned intervals."""
        if self.stop_event.is_set():
            return
        sync = self.config.sync
        try:
            rows = schedule_rows.fleet_estimates()
            plan = adaptive.replan(((r.pk, r.rate, r.observed) for r in rows),
                                   interval=sync.interval,
                                   requests_per_minute=self.config.quota.requests_per_minute,
                                   bounds=sync.interval_bounds)
            schedule_rows.write_planned_intervals(schedule_rows.moved(rows, plan))
        except ReconcilerError as exc:
            log.warning("adaptive schedule: could not replan: %s", exc)
            return
        now = utcnow()
        with self._lock:
            for pk, planned in plan.items():
                cal = self._calendars.get(pk)
                if cal is None:
                    continue
                before, cal.planned = self.interval_of(cal), planned
                if (cal.last_started is None or cal.running or self.interval_of(cal) >= before
                        or (cal.hold_until is not None and cal.hold_until > now)):
                    continue
                # A calendar that became busier: bring its next poll forward to the new grid.
                sooner = self._next_due(cal, cal.last_started)
                job = self.scheduler.get_job(cal.job_id)
                if (job is not None and job.next_run_time is not None
                        and sooner < job.next_run_time.replace(tzinfo=None)):
                    self._schedule(cal, sooner)

    def _skip(self, cal: _Cal, decision: Plan, started: dt.datetime) -> bool:
        self.metrics.skips.labels(decision.reason).inc()
        if decision.reason in ("backoff", "needs_reauth"):
            cal.hold_until = decision.wait_until
        if decision.reason != "removed":
            when = decision.wait_until or self._next_due(cal, started)
            self._schedule(cal, when)
        return False

    def _after_failure(self, cal: _Cal, row: CalendarState, exc: BaseException) -> None:
        cal.first = False
        cal.failures += 1
        failures = cal.failures
        with contextlib.suppress(ReconcilerError):
            failures = max(failures, calendars.consecutive_failures(cal.pk))
        delay = failure_delay(exc, failures, cal.interval, self.config.sync.backoff_max, self.rand)
        due = utcnow() + dt.timedelta(seconds=delay.seconds)
        try:
            calendars.set_next_due(cal.pk, due)
            if isinstance(exc, AuthFailed):
                self.service.park_account(row.account, str(exc), next_retry=due)
        except ReconcilerError as store_exc:
            log.debug("calendar %s: could not store next due time: %s", cal.calendar_id,
                      store_exc)
        cal.hold_until = due
        self.metrics.failures.labels(type(exc).__name__).inc()
        self.heartbeat.poll_failed(cal.calendar_id, type(exc).__name__)
        what = first_line(exc)
        log_failure(log, f"calendar {cal.calendar_id}: pass failed ({type(exc).__name__}): "
                    f"{what}; next attempt in {delay.seconds:.0f}s ({delay.reason})",
                    error=exc, calendar=cal.calendar_id, account=row.account,
                    retry_in=round(delay.seconds, 3), retry_reason=delay.reason)
        self._schedule(cal, due)


def _log_audit(outcome: PassOutcome) -> None:
    """One line per audit of ``run`` (``once --verify`` reports its own)."""
    if outcome.repaired:
        log.warning("calendar %s: audit: mirror differed from Google (%d missing, "
                    "%d outdated, %d stale rows); repaired", outcome.calendar_id,
                    outcome.created, outcome.updated, outcome.deleted)
    else:
        log.info("calendar %s: audit: mirror matches Google", outcome.calendar_id)
