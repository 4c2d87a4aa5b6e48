"""A client-side request budget: token buckets per Google project and per account.

Google enforces per-minute quotas per project and per user; going over them
costs 403 ``rateLimitExceeded`` answers and backoff. Every API request passes
through :meth:`QuotaBudget.before_request` (Service's ``before_request`` hook)
and waits for a token from the account's bucket and the project's bucket. The
wait is a reservation (the bucket may go negative), so waiting callers are
served in order and the long-run rate is exact. It never outlasts a stop
request: on shutdown the waiting request raises ``SyncStopped`` instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from reconciler.config import QuotaConfig
from reconciler.errors import SyncStopped

BURST_SECONDS = 10.0  # a bucket holds this many seconds' worth of requests


class TokenBucket:
    """``per_minute`` tokens a minute, holding at most ``BURST_SECONDS`` worth."""

    def __init__(self, per_minute: float, *, burst_seconds: float = BURST_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token; return how many seconds to wait before using it (0: at once)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    @property
    def available(self) -> float:
        """Tokens available now (negative: owed to waiting callers)."""
        with self._lock:
            now = self._clock()
            return min(self.capacity, self._tokens + (now - self._stamp) * self.rate)


class QuotaBudget:
    """The project bucket plus one bucket per account; a blocking, stoppable gate."""

    def __init__(self, config: QuotaConfig, stop: threading.Event, *,
                 clock: Callable[[], float] = time.monotonic,
                 on_wait: Callable[[float], None] | None = None) -> None:
        self.project = TokenBucket(config.requests_per_minute, clock=clock)
        self._per_user = float(config.per_user_requests_per_minute)
        self._users: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._stop = stop
        self._on_wait = on_wait

    def user(self, account: str) -> TokenBucket:
        """The bucket of one account (created on first use)."""
        with self._lock:
            bucket = self._users.get(account)
            if bucket is None:
                bucket = self._users[account] = TokenBucket(self._per_user, clock=self._clock)
            return bucket

    def wait_time(self, account: str) -> float:
        """Reserve a token in both buckets; the seconds to wait before the request."""
        return max(self.user(account).reserve(), self.project.reserve())

    def before_request(self, account: str, method: str) -> None:
        """Block until the request fits the budget; raise ``SyncStopped`` on shutdown."""
        wait = self.wait_time(account)
        if wait <= 0:
            return
        if self._on_wait is not None:
            self._on_wait(wait)
        if self._stop.wait(wait):
            raise SyncStopped(f"account {account}: {method} not sent (shutting down)")
