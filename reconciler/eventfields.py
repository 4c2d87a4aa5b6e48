"""Derive the queryable columns of an event row from its raw resource.

The raw JSON is the truth and is always stored unchanged; the derived columns
(UTC instants, all-day dates, sequence, ...) exist so users can query the mirror
with plain SQL. Real calendars hold resources that break parsers (year 0 dates,
offsets that disagree with ``timeZone``, stubs with only an id, unknown event
types), so derivation never raises: a field it cannot read becomes NULL and the
problem is reported back to the caller, which logs it once.

Hostile content never blocks a calendar (no poison pills). Every derived
value fits its column on SQLite, MySQL and PostgreSQL:

* NUL characters (PostgreSQL text cannot hold them) and lone surrogates (no
  driver can encode them) are replaced by U+FFFD in derived columns only; the
  raw JSON keeps them as JSON escapes (``\\u0000``, ``\\ud800``).
* a summary longer than :data:`SUMMARY_CHARS` is truncated (a MySQL TEXT holds
  64 KB); a ``recurringEventId`` or ``originalStartTime`` that does not fit its
  column is NULL; a ``sequence`` outside 32 bits is NULL.
* an etag that does not fit is replaced by a digest of itself, so equal etags
  still compare equal and the reconcile rule is unchanged.
* the id itself is never altered in ``EventFields.event_id`` (rows are keyed by
  its SHA-1); :func:`stored_id` is the form written to ``event_id`` columns.
* a resource nested deeper than :data:`MAX_DEPTH` is refused (the planner skips
  that event only): :func:`too_deep` checks without recursion.

Each adjustment is reported as a problem, so the event is counted as bad.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from reconciler.reconcile import Version

UTC = dt.UTC

# Column widths (characters) of reconciler/store/models.py's Event and Change.
ID_CHARS = 1024  # event_id, recurring_event_id, change.event_id
ETAG_CHARS = 255
STATUS_CHARS = 32
ORIGINAL_START_CHARS = 64
# A MySQL TEXT holds 65,535 bytes; four bytes per character at most in utf8mb4.
SUMMARY_CHARS = 16_383
# The deepest resource stored: what orjson writes (Google's own events are < 10 deep).
MAX_DEPTH = 254
INT32 = (-(2**31), 2**31 - 1)

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def clean_text(value: str) -> str:
    """``value`` with NUL and lone surrogates replaced by U+FFFD (storable on every engine)."""
    if _UNSTORABLE.search(value) is None:
        return value
    return _UNSTORABLE.sub(REPLACEMENT, value)


def stored_id(event_id: str) -> str:
    """The form of an event id written to ``event_id`` columns: clean, at most ID_CHARS.

    Rows are found by the SHA-1 of the full id (``event_key``), never by this
    column, and the raw JSON keeps the id in full.
    """
    cleaned = clean_text(event_id)
    return cleaned if len(cleaned) <= ID_CHARS else cleaned[:ID_CHARS]


def stored_etag(etag: str) -> str:
    """An etag that fits its column; a longer or unstorable one becomes a digest of itself."""
    if len(etag) <= ETAG_CHARS and _UNSTORABLE.search(etag) is None:
        return etag
    digest = hashlib.sha256(etag.encode("utf-8", "surrogatepass")).hexdigest()
    return f"~sha256:{digest}"


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether a decoded JSON value nests lists/objects deeper than ``limit`` (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))
    return False


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
            fields.problems.append(f"{name}.dateTime {_short(value['dateTime'])} "
                                   "is not a valid timestamp")
        setattr(fields, f"{name}_utc", instant)
    elif "date" in value:
        day = parse_date(value["date"])
        if day is None:
            fields.problems.append(f"{name}.date {_short(value['date'])} is not a valid date")
        setattr(fields, f"{name}_date", day)
        if day is not None:
            setattr(fields, f"{name}_utc", dt.datetime(day.year, day.month, day.day, tzinfo=UTC))


def _original_start(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    if "dateTime" in value:
        instant = parse_rfc3339(value["dateTime"])
        if instant is not None:
            return format_rfc3339(instant)
        return value["dateTime"] if isinstance(value["dateTime"], str) else None
    if "date" in value:
        return value["date"] if isinstance(value["date"], str) else None
    return None


def derive(resource: dict[str, Any]) -> EventFields:
    """Read the derived columns of an event resource; never raises for odd content.

    Only ``id`` is required (the caller rejects resources without one): a
    cancelled stub may hold nothing else.
    """
    problems: list[str] = []
    raw_sequence = resource.get("sequence")
    sequence = raw_sequence if isinstance(raw_sequence, int) and not isinstance(
        raw_sequence, bool) else None
    if sequence is not None and not INT32[0] <= sequence <= INT32[1]:
        problems.append("sequence is outside 32 bits; stored as NULL")
        sequence = None
    updated = parse_rfc3339(resource.get("updated"))
    etag = resource.get("etag")
    etag = etag if isinstance(etag, str) else ""
    if stored_etag(etag) != etag:
        problems.append(f"etag of {len(etag)} characters does not fit; stored as its digest")
        etag = stored_etag(etag)
    status = resource.get("status")
    status = status if isinstance(status, str) and status else "confirmed"
    if len(status) > STATUS_CHARS or _UNSTORABLE.search(status):
        problems.append("status is not a Calendar status; stored as 'confirmed'")
        status = "confirmed"
    fields = EventFields(
        event_id=str(resource["id"]),
        etag=etag,
        status=status,
        sequence=sequence,
        updated_ms=to_millis(updated) if updated else None,
        problems=problems,
    )
    if len(fields.event_id) > ID_CHARS:
        problems.append(f"id of {len(fields.event_id)} characters is longer than the column; "
                        f"event_id holds its first {ID_CHARS}")
    elif _UNSTORABLE.search(fields.event_id):
        problems.append("id holds NUL or a lone surrogate; replaced in event_id")
    fields.summary = _summary(problems, resource.get("summary"))
    if resource.get("updated") is not None and updated is None:
        problems.append(f"updated {_short(resource.get('updated'))} is not a valid timestamp")
    _start_or_end(fields, "start", resource.get("start"))
    _start_or_end(fields, "end", resource.get("end"))
    recurring = resource.get("recurringEventId")
    fields.recurring_event_id = _fitting(problems, "recurringEventId",
                                         recurring if isinstance(recurring, str) else None,
                                         ID_CHARS)
    fields.original_start = _fitting(problems, "originalStartTime",
                                     _original_start(resource.get("originalStartTime")),
                                     ORIGINAL_START_CHARS)
    event_type = resource.get("eventType")
    if isinstance(event_type, str) and event_type:
        fields.event_type = clean_text(event_type[:64])
    if fields.status != "cancelled" and "start" not in resource:
        problems.append("event has no start")
    return fields


def _short(value: Any) -> str:
    """A value as a problem line shows it: repr, cut to 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _summary(problems: list[str], value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    cleaned = clean_text(value)
    if cleaned is not value:
        problems.append("summary holds NUL or a lone surrogate; replaced in the summary column")
    if len(cleaned) > SUMMARY_CHARS:
        problems.append(f"summary of {len(cleaned)} characters truncated to {SUMMARY_CHARS}")
        cleaned = cleaned[:SUMMARY_CHARS]
    return cleaned


def _fitting(problems: list[str], name: str, value: str | None, width: int) -> str | None:
    """``value`` cleaned, or None (reported) when it does not fit ``width`` characters."""
    if value is None:
        return None
    if len(value) > width:
        problems.append(f"{name} of {len(value)} characters does not fit; stored as NULL")
        return None
    cleaned = clean_text(value)
    if cleaned is not value:
        problems.append(f"{name} holds NUL or a lone surrogate; replaced in its column")
    return cleaned


_STRUCTURE = re.compile(r'[\[\]{}"\\]')


def prune_deep(text: str, limit: int) -> str:
    """JSON text with every array/object nested deeper than ``limit`` replaced by ``null``.

    For decoding a page that holds one pathologically nested event (parsers
    stop at about 1,000 levels and would reject the whole page): the pruned
    page decodes, and the event that was pruned is still deeper than
    :data:`MAX_DEPTH` when ``limit`` exceeds it, so the planner refuses that
    event only and nothing altered is ever stored. Linear, without recursion;
    text that is not JSON stays not JSON.
    """
    out: list[str] = []
    depth = 0
    in_string = False
    escaped = -1  # index of the character a backslash escapes
    cut_from = -1  # where the subtree being cut began
    last = 0
    for match in _STRUCTURE.finditer(text):
        i = match.start()
        char = match.group()
        if in_string:
            if i == escaped:
                continue
            if char == "\\":
                escaped = i + 1
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth == limit + 1 and cut_from < 0:
                cut_from = i
        elif char in "]}":
            if depth == limit + 1 and cut_from >= 0:
                out.append(text[last:cut_from])
                out.append("null")
                last = i + 1
                cut_from = -1
            depth -= 1
    out.append(text[last:])
    return "".join(out)
