"""How long a calendar waits after a failed pass, by kind of failure.

Kept pure (the random source is injected) so the growth, the cap and the
honouring of ``Retry-After`` can be tested exactly. One calendar's backoff
never touches another's: the scheduler stores the result as that calendar's
``next_due`` only.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.errors import AuthFailed, CalendarNotFound, QuotaExhausted

QUOTA_PAUSE = 600.0  # seconds: a 403 quotaExceeded pauses the calendar at least this long
REAUTH_RETRY = (900.0, 1800.0)  # a parked account is probed again after 15-30 min
GONE_POLL = 3600.0  # a 404 calendar is looked at again hourly (or at its interval, if longer)
BASE_CAP = 30.0  # first retry after a transient failure: at most this, at most the interval


@dataclass(frozen=True, slots=True)
class Delay:
    """The wait before the next attempt and why (for the log line and metrics)."""

    seconds: float
    reason: str  # backoff | retry_after | quota | reauth | gone


def failure_delay(exc: BaseException, failures: int, interval: float, backoff_max: float,
                  rand: Callable[[], float] = random.random) -> Delay:
    """The wait after the ``failures``-th failure in a row (1 = first) raised ``exc``.

    Transient errors back off exponentially from ``min(interval, 30 s)``,
    doubling per failure up to ``backoff_max``, with "equal jitter" (50-100% of
    the step) so calendars that failed together do not retry together.
    ``Retry-After`` is a floor; ``QuotaExhausted`` waits at least
    ``QUOTA_PAUSE`` (capped by ``backoff_max``); ``AuthFailed`` parks the
    account for 15-30 min; ``CalendarNotFound`` is polled hourly.
    """
    if isinstance(exc, AuthFailed):
        low, high = REAUTH_RETRY
        return Delay(low + (high - low) * rand(), "reauth")
    if isinstance(exc, CalendarNotFound):
        return Delay(max(float(interval), GONE_POLL), "gone")
    step = backoff_step(failures, interval, backoff_max)
    seconds = step * (0.5 + 0.5 * rand())
    reason = "backoff"
    if isinstance(exc, QuotaExhausted):
        pause = min(float(backoff_max), QUOTA_PAUSE)
        if pause > seconds:
            seconds, reason = pause * (1.0 + 0.1 * rand()), "quota"
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int | float) and retry_after > seconds:
        seconds, reason = float(retry_after), "retry_after"
    return Delay(seconds, reason)


def backoff_step(failures: int, interval: float, backoff_max: float) -> float:
    """The un-jittered backoff after ``failures`` failures in a row."""
    base = max(1.0, min(float(interval), BASE_CAP))
    exponent = min(max(failures, 1) - 1, 40)
    return float(min(float(backoff_max), base * 2.0 ** exponent))


RESOLVE_FIRST_RETRY = 2.0  # seconds before the first retry of an unresolved calendar set


def resolve_retry_delay(attempts: int, interval: float) -> float:
    """The wait before retrying to resolve the calendar set after ``attempts`` failed tries.

    Doubling from :data:`RESOLVE_FIRST_RETRY`, at most ``interval`` (the
    periodic refresh that runs anyway); no jitter: one process, one retry.
    """
    exponent = min(max(attempts, 1) - 1, 40)
    return float(min(max(float(interval), RESOLVE_FIRST_RETRY),
                     RESOLVE_FIRST_RETRY * 2.0 ** exponent))
