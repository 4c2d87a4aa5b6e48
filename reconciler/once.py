"""``reconciler once``: one pass over every calendar, for cron jobs and CI.

A 410 inside the pass is recovered inside the same pass; each failing
calendar is named on stderr and makes the exit status 1 without stopping the
others. ``--verify`` follows the pass with a full listing of each calendar and
fails when that listing had to repair the mirror. Every request goes through
the ``[quota]`` budget, as in ``run``: a pass bigger than a minute's quota
waits for it instead of drawing 403s from Google.

While it runs, ``reconciler.progress`` shows what is happening (a live display
on a terminal, an INFO line per calendar at least every 10 s otherwise); it
ends with one summary line, folded from the pass report (passes and audits),
so it agrees with the per-pass log lines. SIGINT or SIGTERM stops it after the
pages in flight (:class:`Interrupts`: one line, exit 130 or 143); a second
SIGINT stops it at once. A calendar whose lease another process holds is
waited for (``lease_time`` at most), said once with who holds it and since when.

Invariants: every line this module writes follows the log format: in ``text``
failure and verify lines are ``reconciler: SUBJECT: MESSAGE`` (scripts grep
them), in ``json`` they are JSON log lines with the fields ``event``,
``calendar``, ``account``, ``error_kind`` (and ``error``); the summary is the
last line, after the progress display has stopped (in ``text`` a bare line
without the ``reconciler:`` prefix, which marks failures only); an account whose
credentials were refused is one line, not one per calendar.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from reconciler import discovery
from reconciler.clock import utcnow
from reconciler.config import Config
from reconciler.daemon.quota import QuotaBudget
from reconciler.logsetup import log_fields
from reconciler.outcome import PassOutcome, SyncRequest
from reconciler.progress import PassSummary, log_summary, make_progress
from reconciler.report import Failure, PassReport
from reconciler.service import Service
from reconciler.store import calendars
from reconciler.store.records import CalendarRow as Calendar
from reconciler.suggest import expand_primary, require_known

log = logging.getLogger("reconciler.once")


def _account_of(failure: Failure) -> tuple[str | None, str | None]:
    """(calendar, account) of a failure whose subject is a calendar or ``account NAME``."""
    calendar = None if failure.of_account else failure.subject
    return calendar, failure.account


def report_failures(report: PassReport, log_format: str = "text") -> None:
    """One line per failure on stderr, naming the calendar or account (one per refused account)."""
    for failure in report.folded():
        if log_format == "json":
            calendar, account = _account_of(failure)
            log_fields(log, logging.ERROR, "sync failed",
                       {"calendar": calendar, "account": account, "error_kind": failure.kind,
                        "error": failure.message})
        else:
            print(f"reconciler: {failure.subject}: {failure.message}", file=sys.stderr)


def _report_drift(audit: PassOutcome, log_format: str) -> None:
    """One line for an audit that had to repair the mirror (its counts: what was wrong)."""
    calendar_id, account = audit.calendar_id, audit.account
    missing, outdated, stale = audit.counts.created, audit.counts.updated, audit.counts.deleted
    if log_format == "json":
        log_fields(log, logging.WARNING, "verify: mirror differed from Google; repaired",
                   {"calendar": calendar_id, "account": account, "error_kind": "Drift",
                    "missing": missing, "outdated": outdated, "stale": stale})
    else:
        print(f"reconciler: {calendar_id}: verify: mirror differed from Google ({missing} "
              f"missing, {outdated} outdated, {stale} stale rows); repaired", file=sys.stderr)


def report_summary(summary: PassSummary, log_format: str = "text") -> None:
    """The last line of ``once``: calendars synced/failed, events, requests, seconds."""
    if log_format == "json":
        log_summary(summary, log)
    elif log.isEnabledFor(logging.INFO):
        print(summary.line, file=sys.stderr)


class Interrupts:
    """SIGINT and SIGTERM of ``once``: the first stops the pass after the pages in flight,
    a second SIGINT (or SIGTERM) stops the process at once.

    Each signal is one line, written when it arrives (so the user sees at once
    that it was heard): the first says the pass stops after the page in flight,
    and ``once`` then exits 128 + the signal's number with no summary; a second
    leaves at once. The handlers only set a flag, run the stop callbacks (which
    set events), write with ``os.write`` and, the second time, call
    ``os._exit``: nothing in them can deadlock on a lock the interrupted thread
    holds, and no traceback is printed. Committed pages are in the database
    either way; the leases of a process that left at once are taken over at
    once by the next process on this host (their owner is dead).
    """

    def __init__(self, log_format: str = "text") -> None:
        self.log_format = log_format
        self.received: int | None = None
        self._callbacks: list[Callable[[], object]] = []
        self._previous: dict[int, Any] = {}

    def on_first(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` when the first signal arrives (at once if it already has)."""
        self._callbacks.append(callback)
        if self.received is not None:
            callback()

    def handle(self, signum: int, _frame: object = None) -> None:
        """The signal handler."""
        name = signal.Signals(signum).name
        if self.received is None:
            self.received = signum
            for callback in self._callbacks:
                callback()
            again = "Ctrl-C" if signum == signal.SIGINT else name
            self._say(f"interrupted ({name}): stopping after the page in flight; committed pages "
                      f"are kept and leases released ({again} again to stop at once)")
            return
        self._say(f"interrupted again ({name}): stopped at once; committed pages are kept, the "
                  "page in flight is not")
        os._exit(128 + self.received)

    def _say(self, message: str) -> None:
        if self.log_format == "json":
            line = json.dumps({"time": utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                               "level": "WARNING", "logger": log.name, "event": message,
                               "error_kind": "Interrupted"})
        else:
            line = f"reconciler: {message}"
        os.write(2, (line + "\n").encode("utf-8", "replace"))

    def install(self) -> None:
        """Handle SIGINT and SIGTERM from now on (main thread only)."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self.handle)

    def restore(self) -> None:
        """Put back the handlers :meth:`install` replaced."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()


def select_calendars(service: Service, only: Sequence[str], rows: list[Calendar]) -> list[Calendar]:
    """The rows ``--calendar`` asks for, ``primary`` included; a usage error names the
    ids that are not mirrored ("not in the config") or look like typos."""
    config = service.config
    primaries = [str(account.primary_calendar_id) for account in
                 (calendars.get_account(a.name) for a in config.accounts
                  if any(entry.id == "primary" for entry in a.calendars))
                 if account is not None and account.primary_calendar_id]
    requested = expand_primary(only, primaries)
    known = {row.calendar_id: row for row in rows}
    missing = [cid for cid in requested if cid not in known]
    if missing:
        require_known(requested, known, elsewhere=_existing(service, missing),
                      config_file=config.path)
    return [known[cid] for cid in requested]


def _existing(service: Service, ids: list[str]) -> set[str]:
    """Which of ``ids`` are real calendars: stored, in an account's calendarList, or
    known to Google for one of the accounts (asked on this error path only)."""
    found = {row.calendar_id for row in calendars.all_calendars()} & set(ids)
    for account in service.config.accounts:
        found |= {item.calendar_id for item in discovery.visible_calendars(account.name)
                  if item.calendar_id in ids}
    for cid in ids:
        if cid not in found and "@" in cid and any(
                service.handles.sees_calendar(account.name, cid)
                for account in service.config.accounts):
            found.add(cid)
    return found


def run_once(config: Config, *, only: Sequence[str] = (), full: bool = False,
             concurrency: int | None = None, verify: bool = False, log_format: str = "text",
             summary: bool = False, budget: QuotaBudget | None = None,
             interrupts: Interrupts | None = None) -> int:
    """Run one pass; return the exit status (0 all synced, 1 any failed, 128+N stopped by signal N).

    ``summary`` ends the output with the summary line (the CLI asks for it).
    ``budget`` replaces the one built from ``config.quota`` (tests inject a clock).
    ``interrupts`` (the CLI's signal handlers) stops the pass after the pages in flight.
    """
    if budget is None:
        budget = QuotaBudget(config.quota, threading.Event())
    service = Service(config, before_request=budget.before_request)
    started = time.monotonic()
    if interrupts is not None:
        interrupts.on_first(service.stopping.set)
        interrupts.on_first(budget.stop)
    try:
        service.check_credentials()
        rows, failures = service.resolve_calendars()
        if only:
            rows = select_calendars(service, only, rows)
        request = SyncRequest(full=full, audit=verify, lease_wait=config.sync.lease_time)
        with make_progress(len(rows)) as progress:
            report = service.run_pass(rows, request, concurrency=concurrency, observer=progress)
        report.failures[:0] = failures
        stopped = interrupts.received if interrupts is not None else None
        if stopped is not None:
            report.stopped = True
        drifted = 0
        if verify and not report.stopped:
            audited = {audit.calendar_id for audit in report.audits}
            for result in report.results:
                if result.calendar_id not in audited:
                    report.failures.append(Failure(result.calendar_id, "verify: skipped (another "
                                                   "process holds the calendar)", "LeaseHeld",
                                                   result.account))
        for audit in report.audits:
            if audit.repaired:
                drifted += 1
                _report_drift(audit, log_format)
        report_failures(report, log_format)
        if stopped is not None:  # said when it arrived; no summary of a pass cut short
            return 128 + stopped
        if summary:
            report_summary(PassSummary.of(report, time.monotonic() - started), log_format)
        return 0 if report.ok and not drifted else 1
    finally:
        budget.stop()  # a request still waiting for the budget gives up
        service.close()
