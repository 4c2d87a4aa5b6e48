"""``reconciler once``: one pass over every calendar, for cron jobs and CI.

A 410 inside the pass is recovered inside the same pass; each failing
calendar is named on stderr and makes the exit status 1 without stopping the
others. ``--verify`` follows the pass with a full listing of each calendar and
fails when that listing had to repair the mirror. Every request goes through
the ``[quota]`` budget, as in ``run``: a pass bigger than a minute's quota
waits for it instead of drawing 403s from Google.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence

from reconciler.config import Config
from reconciler.daemon.quota import QuotaBudget
from reconciler.outcome import SyncRequest
from reconciler.service import Failure, PassReport, Service
from reconciler.suggest import require_known


def report_failures(report: PassReport) -> None:
    """One line per failure on stderr, naming the calendar or account."""
    for failure in report.failures:
        print(f"reconciler: {failure.subject}: {failure.message}", file=sys.stderr)


def run_once(config: Config, *, only: Sequence[str] = (), full: bool = False,
             concurrency: int | None = None, verify: bool = False,
             budget: QuotaBudget | None = None) -> int:
    """Run one pass; return the exit status (0 all synced, 1 any failed).

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
        report = service.run_pass(rows, request, concurrency=concurrency)
        report.failures[:0] = failures
        drifted = 0
        if verify:
            audited = {audit.calendar_id for audit in report.audits}
            for result in report.results:
                if result.calendar_id not in audited:
                    report.failures.append(Failure(result.calendar_id, "verify: skipped (another "
                                                   "process holds the calendar)", "LeaseHeld"))
            for audit in report.audits:
                if audit.repaired:
                    drifted += 1
                    print(f"reconciler: {audit.calendar_id}: verify: mirror differed from "
                          f"Google ({audit.created} missing, {audit.updated} outdated, "
                          f"{audit.deleted} stale rows); repaired", file=sys.stderr)
        report_failures(report)
        return 0 if report.ok and not drifted else 1
    finally:
        budget.stop()  # a request still waiting for the budget gives up
        service.close()
