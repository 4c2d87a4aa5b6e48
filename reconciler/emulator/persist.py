"""Saving and loading the emulator's whole state as one JSON file (``--state``).

The file keeps every event version exactly as served plus the modification
sequence numbers and the token secret, so sync tokens issued before a restart
stay valid after it. It is an internal snapshot format, not the seed format.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .emulator import Emulator
from .model import Calendar, EventRecord, Membership, Version

FORMAT = 1


def _cal_state(cal: Calendar) -> dict[str, Any]:
    return {
        "id": cal.id,
        "summary": cal.summary,
        "timeZone": cal.time_zone,
        "description": cal.description,
        "owners": cal.owners,
        "shares": cal.shares,
        "defaultReminders": cal.default_reminders,
        "created_ms": cal.created_ms,
        "updated_ms": cal.updated_ms,
        "seq": cal.seq,
        "generation": cal.generation,
        "events": [
            {
                "resource": r.current.resource,
                "seq": r.current.seq,
                "mtime_ms": r.current.mtime_ms,
                "live": r.live,
            }
            for r in (cal.events[i] for i in cal.ids)
        ],
    }


def _cal_from(data: dict[str, Any]) -> Calendar:
    cal = Calendar(
        data["id"],
        data["summary"],
        data.get("timeZone", "UTC"),
        data.get("description"),
        list(data.get("owners", [])),
        dict(data.get("shares", {})),
        list(data.get("defaultReminders", [])),
        created_ms=data.get("created_ms", 0),
        updated_ms=data.get("updated_ms", 0),
        seq=data.get("seq", 0),
        generation=data.get("generation", "g0"),
    )
    rows = sorted(data.get("events", []), key=lambda e: e["seq"])
    for row in rows:
        v = Version(row["resource"], row["seq"], row["mtime_ms"])
        cal.events[row["resource"]["id"]] = EventRecord(row["resource"]["id"], v, row.get("live"))
        cal.log_seqs.append(v.seq)
        cal.log_ids.append(row["resource"]["id"])
    cal.ids = sorted(cal.events)
    return cal


def snapshot(emu: Emulator) -> dict[str, Any]:
    """The whole state as a JSON-able dict."""
    with emu.lock:
        return {
            "format": FORMAT,
            "secret": emu.codec.secret.hex(),
            "default_user": emu.default_user,
            "acl_seq": emu.acl_seq,
            "acl_generation": emu.acl_generation,
            "calendars": [_cal_state(c) for c in emu.calendars.values()],
            "removed": [_cal_state(c) for c in emu.removed.values()],
            "memberships": {
                u: {c: [m.seq, m.mtime_ms, m.role, m.hidden] for c, m in entries.items()}
                for u, entries in emu.memberships.items()
            },
            "revoked_refresh": sorted(emu.revoked_refresh),
            "revoked_access": sorted(emu.revoked_access),
        }


def restore(emu: Emulator, state: dict[str, Any]) -> None:
    """Replace ``emu``'s state by a :func:`snapshot`."""
    if state.get("format") != FORMAT:
        raise ValueError(f"unsupported state format {state.get('format')!r}")
    with emu.lock:
        emu.codec.secret = bytes.fromhex(state["secret"])
        emu.acl_seq = state.get("acl_seq", 0)
        emu.acl_generation = state.get("acl_generation", emu.acl_generation)
        emu.calendars = {c["id"]: _cal_from(c) for c in state.get("calendars", [])}
        emu.removed = {c["id"]: _cal_from(c) for c in state.get("removed", [])}
        emu.memberships = {
            u: {c: Membership(m[0], m[1], m[2], bool(m[3])) for c, m in entries.items()}
            for u, entries in state.get("memberships", {}).items()
        }
        emu.revoked_refresh = set(state.get("revoked_refresh", []))
        emu.revoked_access = set(state.get("revoked_access", []))


def save(emu: Emulator, path: str | Path) -> None:
    """Write the state atomically to ``path``."""
    path = Path(path)
    data = json.dumps(snapshot(emu), ensure_ascii=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(data)
    os.replace(tmp, path)


def load(emu: Emulator, path: str | Path) -> None:
    """Load a state file written by :func:`save`."""
    restore(emu, json.loads(Path(path).read_text(encoding="utf-8")))
