"""Generated calendars and events, so a large sync can be rehearsed from the shell.

Why: ``reconciler emulator --calendars N --events M`` should give N calendars of M
realistic events each without a hand-written seed file. The same ``seed`` gives
the same calendars and the same events, ids included (etags and ``updated`` come
from the emulator, as from Google, and differ between runs).

Events are created like ``events.insert`` with a client-chosen id (the emulator fills
etag, iCalUID, created, updated, creator, organizer; choosing the id also spares the
emulator its random id, a third of an insert's cost): timed ones within a year around the
emulator's "now", a tenth all-day, a twentieth weekly series, most with a few
attendees, some with a description and a location.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from .emulator import Emulator

_TOPICS = ("Quarterly planning", "1:1", "Design review", "Incident retro", "Customer call",
           "Hiring sync", "Budget", "Roadmap", "Standup", "Offsite prep", "Lunch 🍜",
           "Release 🚀", "Interview", "Training", "All hands")
_PEOPLE = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")
_ROOMS = ("Room 4.12", "Room 1.01", "Main hall", "Café", "Online")
_ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo")


def calendar_id(index: int) -> str:
    """The id of generated calendar number ``index`` (1-based)."""
    return f"generated-{index:04d}@group.calendar.google.com"


def event_body(rng: random.Random, now: Any, user: str) -> dict[str, Any]:
    """One realistic ``events.insert`` body drawn from ``rng``."""
    topic = rng.choice(_TOPICS)
    day = now + timedelta(days=rng.randint(-180, 180))
    body: dict[str, Any] = {"summary": f"{topic} #{rng.randint(1, 9999)}"}
    if rng.random() < 0.1:
        start = day.date()
        body["start"] = {"date": start.isoformat()}
        body["end"] = {"date": (start + timedelta(days=rng.choice((1, 1, 2, 3)))).isoformat()}
    else:
        start = day.replace(hour=rng.randint(7, 18), minute=rng.choice((0, 15, 30, 45)),
                            second=0, microsecond=0)
        end = start + timedelta(minutes=rng.choice((15, 30, 45, 60, 90, 120)))
        zone = rng.choice(_ZONES)
        body["start"] = {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "timeZone": zone}
        body["end"] = {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "timeZone": zone}
        if rng.random() < 0.05:
            body["recurrence"] = [f"RRULE:FREQ=WEEKLY;COUNT={rng.randint(2, 20)}"]
    if rng.random() < 0.7:
        people = rng.sample(_PEOPLE, rng.randint(1, 5))
        body["attendees"] = [{"email": user, "responseStatus": "accepted", "self": True}] + [
            {"email": f"{p}@example.com",
             "responseStatus": rng.choice(("accepted", "needsAction", "tentative", "declined"))}
            for p in people]
    if rng.random() < 0.4:
        body["location"] = rng.choice(_ROOMS)
    if rng.random() < 0.3:
        body["description"] = f"Agenda for {topic.lower()}:\n- open items\n- decisions\n- next steps"
    return body


def generate(emu: Emulator, calendars: int, events: int, seed: int = 0) -> list[str]:
    """Create ``calendars`` calendars owned by the default user, ``events`` events in each.

    Returns the ids of the calendars it created (:func:`calendar_id` 1 to N). One
    that is already there (loaded with ``--state``) is kept as it is, so a restart
    with the same options changes nothing. The calendars are in the default user's
    calendarList, so ``discover = true`` finds them.
    """
    rng = random.Random(seed)
    user = emu.default_user
    now = emu.clock.now()
    created: list[str] = []
    for k in range(1, calendars + 1):
        cal = calendar_id(k)
        zone = rng.choice(_ZONES)
        if cal in emu.calendars:
            continue
        emu.add_calendar(cal, summary=f"Generated {k}", owners=[user], time_zone=zone)
        created.append(cal)
        rng_cal = random.Random(f"{seed}:{k}")  # each calendar's events: its own stream
        for _ in range(events):
            body = event_body(rng_cal, now, user)
            body["id"] = format(rng_cal.getrandbits(104), "026x")  # base32hex, 26 like Google's
            emu.insert_event(cal, body)
    return created
