"""The adaptive schedule's control job in ``run``: the fleet's estimates -> planned intervals.

Why a control job and rows: the budget is the fleet's (``min(N x 60 /
interval, [quota] requests_per_minute)`` a minute for N calendars), and
several ``run`` processes may share one database. Each process replans from
every calendar's stored estimate and writes the planned intervals into the
rows, so whichever process polls a calendar polls it on the same plan and the
processes spend one budget together, not one each. With ``[watch] enabled``,
calendars with a live channel (open, not expired) are planned at
``max_interval``, their expected hinted passes set aside from the budget
(:func:`reconciler.schedule.plan.replan`).

A calendar whose interval changed has its next poll moved to the new due
time at once (in the scheduler and in its row, which is what a firing job
checks): a calendar that became busier does not wait out its old interval,
and one found idle (a first listing showed no recent change) does not spend
a poll at the configured interval before its plan applies.
Under ``schedule = "fixed"`` the job does not run, and a plan an adaptive run
left behind is cleared at start, so status and metrics judge lag against the
configured intervals.

Log lines (one cause, one line): a lost database goes to the daemon's
:class:`~reconciler.daemon.causes.Causes`; any other failure to replan or to
move due times is one WARNING when it starts (and when its message changes),
not one per replan, and one INFO when replanning works again; meanwhile the
calendars keep the intervals last planned.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from reconciler.clock import utcnow
from reconciler.config import Config
from reconciler.daemon.causes import Causes
from reconciler.daemon.planning import next_after_pass
from reconciler.daemon.roster import Roster
from reconciler.errors import DatabaseUnavailable, ReconcilerError, first_line
from reconciler.intervals import adaptive, grid_of
from reconciler.schedule import plan as adaptive_plan
from reconciler.store import channels
from reconciler.store import schedule as schedule_rows

log = logging.getLogger("reconciler.daemon")


def replan_period(config: Config) -> float:
    """Seconds between two replans: a quarter of the interval (at least one second)."""
    return max(1.0, config.sync.interval / 4)


class Replanner:
    """Replans the fleet from the database and brings busier calendars' polls forward."""

    def __init__(self, roster: Roster, config: Callable[[], Config], causes: Causes,
                 stop_event: threading.Event) -> None:
        self.roster = roster
        self._config = config
        self.causes = causes
        self.stop_event = stop_event
        self._trouble: str | None = None  # the failure logged last; None: replanning works

    def start(self) -> None:
        """At start under ``fixed``: forget any plan an adaptive run left in the rows."""
        if not adaptive(self._config()):
            schedule_rows.clear_planned_intervals()

    def __call__(self) -> None:
        """One replanning step (a control job; a failure is logged and retried next time)."""
        config = self._config()
        if self.stop_event.is_set() or not adaptive(config):
            return
        step = "replan"
        try:
            rows = schedule_rows.fleet_estimates()
            watched = channels.live_calendars(utcnow()) if config.watch.enabled else set()
            plan = adaptive_plan.replan(((r.pk, r.rate, r.weight) for r in rows),
                                        interval=config.sync.interval,
                                        requests_per_minute=config.quota.requests_per_minute,
                                        bounds=config.sync.interval_bounds, watched=watched)
            schedule_rows.write_planned_intervals(schedule_rows.moved(rows, plan))
            step = "move due times"
            self._move(plan, config)
        except DatabaseUnavailable as exc:
            self.causes.database_lost(exc)
            return
        except ReconcilerError as exc:
            self._failed(f"could not {step}: {first_line(exc)}")
            return
        self._recovered()

    def _failed(self, trouble: str) -> None:
        """Log a failure once, not at every replan while it lasts."""
        if trouble != self._trouble:
            log.warning("adaptive schedule: %s; calendars keep their last planned intervals",
                        trouble)
        self._trouble = trouble

    def _recovered(self) -> None:
        if self._trouble is not None:
            log.info("adaptive schedule: replanning works again")
            self._trouble = None

    def _move(self, plan: dict[int, float | None], config: Config) -> None:
        """Move the next poll of every calendar whose interval changed to its new due time
        (in the scheduler, then in the rows; a store error is the caller's to log)."""
        now = utcnow()
        moved: dict[int, dt.datetime] = {}
        for job in self.roster.jobs():
            if job.pk not in plan or job.running or job.last_pass_started is None:
                continue
            if job.hold_until is not None and job.hold_until > now:
                continue  # a backoff or a parked account keeps its wait
            interval = plan[job.pk] or float(job.interval)
            if interval == job.last_interval:
                continue
            job.last_interval = interval
            due = next_after_pass(job.last_pass_started, interval, now,
                                  grid_of(job.calendar_id, config))
            scheduled = self.roster.next_run_time(job)
            if scheduled is not None and abs((due - scheduled).total_seconds()) > 0.5:
                moved[job.pk] = due
                self.roster.reschedule(job, due)
        if moved:
            # The row's due time is what a job checks when it fires (and what another
            # process's job of the calendar sees): it moves with the job.
            schedule_rows.write_next_due(moved)


__all__ = ["Replanner", "replan_period"]
