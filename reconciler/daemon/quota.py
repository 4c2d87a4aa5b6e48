"""A client-side request budget: a sliding minute per Google project and per account.

Google enforces per-minute quotas per project and per user, counted over a
sliding window; going over them costs 403 ``rateLimitExceeded`` answers and
backoff. Every API request of every command that calls Google (``once`` and
``run``) passes through :meth:`QuotaBudget.before_request` and waits until it
fits both the account's window and the project's window.

Invariants: in any ``window`` seconds (60) at most ``per_minute`` requests of
one account, and of the whole process, are let through; a full budget never
slows a pass that stays within it (400 requests in 2 s pass at once when the
quota is 500 a minute). The wait is a reservation, so waiting callers are
served in order and the long-run rate is exact. It never outlasts a stop
request: on shutdown the waiting request raises ``SyncStopped`` instead.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable

from reconciler.config import QuotaConfig
from reconciler.errors import SyncStopped

WINDOW_SECONDS = 60.0  # Google counts its per-minute quotas over a sliding minute


class SlidingWindow:
    """At most ``per_minute`` requests in any ``window`` seconds.

    Not locked itself: :class:`QuotaBudget` reserves in two windows under one lock.
    """

    def __init__(self, per_minute: float, *, window: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = max(1, int(per_minute))
        self.window = window
        self._clock = clock
        self._sent: list[float] = []  # reserved send times, sorted

    def _forget(self, now: float) -> None:
        old = bisect.bisect_right(self._sent, now - self.window)
        if old:
            del self._sent[:old]

    def next_slot(self, now: float) -> float:
        """The earliest time at or after ``now`` a request fits this window.

        Any window holding that time then holds at most ``capacity - 1`` of the
        requests already reserved: those after ``sent[-capacity]``.
        """
        self._forget(now)
        if len(self._sent) < self.capacity:
            return now
        return max(now, self._sent[-self.capacity] + self.window)

    def book(self, at: float) -> None:
        """Record a request sent (or to be sent) at ``at``."""
        bisect.insort(self._sent, at)

    def reserve(self) -> float:
        """Take the next slot; return how many seconds to wait before using it (0: at once)."""
        now = self._clock()
        at = self.next_slot(now)
        self.book(at)
        return at - now

    @property
    def available(self) -> int:
        """Requests that may go now without waiting (negative: owed to waiting callers)."""
        self._forget(self._clock())
        return self.capacity - len(self._sent)


class QuotaBudget:
    """The project window plus one window per account; a blocking, stoppable gate."""

    def __init__(self, config: QuotaConfig, stop: threading.Event, *,
                 clock: Callable[[], float] = time.monotonic,
                 window: float = WINDOW_SECONDS,
                 on_wait: Callable[[float], None] | None = None) -> None:
        self.project = SlidingWindow(config.requests_per_minute, window=window, clock=clock)
        self._per_user = float(config.per_user_requests_per_minute)
        self._users: dict[str, SlidingWindow] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._window = window
        self._stop = stop
        self._on_wait = on_wait

    def user(self, account: str) -> SlidingWindow:
        """The window of one account (created on first use)."""
        with self._lock:
            window = self._users.get(account)
            if window is None:
                window = self._users[account] = SlidingWindow(self._per_user, window=self._window,
                                                              clock=self._clock)
            return window

    def wait_time(self, account: str) -> float:
        """Reserve a slot in both windows; the seconds to wait before the request.

        The request is booked in both windows at the same time, the later of
        the two windows' next free slots.
        """
        with self._lock:
            user = self._users.get(account)
            if user is None:
                user = self._users[account] = SlidingWindow(self._per_user, window=self._window,
                                                            clock=self._clock)
            now = self._clock()
            at = max(user.next_slot(now), self.project.next_slot(now))
            user.book(at)
            self.project.book(at)
            return at - now

    def stop(self) -> None:
        """End every wait now (those requests raise ``SyncStopped``)."""
        self._stop.set()

    def before_request(self, account: str, method: str) -> None:
        """Block until the request fits the budget; raise ``SyncStopped`` on shutdown."""
        wait = self.wait_time(account)
        if wait <= 0:
            return
        if self._on_wait is not None:
            self._on_wait(wait)
        if self._stop.wait(wait):
            raise SyncStopped(f"account {account}: {method} not sent (shutting down)")
