"""``reconciler once``: one pass over every calendar, for cron jobs and CI.

A 410 inside the pass is recovered inside the same pass; each failing
calendar is named on stderr and makes the exit status 1 without stopping the
others. ``--verify`` follows the pass with a full listing of each calendar and
fails when that listing had to repair the mirror. Every request goes through
the ``[quota]`` budget, as in ``run``: a pass bigger than a minute's quota
waits for it instead of drawing 403s from Google.

While it runs, ``reconciler.progress`` shows what is happening (a live display
on a terminal, an INFO line per calendar at least every 10 s otherwise); it
ends with one summary line.

Invariants: every line this module writes follows the log format: in ``text``
failure and verify lines are ``reconciler: SUBJECT: MESSAGE`` (scripts grep
them), in ``json`` they are JSON log lines with the fields ``event``,
``calendar``, ``account``, ``error_kind`` (and ``error``); the summary is the
last line, after the progress display has stopped (in ``text`` a bare line
without the ``reconciler:`` prefix, which marks failures only).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence

from reconciler.config import Config
from reconciler.daemon.quota import QuotaBudget
from reconciler.logsetup import log_fields
from reconciler.outcome import SyncRequest
from reconciler.progress import PassSummary, log_summary, make_progress
from reconciler.service import Failure, PassReport, Service
from reconciler.suggest import require_known

log = logging.getLogger("reconciler.once")


def _account_of(failure: Failure) -> tuple[str | None, str | None]:
    """(calendar, account) of a failure whose subject is a calendar or ``account NAME``."""
    calendar = None if failure.subject.startswith("account ") else failure.subject
    return calendar, failure.account


def report_failures(report: PassReport, log_format: str = "text") -> None:
    """One line per failure on stderr, naming the calendar or account."""
    for failure in report.failures:
        if log_format == "json":
            calendar, account = _account_of(failure)
            log_fields(log, logging.ERROR, "sync failed",
                       {"calendar": calendar, "account": account, "error_kind": failure.kind,
                        "error": failure.message})
        else:
            print(f"reconciler: {failure.subject}: {failure.message}", file=sys.stderr)


def _report_drift(calendar_id: str, account: str, missing: int, outdated: int, stale: int,
                  log_format: str) -> None:
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


def run_once(config: Config, *, only: Sequence[str] = (), full: bool = False,
             concurrency: int | None = None, verify: bool = False, log_format: str = "text",
             summary: bool = False, budget: QuotaBudget | None = None) -> int:
    """Run one pass; return the exit status (0 all synced, 1 any failed).

    ``summary`` ends the output with the summary line (the CLI asks for it).
    ``budget`` replaces the one built from ``config.quota`` (tests inject a clock).
    """
    if budget is None:
        budget = QuotaBudget(config.quota, threading.Event())
    service = Service(config, before_request=budget.before_request)
    try:
        service.check_credentials()
        rows, failures = service.resolve_calendars()
        if only:
            known = {row.calendar_id: row for row in rows}
            require_known(only, known)
            rows = [known[cid] for cid in dict.fromkeys(only)]
        request = SyncRequest(full=full, audit=verify, lease_wait=config.sync.lease_time)
        with make_progress(len(rows)) as progress:
            service.on_page_committed = progress.page_committed
            report = service.run_pass(rows, request, concurrency=concurrency, observer=progress)
        service.on_page_committed = None
        report.failures[:0] = failures
        drifted = 0
        if verify:
            audited = {audit.calendar_id for audit in report.audits}
            for result in report.results:
                if result.calendar_id not in audited:
                    report.failures.append(Failure(result.calendar_id, "verify: skipped (another "
                                                   "process holds the calendar)", "LeaseHeld",
                                                   result.account))
            for audit in report.audits:
                if audit.repaired:
                    drifted += 1
                    _report_drift(audit.calendar_id, audit.account, audit.created,
                                  audit.updated, audit.deleted, log_format)
        report_failures(report, log_format)
        if summary:
            report_summary(progress.summary(), log_format)
        return 0 if report.ok and not drifted else 1
    finally:
        budget.stop()  # a request still waiting for the budget gives up
        service.close()
