"""Requests in flight: how many API requests the server is answering at once.

Latency tests and benchmarks need proof that delayed requests overlap rather
than queue; timing a batch proves it only loosely on a busy machine, so the
server counts instead. Invariants: ``current`` is never negative and returns to
zero when the server is idle; ``peak`` is the highest ``current`` seen since the
last :meth:`InFlight.reset`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class InFlight:
    """A thread-safe counter of requests being served, with its high-water mark."""

    def __init__(self) -> None:
        """Start idle."""
        self._lock = threading.Lock()
        self.current = 0
        self.peak = 0

    def enter(self) -> None:
        """One more request is being served."""
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)

    def leave(self) -> None:
        """One request is answered (call exactly once per :meth:`enter`)."""
        with self._lock:
            self.current -= 1

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """Count one request for the duration of the ``with`` block."""
        self.enter()
        try:
            yield
        finally:
            self.leave()

    def reset(self) -> None:
        """Restart the high-water mark from the current count."""
        with self._lock:
            self.peak = self.current

    def snapshot(self) -> dict[str, int]:
        """``{"in_flight": current, "max_in_flight": peak}``."""
        with self._lock:
            return {"in_flight": self.current, "max_in_flight": self.peak}
