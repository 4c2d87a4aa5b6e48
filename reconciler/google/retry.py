"""Retry transient Calendar API failures with exponential backoff and jitter (tenacity).

tenacity is the well-kept library for this: its ``wait_random_exponential`` is
"full jitter" backoff. On top of it we honour ``Retry-After`` and keep the total
time bounded: when the server asks for a longer wait than the budget has left,
the error is raised so the scheduler can come back later instead of a thread
sleeping on it. ``QuotaExhausted`` is never retried inline (it needs a long
pause, which the scheduler gives).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from reconciler.errors import QuotaExhausted, TransientGoogleError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to retry one request: attempts, total time, backoff base and cap."""

    attempts: int = 6
    max_seconds: float = 120.0
    base: float = 0.5
    max_wait: float = 30.0


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, TransientGoogleError) and not isinstance(exc, QuotaExhausted)


def call_with_retries(fn: Callable[[], T], policy: RetryPolicy,
                      sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``fn`` (which raises project errors), retrying transient failures."""
    backoff = wait_random_exponential(multiplier=policy.base, max=policy.max_wait)
    started = time.monotonic()

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        return float(retry_after) if retry_after is not None else float(backoff(state))

    def stop(state: RetryCallState) -> bool:
        if stop_after_attempt(policy.attempts)(state) or stop_after_delay(policy.max_seconds)(state):
            return True
        remaining = policy.max_seconds - (time.monotonic() - started)
        return wait(state) > remaining

    retrying = Retrying(retry=retry_if_exception(_retryable), wait=wait, stop=stop,
                        sleep=sleep, reraise=True)
    return retrying(fn)
