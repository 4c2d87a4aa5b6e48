"""A client-side request budget: token buckets per Google project and per account.

Google meters its per-minute quotas per project (every account whose
credentials belong to one Cloud project shares it) and per user; going over
them costs 403 ``rateLimitExceeded`` answers and backoff. Every API request of
every command that calls Google (``once`` and ``run``) passes through
:meth:`QuotaBudget.before_request` and waits until it fits both its account's
bucket and its project's bucket.

A bucket fills at ``requests_per_minute / 60`` tokens a second up to a
capacity of ``burst`` seconds' worth (``[quota] burst``, default 10 s; at
least one token), and each request takes one. So a quiet process may send
one burst at once, and never more than ``capacity + rate * t`` requests in
any ``t`` seconds: a minute's budget cannot leave in two seconds (the sliding
window it replaces could), and a steady fleet is paced to the rate instead
of bunching, which is what keeps APScheduler's "missed" warnings away.

The wait is a reservation (tokens may go negative: the debt of callers
already waiting), so waiting callers are served in order and the long-run
rate is exact. It never outlasts a stop request: on shutdown the waiting
request raises ``SyncStopped`` instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from reconciler.config import QuotaConfig
from reconciler.errors import SyncStopped

DEFAULT_PROJECT = "default"  # accounts whose project is unknown share this one


class TokenBucket:
    """``per_minute / 60`` tokens a second, at most ``burst`` seconds' worth held.

    Not locked itself: :class:`QuotaBudget` reserves in two buckets under one lock.
    """

    def __init__(self, per_minute: float, *, burst: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = max(float(per_minute), 1e-9) / 60.0
        self.capacity = max(1.0, self.rate * burst)
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def next_slot(self, now: float) -> float:
        """The earliest time at or after ``now`` one more request fits."""
        self._refill(now)
        if self._tokens >= 1.0:
            return now
        return now + (1.0 - self._tokens) / self.rate

    def book(self, now: float) -> None:
        """Take one token (a debt when none is left: the caller waits for it)."""
        self._refill(now)
        self._tokens -= 1.0

    def reserve(self) -> float:
        """Take the next slot; return how many seconds to wait before using it (0: at once)."""
        now = self._clock()
        at = self.next_slot(now)
        self.book(now)
        return at - now

    @property
    def available(self) -> float:
        """Tokens that may go now without waiting (negative: owed to waiting callers)."""
        self._refill(self._clock())
        return self._tokens


class QuotaBudget:
    """One bucket per project plus one per account; a blocking, stoppable gate.

    ``project_of`` maps an account name to its Google project (the
    credentials' ``project_id`` or client id); by default every account of
    the process shares one project bucket.
    """

    def __init__(self, config: QuotaConfig, stop: threading.Event, *,
                 clock: Callable[[], float] = time.monotonic,
                 on_wait: Callable[[float], None] | None = None,
                 project_of: Callable[[str], str] | None = None) -> None:
        self._per_project = float(config.requests_per_minute)
        self._per_user = float(config.per_user_requests_per_minute)
        self._burst = float(config.burst)
        self._projects: dict[str, TokenBucket] = {}
        self._users: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._stop = stop
        self._on_wait = on_wait
        self._project_of = project_of or (lambda _account: DEFAULT_PROJECT)
        self.project = self._bucket(self._projects, DEFAULT_PROJECT, self._per_project)

    def _bucket(self, table: dict[str, TokenBucket], key: str, per_minute: float) -> TokenBucket:
        bucket = table.get(key)
        if bucket is None:
            bucket = table[key] = TokenBucket(per_minute, burst=self._burst, clock=self._clock)
        return bucket

    def user(self, account: str) -> TokenBucket:
        """The bucket of one account (created on first use)."""
        with self._lock:
            return self._bucket(self._users, account, self._per_user)

    def project_bucket(self, account: str) -> TokenBucket:
        """The bucket of the account's Google project (created on first use)."""
        with self._lock:
            return self._bucket(self._projects, self._project_of(account), self._per_project)

    def wait_time(self, account: str) -> float:
        """Reserve a token in both buckets; the seconds to wait before the request."""
        with self._lock:
            user = self._bucket(self._users, account, self._per_user)
            project = self._bucket(self._projects, self._project_of(account), self._per_project)
            now = self._clock()
            at = max(user.next_slot(now), project.next_slot(now))
            user.book(now)
            project.book(now)
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
