"""Realistic event resources for the benchmarks, generated deterministically.

Each resource is shaped like the captures in tests/data/samples (creator,
organizer, attendees, conference data, reminders, a description) and weighs
about 1-2 KB as JSON, so parse, derive and write costs are those of a real
calendar rather than of ``{"id": ...}`` stubs. The summary carries the version
number, which lets a client that drops etags (gcal-sync) still be checked.
Ids come out sorted, so the emulator's sorted id list only ever appends.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

_NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")
_TOPICS = ("Quarterly planning", "1:1", "Design review", "Incident retro", "Customer call",
           "Hiring sync", "Budget", "Roadmap", "Standup", "Offsite prep")
_DESCRIPTION = (
    "Agenda:\n- status of open items\n- decisions needed this week\n- next steps\n\n"
    "Join with Google Meet: https://meet.google.com/abc-defg-hij\nOr dial: +1 650-555-0100 "
    "PIN: 123 456 789#\n\nNotes doc: https://docs.google.com/document/d/1AbCdEfGhIjKlMnOp/edit"
)
BASE = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def event_id(n: int) -> str:
    """The n-th event id: base32hex-like, fixed width, sorted by n."""
    return f"ev{n:08d}" + hashlib.sha1(str(n).encode()).hexdigest()[:18]


def etag_for(n: int, version: int) -> str:
    """A Google-shaped etag that changes with every version."""
    return f'"{3_100_000_000_000_000 + n * 16 + version}"'


def _stamp(ms: int) -> str:
    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def make_event(calendar_id: str, n: int, version: int = 0) -> dict[str, Any]:
    """Event number ``n`` of a calendar at ``version`` (0 = as first seeded)."""
    eid = event_id(n)
    who = _NAMES[n % len(_NAMES)]
    start = BASE + dt.timedelta(hours=n % 5000, minutes=30 * (n % 2))
    end = start + dt.timedelta(minutes=30 + 30 * (n % 3))
    attendees = [{"email": f"{_NAMES[(n + k) % len(_NAMES)]}@example.com",
                  "responseStatus": ("accepted", "needsAction", "tentative")[k % 3]}
                 for k in range(2 + n % 4)]
    attendees[0]["organizer"] = True
    return {
        "kind": "calendar#event",
        "etag": etag_for(n, version),
        "id": eid,
        "status": "confirmed",
        "htmlLink": f"https://www.google.com/calendar/event?eid={eid}Y2FsZW5kYXJAZXhhbXBsZS5jb20",
        "created": _stamp(n),
        "updated": _stamp(n + 1000 * version + 1),
        "summary": f"{_TOPICS[n % len(_TOPICS)]} #{n} v{version}",
        "description": _DESCRIPTION,
        "location": "Room 4.12, Main building",
        "creator": {"email": f"{who}@example.com", "displayName": f"{who.title()} Example"},
        "organizer": {"email": calendar_id, "displayName": "Team", "self": True},
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "timeZone": "Europe/Berlin"},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "timeZone": "Europe/Berlin"},
        "iCalUID": f"{eid}@google.com",
        "sequence": version,
        "attendees": attendees,
        "hangoutLink": "https://meet.google.com/abc-defg-hij",
        "conferenceData": {
            "entryPoints": [{"entryPointType": "video", "uri": "https://meet.google.com/abc-defg-hij",
                             "label": "meet.google.com/abc-defg-hij"}],
            "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"},
            "conferenceId": "abc-defg-hij",
        },
        "reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": 10}]},
        "eventType": "default",
    }


def cancelled_stub(n: int, version: int) -> dict[str, Any]:
    """What Google lists for a deleted event: a four-key stub."""
    return {"kind": "calendar#event", "etag": etag_for(n, version), "id": event_id(n),
            "status": "cancelled"}
