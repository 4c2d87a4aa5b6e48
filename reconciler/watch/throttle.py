"""Per-calendar coalescing of hints: a burst of notifications becomes one or two syncs.

A bulk import sends one notification per change, a thousand in a second or
two. The first hint of a quiet calendar is passed on at once (low latency).
Hints after it are folded into one trailing request, made when the burst has
been quiet for ``quiet`` seconds, or ``max_delay`` seconds after the first
folded hint if the stream never stops, and never sooner than ``window``
seconds after the previous request. So the last change of a burst is never
left to the next poll, a burst costs two syncs, and an endless stream one per
``max_delay``. Excess hints are still answered 200 by the receiver.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.logsetup import RateLimitedLog as RateLimitedLog  # the engine uses it too

log = logging.getLogger("reconciler.watch")


@dataclass(slots=True)
class _Pending:
    first: float
    last: float


class HintThrottle:
    """Leading request at once, one trailing request per burst; keyed by calendar row id."""

    def __init__(self, fire: Callable[[int], None], window: float = 1.0, *, quiet: float = 0.5,
                 max_delay: float = 5.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._fire = fire
        self.window = window
        self.quiet = quiet
        self.max_delay = max_delay
        self._monotonic = monotonic
        self._last_fire: dict[int, float] = {}
        self._pending: dict[int, _Pending] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.fired = 0  # requests passed on (leading + trailing), for tests and metrics
        self.coalesced = 0  # hints folded into a trailing request

    def hint(self, key: int) -> bool:
        """Note a hint for ``key``; True when a request was made now (raises on DB errors)."""
        with self._cond:
            now = self._monotonic()
            pending = self._pending.get(key)
            last = self._last_fire.get(key)
            if pending is None and (last is None or now - last >= self.window):
                self._last_fire[key] = now
                self.fired += 1
            else:
                self.coalesced += 1
                if pending is None:
                    self._pending[key] = _Pending(now, now)
                    self._ensure_thread()
                    self._cond.notify()
                else:
                    pending.last = now
                return False
        self._fire(key)
        return True

    def _due_at(self, key: int, pending: _Pending) -> float:
        settle = min(pending.last + self.quiet, pending.first + self.max_delay)
        return max(settle, self._last_fire.get(key, 0.0) + self.window)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="watch-throttle", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                due: list[int] = []
                while not self._closed:
                    now = self._monotonic()
                    times = {k: self._due_at(k, p) for k, p in self._pending.items()}
                    due = [k for k, at in times.items() if at <= now]
                    if due:
                        break
                    wait = min(times.values(), default=now + 60.0) - now
                    self._cond.wait(timeout=max(0.005, min(wait, 60.0)))
                if self._closed:
                    return
                for key in due:
                    del self._pending[key]
                    self._last_fire[key] = now
                    self.fired += 1
            self._fire_all(due)

    def _fire_all(self, keys: list[int]) -> None:
        for key in keys:
            try:
                self._fire(key)
            except Exception as exc:  # the database may be down; the poll still runs
                log.warning("watch: could not request a sync for calendar row %s: %s", key, exc)

    def close(self) -> None:
        """Make every pending trailing request now and stop the thread (shutdown)."""
        with self._cond:
            keys = list(self._pending)
            self._pending.clear()
            self._closed = True
            self._cond.notify_all()
        self._fire_all(keys)
        if self._thread is not None:
            self._thread.join(timeout=5)
