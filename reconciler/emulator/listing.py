"""Read paths: events.list, events.instances and calendarList.list.

A listing (full or incremental) is "every item matching the query, ordered by
id"; a page token carries the query fingerprint, the last id served and the
modification sequence snapshotted on the first page, and ``nextSyncToken`` (last
page only) is that snapshot. Anything modified after the snapshot simply comes
again next time. Pages are built by joining each version's cached JSON bytes.

Filters, as Google applies them:
- ``eventTypes`` (repeatable; an event without ``eventType`` is ``default``) keeps
  the named types; cancelled events always pass it (a stub carries no type, and a
  sync response always carries every deletion). It is allowed with ``syncToken``,
  but only with the same set as the full listing that produced the token: the set
  is signed into the token, and a different one answers 410 ``fullSyncRequired``
  (Google calls the mismatch "undefined behavior"; a full resync is the safe
  reading and what a client must do anyway).
- ``timeMin`` is an exclusive lower bound on an event's end, ``timeMax`` an
  exclusive upper bound on its start (a recurring series matches when any
  occurrence does); both only on listings without ``syncToken`` (400 with one).
  A windowed full listing still ends with a sync token, whose increments carry
  every change, inside the window or not.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import errors
from .clock import format_ms, parse_rfc3339
from .events import make_instance
from .model import Calendar, Membership, Version, dumps
from .recurrence import MAX_INSTANCES, expand
from .tokens import TokenCodec, TokenError

Params = dict[str, list[str]]

SYNC_FORBIDDEN = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
_NOT_QUERY = frozenset(
    {
        "pageToken",
        "maxResults",
        "alt",
        "fields",
        "prettyPrint",
        "key",
        "quotaUser",
        "oauth_token",
        "access_token",
        "userIp",
        "$.xgafv",
        "callback",
    }
)


EVENT_TYPES = frozenset(
    {"birthday", "default", "focusTime", "fromGmail", "outOfOffice", "workingLocation"}
)  # the ``eventTypes`` enum of the discovery document


_PAST_LAST_ID = "\U0010ffff"  # sorts after every event id: a cursor past the last one


@dataclass
class Limits:
    """The clock reading and retention limits one request is judged against."""

    now_ms: int
    token_retention_ms: int
    updated_min_limit_ms: int
    force_empty: bool = False
    repeat_page_token: bool = False  # hostile fault: every page says "more", same token


def one(params: Params, name: str) -> str | None:
    """The last value of a query parameter, or None."""
    values = params.get(name)
    return values[-1] if values else None


def flag(params: Params, name: str, default: bool = False) -> bool:
    """A boolean query parameter ("true"/"false")."""
    value = one(params, name)
    if value is None:
        return default
    if value.lower() not in ("true", "false"):
        raise errors.invalid(f"Invalid boolean value: '{value}'.", name)
    return value.lower() == "true"


def max_results(params: Params, default: int, maximum: int) -> int:
    """``maxResults`` with Google's default; larger values are clamped to the maximum."""
    value = one(params, "maxResults")
    if value is None:
        return default
    try:
        n = int(value)
    except ValueError as exc:
        raise errors.invalid(
            f"Invalid value '{value}'. Values must match the following regular expression: '-?\\d+'",
            "maxResults",
        ) from exc
    if n < 1:
        raise errors.invalid("Invalid max results value.", "maxResults")
    return min(n, maximum)


def fingerprint(params: Params) -> str:
    """A short hash of the query (minus paging and presentation parameters)."""
    items = sorted((k, tuple(v)) for k, v in params.items() if k not in _NOT_QUERY)
    return hashlib.sha1(repr(items).encode()).hexdigest()[:16]


def event_types(params: Params) -> list[str]:
    """The sorted, de-duplicated ``eventTypes`` filter (empty: every type); 400 if unknown."""
    types = sorted({t for v in params.get("eventTypes", []) for t in v.split(",") if t})
    for t in types:
        if t not in EVENT_TYPES:
            raise errors.invalid(f"Invalid value for eventTypes: {t}", "eventTypes")
    return types


def _time(params: Params, name: str) -> datetime | None:
    value = one(params, name)
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise errors.invalid(f"Invalid value for: {name}", name) from exc


def _page_state(params: Params, codec: TokenCodec, kind: str) -> dict[str, Any] | None:
    token = one(params, "pageToken")
    if not token:
        return None
    try:
        state = codec.decode(token)
    except TokenError:
        state = {}
    if state.get("k") != kind or state.get("f") != fingerprint(params):
        raise errors.invalid("Invalid page token value.", "pageToken")
    return state


def _sync_seq(
    params: Params,
    codec: TokenCodec,
    kind: str,
    scope: str,
    gen: str,
    limits: Limits,
    head: int,
    types: list[str] | None = None,
) -> int:
    token = one(params, "syncToken") or ""
    try:
        st = codec.decode(token)
    except TokenError as exc:
        raise errors.full_sync_required() from exc
    ok = (
        st.get("k") == kind
        and st.get("c") == scope
        and st.get("g") == gen
        and isinstance(st.get("s"), int)
        and st["s"] <= head
        and isinstance(st.get("i"), int)
        and limits.now_ms - st["i"] <= limits.token_retention_ms
        and st.get("t", []) == (types or [])
    )
    if not ok:
        raise errors.full_sync_required()
    return int(st["s"])


class Page(bytes):
    """A serialised list page that also knows how many items it carries (for latency)."""

    item_count: int = 0


def _envelope(head: dict[str, Any], items: list[bytes]) -> bytes:
    page = Page(dumps(head)[:-1] + b',"items":[' + b",".join(items) + b"]}")
    page.item_count = len(items)
    return page


def _cal_head(cal: Calendar, role: str) -> dict[str, Any]:
    head: dict[str, Any] = {"kind": "calendar#events", "etag": cal.etag(), "summary": cal.summary}
    if cal.description is not None:
        head["description"] = cal.description
    head["updated"] = format_ms(cal.updated_ms)
    head["timeZone"] = cal.time_zone
    head["accessRole"] = role
    head["defaultReminders"] = cal.default_reminders
    return head


def _matcher(
    params: Params,
    include_cancelled: bool,
    updated_min_ms: int | None,
    tmin: datetime | None,
    tmax: datetime | None,
    type_list: list[str],
) -> Callable[[Version], bool]:
    ical = one(params, "iCalUID")
    q = (one(params, "q") or "").lower() or None
    private = [p.split("=", 1) for p in params.get("privateExtendedProperty", []) if "=" in p]
    shared = [p.split("=", 1) for p in params.get("sharedExtendedProperty", []) if "=" in p]
    types = frozenset(type_list)
    simple = not (ical or q or private or shared or types or tmin or tmax)

    def match(v: Version) -> bool:
        if v.cancelled and not include_cancelled:
            return False
        if updated_min_ms is not None and v.mtime_ms < updated_min_ms:
            return False
        if simple:
            return True
        r = v.resource
        if ical and r.get("iCalUID") != ical:
            return False
        if q and not any(q in str(r.get(k, "")).lower() for k in ("summary", "description", "location")):
            return False
        ext = r.get("extendedProperties") or {}
        for props, key in ((private, "private"), (shared, "shared")):
            have = ext.get(key) or {}
            if any(have.get(k) != val for k, val in props):
                return False
        if types and not v.cancelled and r.get("eventType", "default") not in types:
            return False
        if (tmin or tmax) and not v.cancelled:
            if r.get("recurrence"):
                return bool(expand(r, tmin, tmax, limit=1))
            s, e = v.start(), v.end()
            if s is not None and tmax is not None and s >= tmax:
                return False
            if e is not None and tmin is not None and e <= tmin and not (e == s and s == tmin):
                return False
        return True

    return match


def list_events(cal: Calendar, role: str, params: Params, codec: TokenCodec, limits: Limits) -> bytes:
    """events.list: a full or incremental page of ``cal`` for ``params``."""
    has_sync = one(params, "syncToken") is not None
    if has_sync:
        for name in SYNC_FORBIDDEN:
            if name in params:
                raise errors.invalid(f"The parameter {name} cannot be used with syncToken.", name)
    limit = max_results(params, 250, 2500)
    show_deleted = flag(params, "showDeleted")
    single = flag(params, "singleEvents")
    order = one(params, "orderBy")
    if order not in (None, "startTime", "updated"):
        raise errors.invalid(f"Invalid value for orderBy: {order}", "orderBy")
    if order == "startTime" and not single:
        raise errors.bad_request("The requested ordering is not available for the particular query.")
    tmin, tmax = _time(params, "timeMin"), _time(params, "timeMax")
    if tmin is not None and tmax is not None and tmax <= tmin:
        raise errors.ApiError(
            400,
            "timeRangeEmpty",
            "The specified time range is empty.",
            "calendar",
            "parameter",
            "timeMax",
        )
    types = event_types(params)
    upd = _time(params, "updatedMin")
    updated_min_ms = None
    if upd is not None:
        updated_min_ms = int(upd.timestamp() * 1000)
        if limits.now_ms - updated_min_ms > limits.updated_min_limit_ms:
            raise errors.updated_min_too_long_ago()
    page = _page_state(params, codec, "p")
    snapshot = int(page["s"]) if page else cal.seq
    tseq = -1
    if has_sync:
        tseq = _sync_seq(params, codec, "s", cal.id, cal.generation, limits, cal.seq, types)
        candidates = cal.changed_since(tseq, snapshot)
    else:
        candidates = cal.ids
    include_cancelled = has_sync or show_deleted or updated_min_ms is not None
    match = _matcher(params, include_cancelled, updated_min_ms, tmin, tmax, types)
    fp = fingerprint(params)
    head = _cal_head(cal, role)

    def token(cursor: dict[str, Any]) -> str:
        return codec.encode({"k": "p", "f": fp, "s": snapshot, **cursor})

    def sync_token() -> str:
        payload: dict[str, Any] = {"k": "s", "c": cal.id, "g": cal.generation, "s": snapshot}
        payload["i"] = limits.now_ms
        if types:
            payload["t"] = types  # the filter the token is valid for
        return codec.encode(payload)

    def finish(items: list[bytes], end: dict[str, Any]) -> bytes:
        if limits.repeat_page_token:  # never end: answer the token asked with (or one past the end)
            head.pop("nextSyncToken", None)
            head["nextPageToken"] = one(params, "pageToken") or head.get("nextPageToken") or token(end)
        return _envelope(head, items)

    if limits.force_empty:
        cursor = {"a": page.get("a"), "o": page.get("o", 0)} if page else {"a": None, "o": 0}
        head["nextPageToken"] = token(cursor)
        return finish([], cursor)
    if not single and order is None:
        after = page.get("a") if page else None
        i = bisect.bisect_right(candidates, after) if after is not None else 0
        n = len(candidates)
        items: list[bytes] = []
        events = cal.events
        while i < n and len(items) < limit:
            v = events[candidates[i]].current
            i += 1
            if match(v):
                items.append(v.data)
        if i < n:
            head["nextPageToken"] = token({"a": candidates[i - 1]})
        else:
            head["nextSyncToken"] = sync_token()
        return finish(items, {"a": _PAST_LAST_ID})
    rows = _materialise(cal, candidates, match, single, include_cancelled, tmin, tmax)
    if order == "startTime":
        rows.sort(key=lambda r: (r[0], r[1]))
    elif order == "updated":
        rows.sort(key=lambda r: (r[2], r[1]))
    else:
        rows.sort(key=lambda r: r[1])
    offset = int(page.get("o", 0)) if page else 0
    chunk = rows[offset : offset + limit]
    if offset + limit < len(rows):
        head["nextPageToken"] = token({"o": offset + limit})
    elif order is None:
        head["nextSyncToken"] = sync_token()
    return finish([r[3] for r in chunk], {"o": max(len(rows), offset + limit)})


_MIN = datetime.min.replace(tzinfo=None)


def _materialise(
    cal: Calendar,
    candidates: list[str],
    match: Callable[[Version], bool],
    single: bool,
    include_cancelled: bool,
    tmin: datetime | None,
    tmax: datetime | None,
) -> list[tuple[str, str, int, bytes]]:
    """Rows (start key, id, mtime, bytes) for the slow path (singleEvents / orderBy)."""
    rows: list[tuple[str, str, int, bytes]] = []
    for event_id in candidates:
        v = cal.events[event_id].current
        r = v.resource
        if single and not v.cancelled and r.get("recurrence") and match(v):
            for occ in expand(r, tmin, tmax, limit=MAX_INSTANCES):
                inst = make_instance(r, occ)
                if inst["id"] in cal.events:
                    continue
                iv = Version(inst, v.seq, v.mtime_ms)
                rows.append((_start_key(iv), inst["id"], v.mtime_ms, iv.data))
        elif match(v):
            rows.append((_start_key(v), event_id, v.mtime_ms, v.data))
    return rows


def _start_key(v: Version) -> str:
    s = v.start()
    return s.isoformat() if s is not None else ""


def list_instances(
    cal: Calendar, role: str, master_id: str, params: Params, codec: TokenCodec, limits: Limits
) -> bytes:
    """events.instances: the instances of a recurring event (exceptions substituted)."""
    rec = cal.events.get(master_id)
    if rec is None:
        raise errors.not_found()
    if rec.current.cancelled:
        raise errors.deleted()
    limit = max_results(params, 250, 2500)
    show_deleted = flag(params, "showDeleted")
    tmin, tmax = _time(params, "timeMin"), _time(params, "timeMax")
    page = _page_state(params, codec, "i")
    master = rec.current.resource
    items: list[bytes] = []
    if master.get("recurrence"):
        for occ in expand(master, tmin, tmax, limit=MAX_INSTANCES):
            inst = make_instance(master, occ)
            exc = cal.events.get(inst["id"])
            if exc is None:
                items.append(dumps(inst))
            elif not exc.current.cancelled or show_deleted:
                items.append(exc.current.data)
    else:
        items.append(rec.current.data)
    offset = int(page.get("o", 0)) if page else 0
    head = _cal_head(cal, role)
    if offset + limit < len(items):
        head["nextPageToken"] = codec.encode({"k": "i", "f": fingerprint(params), "o": offset + limit})
    return _envelope(head, items[offset : offset + limit])


def calendar_entry(cal: Calendar, user: str, m: Membership) -> bytes:
    """One calendarListEntry as the given user sees it (or a ``deleted`` stub)."""
    etag = f'"{m.mtime_ms * 1000 + m.seq % 1000}"'
    if m.role is None:
        return dumps({"kind": "calendar#calendarListEntry", "etag": etag, "id": cal.id, "deleted": True})
    entry: dict[str, Any] = {
        "kind": "calendar#calendarListEntry",
        "etag": etag,
        "id": cal.id,
        "summary": cal.summary,
    }
    if cal.description is not None:
        entry["description"] = cal.description
    entry.update(
        {
            "timeZone": cal.time_zone,
            "colorId": "14",
            "backgroundColor": "#9fe1e7",
            "foregroundColor": "#000000",
            "selected": True,
            "accessRole": m.role,
            "defaultReminders": cal.default_reminders,
        }
    )
    if m.hidden:
        entry["hidden"] = True
    if cal.id == user:
        entry["primary"] = True
    entry["conferenceProperties"] = {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}
    return dumps(entry)


_ROLE_RANK = {"freeBusyReader": 0, "reader": 1, "writer": 2, "owner": 3}


def list_calendars(
    user: str,
    entries: dict[str, Membership],
    calendars: dict[str, Calendar],
    removed: dict[str, Calendar],
    head_seq: int,
    generation: str,
    params: Params,
    codec: TokenCodec,
    limits: Limits,
) -> bytes:
    """calendarList.list for ``user``, with its own sync token and deleted entries."""
    has_sync = one(params, "syncToken") is not None
    if has_sync and "minAccessRole" in params:
        raise errors.invalid("The parameter minAccessRole cannot be used with syncToken.", "minAccessRole")
    limit = max_results(params, 100, 250)
    show_deleted = flag(params, "showDeleted")
    show_hidden = flag(params, "showHidden")
    min_role = one(params, "minAccessRole")
    page = _page_state(params, codec, "cp")
    snapshot = int(page["s"]) if page else head_seq
    tseq = _sync_seq(params, codec, "cl", user, generation, limits, head_seq) if has_sync else -1
    rows: list[tuple[str, bytes]] = []
    for cal_id in sorted(entries):
        m = entries[cal_id]
        if m.seq <= tseq:
            continue
        cal = calendars.get(cal_id) or removed.get(cal_id)
        if cal is None:
            continue
        if m.role is None and not (has_sync or show_deleted):
            continue
        if m.hidden and m.role is not None and not show_hidden:
            continue
        if min_role and m.role is not None and _ROLE_RANK.get(m.role, 0) < _ROLE_RANK.get(min_role, 0):
            continue
        rows.append((cal_id, calendar_entry(cal, user, m)))
    after = page.get("a") if page else None
    if after is not None:
        rows = [r for r in rows if r[0] > after]
    head: dict[str, Any] = {"kind": "calendar#calendarList", "etag": f'"p{head_seq:x}"'}
    if len(rows) > limit:
        rows = rows[:limit]
        head["nextPageToken"] = codec.encode(
            {"k": "cp", "f": fingerprint(params), "s": snapshot, "a": rows[-1][0]}
        )
    else:
        head["nextSyncToken"] = codec.encode(
            {"k": "cl", "c": user, "g": generation, "s": snapshot, "i": limits.now_ms}
        )
    return _envelope(head, [r[1] for r in rows])
