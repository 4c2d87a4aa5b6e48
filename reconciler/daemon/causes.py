"""One log line per cause under ``run``, not one per calendar per interval.

Why: during a 25 s database outage every calendar used to log its own ERROR
``scheduler error: database connection lost`` every interval (a 10,000
calendar fleet would write thousands of lines a second), and a service
account whose delegation is refused logged one line per calendar. Here:

- **The database:** one WARNING when it goes (what failed), at most one
  reminder per ``remind_every`` seconds while it stays down (how long, how
  many calendars wait), one INFO when it answers again.
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
from collections.abc import Callable

from reconciler.errors import first_line

REMIND_SECONDS = 60.0  # at most one "still unreachable" line a minute


class Causes:
    """Turns many reports of one cause into one line when it starts, reminders, one when it ends."""

    def __init__(self, logger: logging.Logger, clock: Callable[[], float] = time.monotonic,
                 remind_every: float = REMIND_SECONDS) -> None:
        self._log = logger
        self._clock = clock
        self._remind_every = remind_every
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._reminded = 0.0
        self._waiting: set[str] = set()
        self._refused: set[str] = set()

    @property
    def database_down(self) -> bool:
        """True between the first report of a lost database and the next success."""
        with self._lock:
            return self._down_since is not None

    def database_lost(self, exc: BaseException, calendar_id: str | None = None) -> None:
        """A job (or control job) could not reach the database; ``calendar_id`` waits for it."""
        with self._lock:
            now = self._clock()
            if calendar_id is not None:
                self._waiting.add(calendar_id)
            if self._down_since is None:
                self._down_since = self._reminded = now
                level, message = logging.WARNING, (
                    f"database unreachable: {first_line(exc)}; passes wait until it answers "
                    "(retrying at each calendar's interval)")
            elif now - self._reminded >= self._remind_every:
                self._reminded = now
                level, message = logging.WARNING, (
                    f"database still unreachable after {now - self._down_since:.0f}s "
                    f"({first_line(exc)}); {len(self._waiting)} calendar(s) wait")
            else:
                return
        self._log.log(level, message)

    def database_ok(self) -> None:
        """The database answered; logs once when it was down."""
        with self._lock:
            if self._down_since is None:
                return
            down = self._clock() - self._down_since
            waiting = len(self._waiting)
            self._down_since = None
            self._waiting.clear()
        self._log.info("database reachable again after %.0fs; %d calendar(s) resume",
                       down, waiting)

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
