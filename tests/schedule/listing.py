"""Events with a chosen ``updated`` time, for tests of the first listing's estimate."""

from __future__ import annotations

import datetime as dt


def stamp(at: float) -> str:
    """RFC 3339 in UTC with milliseconds (a Unix time), as Google writes ``updated``."""
    when = dt.datetime.fromtimestamp(at, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def raw_event(n: int, updated_at: float) -> dict[str, object]:
    """Event number ``n`` as Google serves it, last changed at ``updated_at`` (Unix time)."""
    updated = stamp(updated_at)
    return {"kind": "calendar#event", "id": f"ev{n:05d}", "etag": f'"{3_100_000 + n}"',
            "status": "confirmed", "summary": f"e{n}", "created": updated, "updated": updated,
            "start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"},
            "iCalUID": f"ev{n:05d}@google.com"}
