"""The calendars this process schedules: one APScheduler job each, and "sync soon".

Applies a :class:`~reconciler.daemon.calendarset.SetDiff` to the scheduler
(first passes at once, spread over at most 10% of the interval), moves a
job's next run (never sooner than ``MIN_RESCHEDULE`` from now), and polls
the database for "sync soon" requests: a requested calendar's job is brought
forward unless it is running (the pass checks the counter itself), held by
a backoff or a parked account, or was triggered for the same request less
than ``RETRIGGER_SECONDS`` ago.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.clock import utcnow
from reconciler.daemon.calendarset import Entry, SetDiff
from reconciler.daemon.job import CalendarJob, JobContext
from reconciler.daemon.planning import first_run_offset

log = logging.getLogger("reconciler.daemon")

UTC = dt.UTC
RETRIGGER_SECONDS = 3.0  # a request still pending after a trigger is triggered again
MIN_RESCHEDULE = dt.timedelta(seconds=0.2)
# A calendar job's trigger period. Every job run sets its own next run from its decision
# (CalendarJob.run), so the trigger only fires a job whose run failed to (a bug). Why not the
# calendar's interval: APScheduler computes a trigger's next fire when it submits the job,
# and a pass that waits for the quota (or a busy thread pool) can outlast a short interval:
# the fire would land inside the run and log "maximum number of running instances".
WATCHDOG = dt.timedelta(hours=1)


def misfire_grace(interval: float) -> int:
    """How late a job may still run: an interval, at least 30 s."""
    return int(max(30, interval))


class Roster:
    """Calendar pk -> its :class:`CalendarJob`, kept in step with the scheduler's jobs."""

    def __init__(self, scheduler: BaseScheduler, ctx: JobContext,
                 forget: Callable[[str], None]) -> None:
        self.scheduler = scheduler
        self.ctx = ctx
        self._forget = forget  # the heartbeat stops counting a removed calendar
        self._lock = threading.RLock()
        self._jobs: dict[int, CalendarJob] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def known(self) -> dict[int, Entry]:
        """What is scheduled now, as calendar-set entries."""
        with self._lock:
            return {pk: Entry(pk, job.calendar_id, job.account, job.interval)
                    for pk, job in self._jobs.items()}

    def jobs(self) -> list[CalendarJob]:
        """Every scheduled calendar's job."""
        with self._lock:
            return list(self._jobs.values())

    def scheduled(self) -> dict[int, str]:
        """Calendar pk -> calendar id of every calendar this process schedules."""
        with self._lock:
            return {pk: job.calendar_id for pk, job in self._jobs.items()}

    def next_run_times(self) -> dict[str, dt.datetime]:
        """Job id -> next run time (UTC, aware), for tests and diagnostics."""
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs()
                if job.id.startswith("calendar:") and job.next_run_time is not None}

    def next_run_time(self, job: CalendarJob) -> dt.datetime | None:
        """When ``job`` runs next (naive UTC, as the rows), None when it is not scheduled."""
        scheduled = self.scheduler.get_job(job.job_id)
        if scheduled is None or scheduled.next_run_time is None:
            return None
        return scheduled.next_run_time.astimezone(UTC).replace(tzinfo=None)

    def apply(self, change: SetDiff, jitter: float) -> None:
        """Add, remove and modify jobs as ``change`` says."""
        now = utcnow()
        with self._lock:
            for entry in change.removed:
                job = self._jobs.pop(entry.pk)
                job.retired = True
                with contextlib.suppress(JobLookupError):
                    self.scheduler.remove_job(job.job_id)
                self._forget(job.calendar_id)
                if entry.pk in change.gone:
                    log.info("calendar %s: removed from the schedule", job.calendar_id)
            for entry in change.added:
                job = CalendarJob(self.ctx, entry.pk, entry.calendar_id, entry.account,
                                  entry.interval)
                self._jobs[entry.pk] = job
                first = now + dt.timedelta(
                    seconds=first_run_offset(entry.interval, jitter, self.ctx.rand))
                self.scheduler.add_job(
                    job.run, IntervalTrigger(seconds=WATCHDOG.total_seconds(), timezone=UTC),
                    id=job.job_id, name=f"sync {entry.calendar_id}", max_instances=1,
                    coalesce=True, misfire_grace_time=misfire_grace(entry.interval),
                    next_run_time=first.replace(tzinfo=UTC), replace_existing=True)
            for entry in change.modified:  # the job's next look reads the new interval
                job = self._jobs[entry.pk]
                job.interval = entry.interval
                with contextlib.suppress(JobLookupError):
                    self.scheduler.modify_job(job.job_id,
                                              misfire_grace_time=misfire_grace(entry.interval))

    def reschedule(self, job: CalendarJob, when: dt.datetime) -> None:
        """Move ``job``'s next run to ``when`` (at the earliest a moment from now)."""
        when = max(when, utcnow() + MIN_RESCHEDULE)
        with contextlib.suppress(JobLookupError, SchedulerNotRunningError):
            self.scheduler.modify_job(job.job_id, next_run_time=when.replace(tzinfo=UTC))

    def answer_requests(self, pending: list[tuple[int, int]]) -> None:
        """Bring forward the jobs of calendars with a pending "sync soon" request."""
        now, mono = utcnow(), time.monotonic()
        for pk, seq in pending:
            with self._lock:
                job = self._jobs.get(pk)
                if job is None or job.running:
                    continue  # a running pass checks the counter itself when it ends
                if job.hold_until is not None and job.hold_until > now:
                    continue  # backoff or parked account: the request waits for it
                if (job.last_trigger is not None and job.last_trigger[0] == seq
                        and mono - job.last_trigger[1] < RETRIGGER_SECONDS):
                    continue
                job.last_trigger = (seq, mono)
            self.reschedule(job, now)
