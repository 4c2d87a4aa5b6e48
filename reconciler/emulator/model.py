"""In-memory data model: calendars, event records and their immutable versions.

Each write produces a new :class:`Version` holding the resource dict *and* its
serialised JSON bytes, computed once; list pages are then built by joining those
bytes, which is what makes the emulator fast enough never to be the bottleneck.
Versions are never mutated after creation, so pages need no copies.
"""

from __future__ import annotations

import bisect
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .clock import parse_rfc3339


def dumps(obj: Any) -> bytes:
    """Serialise like Google does on the wire: UTF-8, non-ASCII left as is."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def local_datetime(value: str, zone: Any) -> datetime:
    """Parse a ``dateTime``; one without an offset is wall time in ``zone`` (else UTC)."""
    try:
        return parse_rfc3339(value)
    except ValueError:
        naive = datetime.fromisoformat(value)
        if naive.tzinfo is not None:
            raise
        try:
            tz: Any = ZoneInfo(str(zone)) if zone else UTC
        except (ZoneInfoNotFoundError, ValueError):
            tz = UTC
        return naive.replace(tzinfo=tz)


def _instant(obj: Any) -> datetime | None:
    if not isinstance(obj, dict):
        return None
    try:
        if "dateTime" in obj:
            return local_datetime(str(obj["dateTime"]), obj.get("timeZone"))
        if "date" in obj:
            d = date.fromisoformat(str(obj["date"]))
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
    except ValueError:
        return None
    return None


class Version:
    """One immutable version of an event as served (dict + cached JSON bytes)."""

    __slots__ = ("cancelled", "data", "mtime_ms", "resource", "seq")

    def __init__(self, resource: dict[str, Any], seq: int, mtime_ms: int) -> None:
        """Freeze ``resource`` as the version written at ``seq`` / ``mtime_ms``."""
        self.resource = resource
        self.data = dumps(resource)
        self.seq = seq
        self.mtime_ms = mtime_ms
        self.cancelled = resource.get("status") == "cancelled"

    def start(self) -> datetime | None:
        """The event's start instant (all-day dates at UTC midnight), if it has one."""
        return _instant(self.resource.get("start"))

    def end(self) -> datetime | None:
        """The event's end instant, if it has one."""
        return _instant(self.resource.get("end"))


class EventRecord:
    """An event id in a calendar: its current version and last live body (for restores)."""

    __slots__ = ("current", "id", "live")

    def __init__(self, event_id: str, current: Version, live: dict[str, Any] | None) -> None:
        """Bind ``event_id`` to ``current``; ``live`` is the last non-stub resource."""
        self.id = event_id
        self.current = current
        self.live = live


@dataclass
class Calendar:
    """A calendar with its ACL, metadata and per-calendar modification log."""

    id: str
    summary: str
    time_zone: str = "UTC"
    description: str | None = None
    owners: list[str] = field(default_factory=list)
    shares: dict[str, str] = field(default_factory=dict)
    default_reminders: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    created_ms: int = 0
    updated_ms: int = 0
    seq: int = 0
    generation: str = field(default_factory=lambda: secrets.token_hex(4))
    events: dict[str, EventRecord] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    log_seqs: list[int] = field(default_factory=list)
    log_ids: list[str] = field(default_factory=list)

    def role_of(self, user: str) -> str | None:
        """The user's access role (``owner``, ``writer``, ``reader``...) or None."""
        if user in self.owners:
            return "owner"
        return self.shares.get(user)

    def next_write(self, now_ms: int) -> tuple[int, int]:
        """Allocate (seq, mtime_ms) for a write: both strictly increase per calendar."""
        self.seq += 1
        ms = max(now_ms, self.updated_ms + 1)
        self.updated_ms = ms
        return self.seq, ms

    def store(self, event_id: str, version: Version, live: dict[str, Any] | None) -> None:
        """Make ``version`` the current one for ``event_id`` and log the modification."""
        rec = self.events.get(event_id)
        if rec is None:
            self.events[event_id] = EventRecord(event_id, version, live)
            bisect.insort(self.ids, event_id)
        else:
            rec.current = version
            if live is not None:
                rec.live = live
        self.log_seqs.append(version.seq)
        self.log_ids.append(event_id)

    def changed_since(self, seq: int, until: int) -> list[str]:
        """Sorted ids of events modified after ``seq`` up to ``until`` (inclusive)."""
        lo = bisect.bisect_right(self.log_seqs, seq)
        hi = bisect.bisect_right(self.log_seqs, until)
        return sorted(set(self.log_ids[lo:hi]))

    def etag(self) -> str:
        """The envelope etag: changes whenever anything in the calendar changes."""
        return f'"p{self.updated_ms:x}{self.seq:x}"'


@dataclass
class Membership:
    """A user's calendarList entry for one calendar (``role`` None once removed)."""

    seq: int
    mtime_ms: int
    role: str | None
    hidden: bool = False
