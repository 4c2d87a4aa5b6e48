"""``reconciler once``: one pass over every calendar, for cron jobs and CI.

A 410 inside the pass is recovered inside the same pass; each failing
calendar is named on stderr and makes the exit status 1 without stopping the
others. ``--verify`` follows the pass with a full listing of each calendar and
fails when that listing had to repair the mirror.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from reconciler.config import Config
from reconciler.service import PassReport, Service
from reconciler.suggest import require_known


def report_failures(report: PassReport) -> None:
    """One line per failure on stderr, naming the calendar or account."""
    for failure in report.failures:
        print(f"reconciler: {failure.subject}: {failure.message}", file=sys.stderr)


def run_once(config: Config, *, only: Sequence[str] = (), full: bool = False,
             concurrency: int | None = None, verify: bool = False) -> int:
    """Run one pass; return the exit status (0 all synced, 1 any failed)."""
    service = Service(config)
    try:
        service.check_credentials()
        rows, failures = service.resolve_calendars()
        if only:
            known = {row.calendar_id: row for row in rows}
            require_known(only, known)
            rows = [known[cid] for cid in dict.fromkeys(only)]
        report = service.run_pass(rows, force_full=full, concurrency=concurrency)
        report.failures[:0] = [f for f in failures]
        drifted = 0
        if verify:
            synced = {r.calendar_id for r in report.results}
            audit = service.run_pass([r for r in rows if r.calendar_id in synced],
                                     force_full=True, concurrency=concurrency)
            report.failures.extend(audit.failures)
            for result in audit.results:
                repaired = result.created + result.updated + result.deleted
                if repaired:
                    drifted += 1
                    print(f"reconciler: {result.calendar_id}: verify: mirror differed from "
                          f"Google ({result.created} missing, {result.updated} outdated, "
                          f"{result.deleted} stale rows); repaired", file=sys.stderr)
        report_failures(report)
        return 0 if report.ok and not drifted else 1
    finally:
        service.close()
