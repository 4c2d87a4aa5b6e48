"""Derive the queryable columns of an event row from its raw resource.

The raw JSON is the truth and is always stored unchanged; the derived columns
(UTC instants, all-day dates, sequence, ...) exist so users can query the mirror
with plain SQL. Real calendars hold resources that break parsers (year 0 dates,
offsets that disagree with ``timeZone``, stubs with only an id, unknown event
types), so derivation never raises: a field it cannot read becomes NULL and the
problem is reported back to the caller, which logs it once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from reconciler.reconcile import Version

UTC = dt.UTC


def parse_rfc3339(value: Any) -> dt.datetime | None:
    """Parse an RFC 3339 timestamp to an aware UTC datetime, trusting its offset.

    Older and Gmail-created events carry no ``timeZone`` and some carry one that
    disagrees with the offset; the offset is what Google computed the instant
    with, so it wins. A timestamp without an offset is taken as UTC.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def to_millis(value: dt.datetime) -> int:
    """Milliseconds since the epoch: exact, and comparable on every database."""
    delta = value - dt.datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def from_millis(ms: int) -> dt.datetime:
    """Inverse of :func:`to_millis`."""
    return dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(milliseconds=ms)


def format_rfc3339(value: dt.datetime) -> str:
    """Google's own timestamp shape: UTC with milliseconds and a ``Z``."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_date(value: Any) -> dt.date | None:
    """Parse an all-day ``YYYY-MM-DD`` date; impossible dates (year 0) are None."""
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


@dataclass(slots=True)
class EventFields:
    """The derived columns of one event row; None where the resource has no usable value."""

    event_id: str
    etag: str
    status: str
    sequence: int | None
    updated_ms: int | None
    summary: str | None = None
    start_utc: dt.datetime | None = None
    end_utc: dt.datetime | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    recurring_event_id: str | None = None
    original_start: str | None = None
    event_type: str = "default"  # Google's eventType; absent means "default"
    problems: list[str] = field(default_factory=list)

    def version(self, updated_ms: int) -> Version:
        """This event as the reconcile rule compares it, at the given effective time."""
        return Version(self.etag, updated_ms, self.sequence, self.status)


def _start_or_end(fields: EventFields, name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        fields.problems.append(f"{name} is not an object")
        return
    if "dateTime" in value:
        instant = parse_rfc3339(value["dateTime"])
        if instant is None:
            fields.problems.append(f"{name}.dateTime {value['dateTime']!r} is not a valid timestamp")
        setattr(fields, f"{name}_utc", instant)
    elif "date" in value:
        day = parse_date(value["date"])
        if day is None:
            fields.problems.append(f"{name}.date {value['date']!r} is not a valid date")
        setattr(fields, f"{name}_date", day)
        if day is not None:
            setattr(fields, f"{name}_utc", dt.datetime(day.year, day.month, day.day, tzinfo=UTC))


def _original_start(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    if "dateTime" in value:
        instant = parse_rfc3339(value["dateTime"])
        return format_rfc3339(instant) if instant else str(value["dateTime"])
    if "date" in value:
        return str(value["date"])
    return None


def derive(resource: dict[str, Any]) -> EventFields:
    """Read the derived columns of an event resource; never raises for odd content.

    Only ``id`` is required (the caller rejects resources without one): a
    cancelled stub may hold nothing else.
    """
    raw_sequence = resource.get("sequence")
    sequence = raw_sequence if isinstance(raw_sequence, int) and not isinstance(
        raw_sequence, bool) else None
    updated = parse_rfc3339(resource.get("updated"))
    etag = resource.get("etag")
    status = resource.get("status")
    fields = EventFields(
        event_id=str(resource["id"]),
        etag=etag if isinstance(etag, str) else "",
        status=status if isinstance(status, str) and status else "confirmed",
        sequence=sequence,
        updated_ms=to_millis(updated) if updated else None,
    )
    summary = resource.get("summary")
    fields.summary = summary if isinstance(summary, str) else None
    if resource.get("updated") is not None and updated is None:
        fields.problems.append(f"updated {resource.get('updated')!r} is not a valid timestamp")
    _start_or_end(fields, "start", resource.get("start"))
    _start_or_end(fields, "end", resource.get("end"))
    recurring = resource.get("recurringEventId")
    fields.recurring_event_id = recurring if isinstance(recurring, str) else None
    fields.original_start = _original_start(resource.get("originalStartTime"))
    event_type = resource.get("eventType")
    if isinstance(event_type, str) and event_type:
        fields.event_type = event_type[:64]
    if fields.status != "cancelled" and "start" not in resource:
        fields.problems.append("event has no start")
    return fields
