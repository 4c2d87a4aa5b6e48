"""The emulator's clock.

Every timestamp the emulator hands out (``created``, ``updated``, etags, token
ages, channel expirations) comes from one :class:`Clock`, so tests can move time
forward to expire sync tokens or watch channels without sleeping.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class Clock:
    """A settable clock that ticks with real time, offset by what tests asked for."""

    def __init__(self) -> None:
        """Start at real time."""
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the emulator's current time (timezone-aware UTC)."""
        return datetime.now(UTC) + self._offset

    def now_ms(self) -> int:
        """Return the current emulator time in integer milliseconds since the epoch."""
        return int(self.now().timestamp() * 1000)

    def set(self, when: datetime) -> None:
        """Make ``now()`` return ``when`` from here on (time keeps ticking from it)."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        with self._lock:
            self._offset = when - datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        """Move the clock forward (or back, if negative) by ``seconds``."""
        with self._lock:
            self._offset += timedelta(seconds=seconds)

    def reset(self) -> None:
        """Go back to real time."""
        with self._lock:
            self._offset = timedelta(0)


def format_ms(ms: int) -> str:
    """Format epoch milliseconds as RFC 3339 UTC with milliseconds, like Google."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 timestamp (``Z`` or offset) into an aware datetime.

    Raises ``ValueError`` for anything else, which callers turn into a 400.
    """
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError("timestamp without offset")
    return dt


def rfc1123(ms: int) -> str:
    """Format epoch milliseconds as an RFC 1123 date (X-Goog-Channel-Expiration)."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return dt.strftime("%a, %d %b %Y %H:%M:%S GMT")
