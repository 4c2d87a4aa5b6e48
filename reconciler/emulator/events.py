"""Write rules for events: what insert/patch/update/delete do to a calendar.

These functions hold Google's semantics in one place (server-set fields, etag
and ``updated`` on every write, ``sequence`` bumped only on significant changes,
client ids, restores, recurring instances and cancelled stubs) and are used by
both the HTTP API and the in-process control API, so both follow the same rules.
Callers hold the emulator lock.
"""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from . import errors
from .clock import format_ms
from .ids import instance_id, is_valid_event_id, new_event_id, split_instance_id
from .model import Calendar, EventRecord, Version, local_datetime
from .recurrence import Occurrence, expand

SERVER_KEYS = frozenset({"kind", "etag", "id", "status", "htmlLink", "created", "updated"})
SIGNIFICANT = ("start", "end", "recurrence", "status")
WRITE_ROLES = frozenset({"owner", "writer"})


def make_etag(ms: int, seq: int) -> str:
    """A quoted 16-digit etag unique per calendar write, shaped like Google's."""
    return f'"{ms * 1000 + seq % 1000}"'


def html_link(event_id: str, calendar_id: str) -> str:
    """The ``htmlLink`` Google would give (eid = base64url of "id calendar")."""
    eid = base64.urlsafe_b64encode(f"{event_id} {calendar_id}".encode()).decode().rstrip("=")
    return f"https://www.google.com/calendar/event?eid={eid}"


def check_can_write(cal: Calendar, user: str) -> None:
    """Raise 403 unless ``user`` may write to ``cal``."""
    if cal.role_of(user) not in WRITE_ROLES:
        raise errors.ApiError(
            403,
            "requiredAccessLevel",
            "You need to have writer access to this calendar.",
            "calendar",
        )


def make_instance(master: dict[str, Any], occ: Occurrence) -> dict[str, Any]:
    """The resource of one generated (unmodified) instance of a recurring ``master``."""
    res = {k: v for k, v in master.items() if k != "recurrence"}
    res["id"] = instance_id(str(master["id"]), occ.original)
    res["start"] = occ.start
    res["end"] = occ.end
    res["recurringEventId"] = master["id"]
    res["originalStartTime"] = dict(occ.start)
    return res


def live_master(cal: Calendar, master_id: str) -> dict[str, Any] | None:
    """The live recurring master ``master_id`` of ``cal``, if there is one."""
    rec = cal.events.get(master_id)
    if rec is None or rec.current.cancelled or not rec.current.resource.get("recurrence"):
        return None
    return rec.current.resource


def virtual_instance(cal: Calendar, event_id: str) -> dict[str, Any] | None:
    """Resolve an instance id with no stored record to the generated instance."""
    parts = split_instance_id(event_id)
    if parts is None:
        return None
    master = live_master(cal, parts[0])
    if master is None:
        return None
    orig = parts[1]
    lo = orig if isinstance(orig, datetime) else datetime(*orig.timetuple()[:3], tzinfo=UTC)
    for occ in expand(master, lo - timedelta(milliseconds=1), lo + timedelta(days=1), limit=4):
        if occ.original == orig:
            return make_instance(master, occ)
    return None


def _validate_times(body: dict[str, Any]) -> None:
    for key, label in (("start", "start"), ("end", "end")):
        value = body.get(key)
        if not isinstance(value, dict) or not ("date" in value or "dateTime" in value):
            raise errors.required(f"Missing {label} time.")
    probe = Version({"start": body["start"], "end": body["end"]}, 0, 0)
    s, e = probe.start(), probe.end()
    if s is None:
        raise errors.invalid("Invalid start time.")
    if e is None:
        raise errors.invalid("Invalid end time.")
    if e < s:
        raise errors.ApiError(400, "timeRangeEmpty", "The specified time range is empty.", "calendar")
    for key in ("start", "end"):
        value = body[key]
        if "dateTime" in value:
            dt = local_datetime(str(value["dateTime"]), value.get("timeZone"))
            body[key] = dict(value, dateTime=dt.isoformat().replace("+00:00", "Z"))


def _check_sequence(body: dict[str, Any], stored: dict[str, Any] | None) -> None:
    if stored is None or "sequence" not in body:
        return
    given, current = body["sequence"], stored.get("sequence", 0)
    if not isinstance(given, int) or isinstance(given, bool):
        raise errors.invalid("Invalid sequence value.")
    if isinstance(current, int) and given < current:
        raise errors.invalid(
            "Invalid sequence value. The specified sequence number is below the current "
            "sequence number of the resource."
        )


def _next_sequence(body: dict[str, Any], base: dict[str, Any], new: dict[str, Any]) -> int:
    base_seq = base.get("sequence", 0)
    base_seq = base_seq if isinstance(base_seq, int) else 0
    given = body.get("sequence")
    if isinstance(given, int) and given > base_seq:
        return given
    significant = any(new.get(k) != base.get(k) for k in SIGNIFICANT)
    return base_seq + (1 if significant else 0)


def _commit(
    cal: Calendar,
    event_id: str,
    fields: dict[str, Any],
    *,
    created: str | None,
    sequence: int,
    user: str,
    now_ms: int,
) -> Version:
    """Stamp server fields onto ``fields`` and store it as the new current version."""
    seq, ms = cal.next_write(now_ms)
    status = fields.get("status", "confirmed")
    res: dict[str, Any] = {
        "kind": "calendar#event",
        "etag": make_etag(ms, seq),
        "id": event_id,
        "status": status,
        "htmlLink": html_link(event_id, cal.id),
        "created": created or format_ms(ms),
        "updated": format_ms(ms),
    }
    for k, v in fields.items():
        if k not in SERVER_KEYS:
            res[k] = v
    res.setdefault("creator", {"email": user})
    res.setdefault("organizer", {"email": user})
    res.setdefault("iCalUID", f"{event_id}@google.com")
    res["sequence"] = sequence
    res.setdefault("reminders", {"useDefault": True})
    res.setdefault("eventType", "default")
    if status == "cancelled":
        return _store_stub(cal, event_id, res, seq, ms)
    version = Version(res, seq, ms)
    cal.store(event_id, version, res)
    return version


def _store_stub(
    cal: Calendar,
    event_id: str,
    live: dict[str, Any],
    seq: int,
    ms: int,
    series_live: bool = True,
) -> Version:
    stub: dict[str, Any] = {
        "kind": "calendar#event",
        "etag": make_etag(ms, seq),
        "id": event_id,
        "status": "cancelled",
    }
    master_id = live.get("recurringEventId")
    if series_live and master_id and "originalStartTime" in live and live_master(cal, str(master_id)):
        stub["recurringEventId"] = master_id
        stub["originalStartTime"] = live["originalStartTime"]
    version = Version(stub, seq, ms)
    cal.store(event_id, version, dict(live, status="cancelled"))
    return version


def insert(cal: Calendar, body: dict[str, Any], user: str, now_ms: int) -> Version:
    """events.insert: create (or restore a deleted id) with server-set fields."""
    check_can_write(cal, user)
    if not isinstance(body, dict):
        raise errors.bad_request("Request body must be an object.")
    body = dict(body)
    _validate_times(body)
    event_id = body.get("id")
    created = None
    stored: dict[str, Any] | None = None
    if event_id is not None:
        if not isinstance(event_id, str) or not is_valid_event_id(event_id):
            raise errors.invalid("Invalid resource id value.")
        rec = cal.events.get(event_id)
        if rec is not None:
            if not rec.current.cancelled:
                raise errors.duplicate()
            stored = rec.live or rec.current.resource
            created = stored.get("created")
    else:
        event_id = new_event_id()
        while event_id in cal.events:
            event_id = new_event_id()
    _check_sequence(body, stored)
    fields = copy.deepcopy(body)
    base_seq = stored.get("sequence", 0) if stored else 0
    seq = body.get("sequence") if isinstance(body.get("sequence"), int) else None
    if seq is None:
        seq = (base_seq + 1) if stored else 0
    return _commit(cal, event_id, fields, created=created, sequence=seq, user=user, now_ms=now_ms)


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        elif v is None:
            out.pop(k, None)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _base_for_write(cal: Calendar, event_id: str) -> tuple[dict[str, Any], bool]:
    """The resource a patch/update starts from, and whether a record already exists."""
    rec: EventRecord | None = cal.events.get(event_id)
    if rec is None:
        inst = virtual_instance(cal, event_id)
        if inst is None:
            raise errors.not_found()
        return inst, False
    if rec.current.cancelled:
        base = rec.live if rec.live is not None else rec.current.resource
        return dict(base, status="cancelled"), True
    return rec.current.resource, True


def patch(cal: Calendar, event_id: str, body: dict[str, Any], user: str, now_ms: int) -> Version:
    """events.patch: merge ``body`` into the stored event (nested objects merged)."""
    check_can_write(cal, user)
    if not isinstance(body, dict):
        raise errors.bad_request("Request body must be an object.")
    base, _ = _base_for_write(cal, event_id)
    _check_sequence(body, base)
    new = _merge(base, body)
    if "start" in body or "end" in body:
        _validate_times(new)
    seq = _next_sequence(body, base, new)
    return _commit(cal, event_id, new, created=base.get("created"), sequence=seq, user=user, now_ms=now_ms)


def update(cal: Calendar, event_id: str, body: dict[str, Any], user: str, now_ms: int) -> Version:
    """events.update: replace the event with ``body``, keeping server-owned fields."""
    check_can_write(cal, user)
    if not isinstance(body, dict):
        raise errors.bad_request("Request body must be an object.")
    base, _ = _base_for_write(cal, event_id)
    _check_sequence(body, base)
    body = dict(body)
    _validate_times(body)
    new = copy.deepcopy(body)
    for key in ("iCalUID", "creator", "organizer", "recurringEventId", "originalStartTime"):
        if key not in new and key in base:
            new[key] = base[key]
    if "status" not in new and base.get("status") == "cancelled":
        new["status"] = "cancelled"
    seq = _next_sequence(body, base, new)
    return _commit(cal, event_id, new, created=base.get("created"), sequence=seq, user=user, now_ms=now_ms)


def delete(cal: Calendar, event_id: str, user: str, now_ms: int) -> list[str]:
    """events.delete: replace the event by a cancelled stub; returns the ids touched."""
    check_can_write(cal, user)
    rec = cal.events.get(event_id)
    if rec is None:
        inst = virtual_instance(cal, event_id)
        if inst is None:
            raise errors.not_found()
        seq, ms = cal.next_write(now_ms)
        _store_stub(cal, event_id, inst, seq, ms)
        return [event_id]
    if rec.current.cancelled:
        raise errors.deleted()
    live = rec.current.resource
    touched = [event_id]
    if live.get("recurrence"):
        for other in list(cal.events.values()):
            r = other.current.resource
            if r.get("recurringEventId") == event_id and not other.current.cancelled:
                s2, ms2 = cal.next_write(now_ms)
                _store_stub(cal, other.id, r, s2, ms2, series_live=False)
                touched.append(other.id)
    seq, ms = cal.next_write(now_ms)
    _store_stub(cal, event_id, live, seq, ms)
    return touched


def put_raw(cal: Calendar, resource: dict[str, Any], now_ms: int) -> Version:
    """Store ``resource`` verbatim as the current version (logged as a modification)."""
    if not isinstance(resource, dict) or not isinstance(resource.get("id"), str):
        raise errors.bad_request("A raw resource needs a string id.")
    seq, ms = cal.next_write(now_ms)
    res = copy.deepcopy(resource)
    version = Version(res, seq, ms)
    cal.store(res["id"], version, None if version.cancelled else res)
    return version
