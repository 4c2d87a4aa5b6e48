"""The reconciler's moving parts for one process, behind one thin face.

``reconciler once`` and ``reconciler run`` (and the watch runtime) hold a
:class:`Service`; it owns nothing itself but wires the small owners together
and gives them one lease owner and one stop flag:

- :mod:`reconciler.handles`: each account's credentials (one token refresh at
  a time), per-thread API handles and engines, park and probe, health;
- :mod:`reconciler.calendarset`: which calendars to mirror, and by which account;
- :mod:`reconciler.attempt`: one calendar's attempt (claim, re-read, sync,
  record, release, audit), the same for ``once`` and ``run``;
- :mod:`reconciler.passes`: a pass over many calendars for ``once``;
- :mod:`reconciler.report`: the pass report and the one conversion of a
  failure into the line the user sees.

Invariants: every failure of one calendar is recorded on its row and becomes
one :class:`~reconciler.report.Failure` line, so one sick calendar never stops
the others; callers catch ``ReconcilerError`` only (the store maps database
errors into it); ``close`` gives back every lease this process holds.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable

from reconciler.attempt import Attempts
from reconciler.calendarset import resolve_calendars
from reconciler.config import Config
from reconciler.engine import CalendarSync
from reconciler.errors import ReconcilerError
from reconciler.google.client import ApiPool
from reconciler.google.retry import RetryPolicy
from reconciler.handles import AccountHandles
from reconciler.outcome import Attempt, CalendarState, PageCallback, PassOutcome, SyncRequest
from reconciler.passes import PassObserver, PassRunner
from reconciler.report import Failure, PassReport
from reconciler.store import calendars, leases
from reconciler.store.records import CalendarRow as Calendar

log = logging.getLogger("reconciler.service")


def _state(calendar: CalendarState | Calendar) -> CalendarState:
    return calendar if isinstance(calendar, CalendarState) else calendars.state_of(calendar)


class Service:
    """One process's accounts, calendar set, attempts and passes, under one lease owner."""

    def __init__(self, config: Config, *, owner: str | None = None,
                 retry: RetryPolicy | None = None,
                 before_request: Callable[[str, str], None] | None = None) -> None:
        self.config = config
        self.owner = owner or leases.make_owner()
        retry = retry or RetryPolicy(attempts=config.google.retries + 1,
                                     max_seconds=config.google.max_retry_seconds)
        self.stopping = threading.Event()
        self.handles = AccountHandles(config, retry, before_request)
        self.attempts = Attempts(self.handles, self.owner, self.stopping)
        self.passes = PassRunner(self.attempts)

    @property
    def pool(self) -> ApiPool:
        """Per-thread API handles by account (the watch runtime opens channels with them)."""
        return self.handles.pool

    def engine_for(self, account: str) -> CalendarSync:
        """This thread's engine for an account."""
        return self.handles.engine(account)

    def check_credentials(self) -> None:
        """Load every account's credentials now: a bad file is a config error before any sync."""
        self.handles.check()

    def resolve_calendars(self) -> tuple[list[Calendar], list[Failure]]:
        """The calendars to mirror now, each assigned to one account; removed ones marked."""
        return resolve_calendars(self.handles)

    def park_account(self, account: str, error: str,
                     next_retry: dt.datetime | None = None) -> None:
        """Mark an account ``needs_reauth`` (its credentials were rejected)."""
        self.handles.park(account, error, next_retry)

    def recheck_account(self, account: str) -> None:
        """Try the account's credentials again at its next request (a probe)."""
        self.handles.recheck(account)

    def attempt(self, calendar: CalendarState | Calendar, request: SyncRequest | None = None,
                on_page: PageCallback | None = None) -> Attempt:
        """Claim, re-read, sync, record and release one calendar; audit it if asked
        (see :meth:`reconciler.attempt.Attempts.attempt`)."""
        return self.attempts.attempt(_state(calendar), request or SyncRequest(), on_page)

    def sync_calendar(self, calendar: CalendarState | Calendar, *, full: bool = False,
                      lease_wait: float = 0.0) -> PassOutcome:
        """One pass over one calendar (see :meth:`attempt`); its outcome."""
        outcome = self.attempt(calendar, SyncRequest(full=full, lease_wait=lease_wait)).outcome
        assert outcome is not None  # no ``seen``: never skipped
        return outcome

    def run_pass(self, rows: Iterable[CalendarState | Calendar],
                 request: SyncRequest | None = None, *, concurrency: int | None = None,
                 observer: PassObserver | None = None) -> PassReport:
        """Sync the given calendars once, ``concurrency`` at a time.

        ``request`` defaults to a normal pass that waits up to ``lease_time`` for
        a live holder. ``observer`` (a progress display) hears when each
        calendar starts, commits a page, finishes or fails.
        """
        if request is None:
            request = SyncRequest(lease_wait=self.config.sync.lease_time)
        return self.passes.run([_state(row) for row in rows], request,
                               concurrency or self.config.sync.concurrency, observer)

    def close(self) -> None:
        """Stop helper threads, close HTTP handles and give back every lease of this process."""
        self.passes.close()
        self.handles.close()
        try:
            leases.release_all(self.owner)
        except ReconcilerError as exc:  # the database may be the thing that failed: said already
            log.debug("could not release leases: %s", exc)


__all__ = ["Failure", "PassObserver", "PassReport", "Service"]
