"""The ``reconciler run`` process: one APScheduler job per calendar, shared through the database.

The daemon wires small owners together and runs the main loop:

* :mod:`~reconciler.daemon.generations`: the service generations across
  SIGHUP reloads (borrow, retire, close).
* :mod:`~reconciler.daemon.startup`: signal flags, the HTTP endpoint and the
  watch runtime, started and stopped in one place.
* :mod:`~reconciler.daemon.job`: each calendar's job; its decisions (sync or
  not, the next run and why) are :func:`reconciler.daemon.planning.decide`.
  The first pass of every calendar starts at once, spread over at most 10%
  of the interval; afterwards ``calendar.next_due`` is the schedule of the
  whole fleet, and a calendar held by another live process is skipped.
* :mod:`~reconciler.daemon.calendarset` and :mod:`~reconciler.daemon.roster`:
  the calendar-set diff (jobs added, removed, modified) and the jobs
  themselves, with the "sync soon" poller (every 0.5 s).
* :mod:`~reconciler.daemon.causes`: one log line per cause (a lost database,
  a refused account), not one per calendar per interval.

**Control jobs** (their own small thread pool, so busy sync workers never
delay them): the request poller, ``resolve_calendars`` every interval and
after SIGHUP, the heartbeat (one INFO line a minute: "62 calendars polled,
3 changes, 0 failing"), the watch runtime's tick. A calendar set that cannot
be resolved (Google unreachable at start) is retried with backoff and said
once; ``/healthz`` is 503 "starting" until it is resolved and a first pass
has succeeded (:mod:`~reconciler.daemon.readiness`).

**Shutdown.** Stop scheduling, let passes stop after the page in flight
(``Service.stopping``), stop the watch runtime, release leases. Bounded: if
a worker is stuck in a request, leases are released anyway and the caller
exits hard (``run`` returns False).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.clock import utcnow
from reconciler.config import Config
from reconciler.daemon import calendarset
from reconciler.daemon.causes import Causes
from reconciler.daemon.exitguard import EXIT_DEADLINE, exit_deadline
from reconciler.daemon.generations import Generations
from reconciler.daemon.heartbeat import Heartbeat
from reconciler.daemon.job import JobContext
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.quota import QuotaBudget
from reconciler.daemon.readiness import readiness
from reconciler.daemon.reload import reload_config
from reconciler.daemon.replan import Replanner, replan_period
from reconciler.daemon.roster import Roster
from reconciler.daemon.startup import Edges, Flags
from reconciler.errors import DatabaseUnavailable, ReconcilerError
from reconciler.google.retry import RetryPolicy
from reconciler.intervals import interval_of
from reconciler.service import Service
from reconciler.store import calendars

log = logging.getLogger("reconciler.daemon")

UTC = dt.UTC
REQUEST_POLL_SECONDS = 0.5  # how often the database is asked for "sync soon" requests
JOB_STOP_WAIT = 10.0  # seconds shutdown waits for passes to finish their page
INLINE_RETRY_MAX = 30.0  # seconds one request may spend in inline retries under `run`
HEARTBEAT_SECONDS = 60.0  # one INFO line per minute
HEARTBEAT_CHECK_SECONDS = 1.0  # how often the control job asks whether a beat is due
RELOAD_POLL_SECONDS = 0.2  # how often a control job looks for a SIGHUP


class Daemon:
    """One ``reconciler run`` process."""

    def __init__(self, config: Config, *, config_path: str | Path | None = None,
                 rand: Callable[[], float] = random.random,
                 clock: Callable[[], float] = time.monotonic,
                 heartbeat_period: float = HEARTBEAT_SECONDS) -> None:
        self.config_path = config_path if config_path is not None else config.path
        self.stop_event = threading.Event()
        self.flags = Flags()
        self.edges = Edges()
        self.heartbeat = Heartbeat(clock, heartbeat_period)
        self.causes = Causes(log)
        self.metrics = Metrics(owners=self.owners,
                               default_interval=lambda: self.config.sync.interval,
                               interval=lambda row: interval_of(row, self.config),
                               hash_calendar_ids=lambda: self.config.metrics.hash_calendar_ids)
        self.budget = QuotaBudget(config.quota, self.stop_event,
                                  on_wait=self.metrics.quota_waits.inc)
        self.generations = Generations(config, self._new_service)
        self._active = 0
        self._active_cond = threading.Condition()
        self._last_tick = time.monotonic()
        self.resolution = calendarset.Resolution()
        self.process_started = utcnow()
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(config.sync.concurrency),
                       "control": ThreadPoolExecutor(4)},
            job_defaults={"coalesce": True, "max_instances": 1})
        self.jobs = JobContext(self.generations, self.metrics, self.heartbeat, self.causes,
                               self.stop_event, self.process_started,
                               reschedule=lambda job, when: self.roster.reschedule(job, when),
                               tracked=self._tracked, rand=rand)
        self.roster = Roster(self.scheduler, self.jobs, forget=self.heartbeat.forget)
        self.replanner = Replanner(self.roster, lambda: self.config, self.causes, self.stop_event)

    # -- services (a new one per config reload) --------------------------------------------

    @property
    def config(self) -> Config:
        """The running config (replaced by a reload)."""
        return self.generations.config

    @property
    def service(self) -> Service:
        """The current service generation."""
        return self.generations.current

    def _new_service(self, config: Config) -> Service:
        retry = RetryPolicy(attempts=config.google.retries + 1,
                            max_seconds=min(config.google.max_retry_seconds, INLINE_RETRY_MAX))
        return Service(config, retry=retry, before_request=self._before_request)

    def _before_request(self, account: str, method: str) -> None:
        self.metrics.requests.labels(method).inc()
        self.budget.before_request(account, method)

    def owners(self) -> list[str]:
        """Lease owner ids of this process (one per open service generation)."""
        return self.generations.owners()

    # -- lifecycle ----------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask the main loop to shut down (safe from a signal handler: sets a flag only)."""
        self.flags.request_stop()

    def request_reload(self) -> None:
        """Ask the main loop to reload the config (safe from a signal handler)."""
        self.flags.request_reload()

    def start(self) -> None:
        """Resolve the calendars, schedule their first passes, start serving."""
        self.service.check_credentials()  # a malformed key file: exit 2 before scheduling
        # A restart tries parked accounts once (the credentials may be fixed).
        calendars.retry_parked_accounts(self.process_started)
        self.resolve(initial=True)
        self.scheduler.add_job(self._poll_requests, IntervalTrigger(seconds=REQUEST_POLL_SECONDS),
                               id="control:requests", executor="control")
        self.scheduler.add_job(self.resolve, IntervalTrigger(seconds=self.config.sync.interval),
                               id="control:resolve", executor="control")
        self.scheduler.add_job(self.beat, IntervalTrigger(seconds=HEARTBEAT_CHECK_SECONDS),
                               id="control:heartbeat", executor="control")
        # A control job, not a one-off per SIGHUP: a SIGHUP during a reload is applied after
        # it (a one-off added while the last one still ran was dropped by APScheduler).
        self.scheduler.add_job(self._reload_if_asked, IntervalTrigger(seconds=RELOAD_POLL_SECONDS),
                               id="control:reload", executor="control")
        self.replanner.start()
        self.scheduler.add_job(self.replanner, IntervalTrigger(seconds=replan_period(self.config)),
                               id="control:replan", executor="control")
        self.edges.start_http(self.config, self.metrics, self.health, self.causes.database_lost)
        if self.edges.start_watch(self.service, self.config, self.scheduler):
            self.generations.pin(self.service)  # the runtime keeps its service until shutdown
        self.scheduler.start()
        pending = "" if self.resolution.resolved else " so far (calendar set not resolved; retrying)"
        log.info("run: %d calendar(s) scheduled%s, %d worker(s), owner %s", len(self.roster),
                 pending, self.config.sync.concurrency, self.service.owner)

    def run(self, *, install_signals: bool = True) -> bool:
        """Serve until stopped; True when everything shut down cleanly.

        False means a worker was stuck (e.g. in a stalled request) past the
        shutdown deadline: leases were released, and the caller should exit
        without waiting for that thread.
        """
        if install_signals:
            self.flags.install()
        try:
            self.start()
            while not self.flags.stop:
                time.sleep(0.1)
                self._last_tick = time.monotonic()
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
        self.generations.stop_passes()
        with contextlib.suppress(SchedulerNotRunningError):
            self.scheduler.shutdown(wait=False)
        with self._active_cond:
            self._active_cond.wait_for(lambda: self._active == 0, timeout=JOB_STOP_WAIT)
            clean = self._active == 0
        self.edges.stop_watch()
        self.generations.close_all(clean)
        self.edges.stop_http()
        log.info("run: stopped in %.1fs%s", time.monotonic() - started,
                 "" if clean else " (a pass was stuck in a request; leases released anyway)")
        return clean

    def health(self) -> tuple[bool, dict[str, Any]]:
        """For ``/healthz``: ready (calendar set resolved, a first pass succeeded), the main
        loop ticks, not stopping (the metrics server's probe, with its deadline, is what
        asks the database)."""
        return readiness(calendars=len(self.roster), unresolved=self.resolution.unresolved,
                         resolved=self.resolution.resolved, passed=self.jobs.succeeded.is_set(),
                         tick_age=time.monotonic() - self._last_tick,
                         stopping=self.stop_event.is_set())

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

    def resolve(self, initial: bool = False) -> None:
        """Resolve the calendar set and bring the jobs in step (a control job; ``initial``:
        a failure to reach the database raises)."""
        if self.stop_event.is_set():
            return
        with self._tracked(), self.generations.borrow() as svc:
            try:
                rows, failures = svc.resolve_calendars()
            except ReconcilerError as exc:
                if initial:
                    raise
                if isinstance(exc, DatabaseUnavailable):
                    self.causes.database_lost(exc)
                else:
                    log.warning("could not refresh the calendar set: %s", exc)
                return
        self.causes.database_ok()
        self.roster.apply(calendarset.diff(self.roster.known(),
                                           calendarset.entries(rows, self.config)),
                          self.config.sync.jitter)
        messages = self.causes.refresh_failed(failures, resolved=self.resolution.resolved)
        retry = self.resolution.note(messages, self.config.sync.interval, len(self.roster))
        if retry is not None:
            when = utcnow() + dt.timedelta(seconds=retry)
            self.scheduler.add_job(self.resolve, "date", run_date=when.replace(tzinfo=UTC),
                                   id="control:resolve-retry", executor="control",
                                   replace_existing=True, misfire_grace_time=None)
        if self.config.sync.purge_removed:
            self._purge_removed()

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
        return self.roster.scheduled()

    def next_run_times(self) -> dict[str, dt.datetime]:
        """Job id -> next run time (UTC, aware), for tests and diagnostics."""
        return self.roster.next_run_times()

    # -- control jobs ------------------------------------------------------------------------

    def _poll_requests(self) -> None:
        if self.stop_event.is_set():
            return
        try:
            pending = calendars.pending_requests()
        except ReconcilerError as exc:
            log.debug("request poll failed: %s", exc)
            return
        self.roster.answer_requests(pending)

    def _reload_if_asked(self) -> None:
        if self.flags.reload and not self.stop_event.is_set():
            self.flags.reload = False
            self._reload()

    def _reload(self) -> None:
        new = reload_config(self.config, self.config_path)
        if new is None:
            return
        self.budget = QuotaBudget(new.quota, self.stop_event,
                                  on_wait=self.metrics.quota_waits.inc)
        self.generations.replace(new)
        with contextlib.suppress(JobLookupError):
            self.scheduler.modify_job("control:resolve",
                                      trigger=IntervalTrigger(seconds=new.sync.interval))
            self.scheduler.modify_job("control:replan",
                                      trigger=IntervalTrigger(seconds=replan_period(new)))
        try:
            self.replanner.start()  # now fixed: the configured intervals rule again
        except ReconcilerError as exc:
            log.warning("adaptive schedule: could not clear the plan: %s", exc)
        log.info("config reloaded from %s", self.config_path or "the default location")
        self.resolve()
