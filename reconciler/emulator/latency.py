"""Google-like response latency: fixed + per item + uniform jitter, per API request.

Against Google a request takes 100-300 ms, so benchmarks on a zero-latency
emulator measure CPU only. :class:`Latency` holds the settings and decides how
long one response waits; the HTTP layer sleeps that long in the request's own
thread, after the answer is computed and outside every lock, so delayed requests
overlap instead of queueing.

Invariants: a delay is ``fixed_ms + per_item_ms * items + uniform(0, jitter_ms)``
milliseconds, never negative; all settings zero means no sleep at all; the
random source is injectable (a seeded :class:`random.Random` makes jitter
reproducible) and drawn under a small lock of its own, never the emulator's.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class LatencySettings:
    """One latency configuration, in milliseconds."""

    fixed_ms: float = 0.0
    per_item_ms: float = 0.0
    jitter_ms: float = 0.0

    def __post_init__(self) -> None:
        """Refuse negative, infinite or NaN values (one line naming the field)."""
        for name in ("fixed_ms", "per_item_ms", "jitter_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number of milliseconds, not {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")

    @property
    def zero(self) -> bool:
        """Whether no request is delayed at all."""
        return self.fixed_ms == 0 and self.per_item_ms == 0 and self.jitter_ms == 0


class Latency:
    """The current latency settings plus the random source for jitter."""

    def __init__(self, rng: random.Random | None = None) -> None:
        """Start with no latency; ``rng`` (default: a fresh ``random.Random``) draws jitter."""
        self._rng = rng if rng is not None else random.Random()
        self._rng_lock = threading.Lock()
        self.settings = LatencySettings()

    def set(self, fixed_ms: float = 0.0, per_item_ms: float = 0.0, jitter_ms: float = 0.0) -> None:
        """Replace the settings (validated first: a bad value changes nothing)."""
        self.settings = LatencySettings(fixed_ms, per_item_ms, jitter_ms)

    def seconds(self, items: int = 0) -> float:
        """How long a response carrying ``items`` items waits, in seconds."""
        s = self.settings  # one read: a concurrent ``set`` swaps the whole object
        if s.zero:
            return 0.0
        jitter = 0.0
        if s.jitter_ms > 0:
            with self._rng_lock:
                jitter = self._rng.uniform(0.0, s.jitter_ms)
        return (s.fixed_ms + s.per_item_ms * max(items, 0) + jitter) / 1000.0
