"""One log line per cause under ``run``, not one per calendar per interval.

Why: during a 25 s database outage every calendar used to log its own ERROR
``scheduler error: database connection lost`` every interval (a 10,000
calendar fleet would write thousands of lines a second), and a service
account whose delegation is refused logged one line per calendar. Here:

- **The database:** one WARNING when it goes (what failed), at most one
  reminder per ``remind_every`` seconds while it stays down (how long, how
  many calendars wait), one INFO when it answers again.
- **The Google API, unreachable** (connection refused or reset, time-outs,
  DNS: a network or proxy problem, not one calendar's): the same, one
  WARNING, a reminder a minute, one INFO when a pass gets through; each
  calendar's backoff goes on as before, its own lines at DEBUG.
- **The calendar-set refresh** of a discovering account meets the same outage
  (``calendarList``): it joins the API's line instead of adding its own.
- **A refused account:** one line for the account (the first calendar that
  meets the refusal says it, with when it is tried again); the account's
  other calendars log at DEBUG; one INFO when its credentials work again.

Time comes from the injected monotonic ``clock``, so the rules are tested
without sleeping. Thread-safe: the calendars' jobs report from worker threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from reconciler.errors import GoogleUnreachable, first_line
from reconciler.report import Failure

REMIND_SECONDS = 60.0  # at most one "still unreachable" line a minute


class _Outage:
    """One unreachable dependency: when it went, when it was last recalled, who waits.

    Not thread-safe on its own: :class:`Causes` calls it under its lock and
    logs the line it returns outside the lock.
    """

    def __init__(self, name: str, waits: str) -> None:
        self.name = name  # "database", "Google Calendar API"
        self.waits = waits  # what the passes do meanwhile, for the first line
        self.since: float | None = None
        self.reminded = 0.0
        self.waiting: set[str] = set()

    def lost(self, exc: object, calendar_id: str | None, now: float,
             remind_every: float) -> str | None:
        """The line to log for this report, or None (already said, no reminder due)."""
        if calendar_id is not None:
            self.waiting.add(calendar_id)
        if self.since is None:
            self.since = self.reminded = now
            return f"{self.name} unreachable: {first_line(exc)}; {self.waits}"
        if now - self.reminded >= remind_every:
            self.reminded = now
            return (f"{self.name} still unreachable after {now - self.since:.0f}s "
                    f"({first_line(exc)}); {len(self.waiting)} calendar(s) wait")
        return None

    def ok(self, now: float) -> str | None:
        """The line to log when it answers again, or None when it was not down."""
        if self.since is None:
            return None
        line = (f"{self.name} reachable again after {now - self.since:.0f}s; "
                f"{len(self.waiting)} calendar(s) resume")
        self.since = None
        self.waiting.clear()
        return line


class Causes:
    """Turns many reports of one cause into one line when it starts, reminders, one when it ends."""

    def __init__(self, logger: logging.Logger, clock: Callable[[], float] = time.monotonic,
                 remind_every: float = REMIND_SECONDS) -> None:
        self._log = logger
        self._clock = clock
        self._remind_every = remind_every
        self._lock = threading.Lock()
        self._database = _Outage("database", "passes wait until it answers (retrying at each "
                                             "calendar's interval)")
        self._api = _Outage("Google Calendar API", "passes retry with backoff")
        self._refused: set[str] = set()

    @property
    def database_down(self) -> bool:
        """True between the first report of a lost database and the next success."""
        with self._lock:
            return self._database.since is not None

    def database_lost(self, exc: BaseException, calendar_id: str | None = None) -> None:
        """A job (or control job) could not reach the database; ``calendar_id`` waits for it."""
        self._lost(self._database, exc, calendar_id)

    def database_ok(self) -> None:
        """The database answered; logs once when it was down."""
        self._ok(self._database)

    def api_unreachable(self, exc: object, calendar_id: str | None = None) -> None:
        """A pass (or the calendar-set refresh: no ``calendar_id``) could not reach Google at
        all (refused, reset, timed out): one cause for every calendar, not a line each per
        attempt."""
        self._lost(self._api, exc, calendar_id)

    def api_ok(self) -> None:
        """A pass reached Google; logs once when it had been unreachable."""
        self._ok(self._api)

    def _lost(self, outage: _Outage, exc: object, calendar_id: str | None) -> None:
        with self._lock:
            line = outage.lost(exc, calendar_id, self._clock(), self._remind_every)
        if line is not None:
            self._log.warning(line)

    def _ok(self, outage: _Outage) -> None:
        with self._lock:
            line = outage.ok(self._clock())
        if line is not None:
            self._log.info(line)

    def refresh_failed(self, failures: Iterable[Failure], *, resolved: bool) -> list[str]:
        """The calendar-set refresh's failure lines that are left for the resolution to say.

        A refused account is said by the resolution (its calendars' jobs then say
        no more). Google unreachable, once the set has been resolved, is the
        fleet's one outage line (the passes report it too), not a second line
        per account at every refresh; before that the resolution says it.
        """
        left = []
        for failure in failures:
            if failure.kind == "AuthFailed" and failure.account:
                self.account_refused(failure.account)
            if resolved and failure.kind == GoogleUnreachable.__name__:
                self.api_unreachable(failure.message)
                continue
            left.append(f"{failure.subject}: {failure.message}")
        return sorted(set(left))

    def account_refused(self, account: str) -> bool:
        """A pass of ``account`` met refused credentials; True for the first since it worked
        (the caller logs that one line; the account's other calendars log at DEBUG)."""
        with self._lock:
            first = account not in self._refused
            self._refused.add(account)
        return first

    def account_ok(self, account: str) -> None:
        """A pass of ``account`` succeeded; logs once when it had been refused."""
        with self._lock:
            if account not in self._refused:
                return
            self._refused.discard(account)
        self._log.info("account %s: credentials accepted again", account)
