"""Seeding: the ``demo`` data set and seed files.

Seed file format (JSON)::

    {
      "default_user": "user@example.com",            # optional
      "calendars": [
        {
          "id": "team@group.calendar.google.com",     # required
          "summary": "Team",                          # optional, default: the id
          "timeZone": "Europe/Berlin",                # optional, default "UTC"
          "description": "...",                      # optional
          "owners": ["user@example.com"],             # optional, default: [default_user]
          "shares": {"bob@example.com": "reader"},    # optional: user -> role
          "events": [ {raw resource}, ... ],          # stored verbatim (put_raw), served as is
          "insert": [ {event body}, ... ]             # created like events.insert (server fills
        }                                             # id, etag, created, updated, ...)
      ]
    }

``events`` is for exact captured resources (any shape: stubs, legacy etags);
``insert`` for hand-written bodies that should get realistic server fields.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from .emulator import Emulator
from .errors import ApiError


class SeedError(ValueError):
    """A seed that cannot be applied: one line naming the file and the calendar or event."""


def _event_name(entry: Any, index: int) -> str:
    if isinstance(entry, dict):
        if isinstance(entry.get("id"), str):
            return f"event {entry['id']!r}"
        if isinstance(entry.get("summary"), str):
            return f"event #{index + 1} ({entry['summary']!r})"
    return f"event #{index + 1}"


def _list_of_objects(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise SeedError(f"{where}: must be an array of JSON objects")
    return value


def _apply_calendar(emu: Emulator, c: dict[str, Any], where: str) -> None:
    cal_id = c.get("id")
    if not isinstance(cal_id, str) or not cal_id:
        raise SeedError(f'{where}: a calendar needs a string "id"')
    where = f"calendar {cal_id!r}"
    events = _list_of_objects(c.get("events", []), f'{where}: "events"')
    bodies = _list_of_objects(c.get("insert", []), f'{where}: "insert"')
    for index, resource in enumerate(events):
        if not isinstance(resource.get("id"), str):
            raise SeedError(f'{where}: {_event_name(resource, index)} in "events" has no string '
                            '"id" (entries of "events" are stored verbatim; put bodies the '
                            'emulator should give an id under "insert")')
    try:
        if cal_id not in emu.calendars:
            emu.add_calendar(
                cal_id,
                summary=c.get("summary"),
                owners=c.get("owners"),
                time_zone=c.get("timeZone", "UTC"),
                description=c.get("description"),
                default_reminders=c.get("defaultReminders"),
            )
        for user, role in (c.get("shares") or {}).items():
            emu.share(cal_id, user, role)
    except (ApiError, TypeError, ValueError, AttributeError) as exc:
        raise SeedError(f"{where}: {exc}") from None
    for index, resource in enumerate(events):
        try:
            emu.put_raw(cal_id, resource)
        except (ApiError, TypeError, ValueError) as exc:
            raise SeedError(f'{where}: {_event_name(resource, index)} in "events": {exc}') from None
    for index, body in enumerate(bodies):
        try:
            emu.insert_event(cal_id, body)
        except (ApiError, TypeError, ValueError) as exc:
            raise SeedError(f'{where}: {_event_name(body, index)} in "insert": {exc}') from None


def apply_seed(emu: Emulator, seed: dict[str, Any]) -> None:
    """Create the calendars and events described by a seed document.

    A document the emulator cannot apply raises :class:`SeedError` naming the
    calendar and the event (an event of ``events`` without an id, a body
    ``events.insert`` refuses, a key of the wrong type).
    """
    if not isinstance(seed, dict):
        raise SeedError('must be a JSON object {"calendars": [...]}')
    if "default_user" in seed:
        emu.default_user = str(seed["default_user"])
    for index, c in enumerate(_list_of_objects(seed.get("calendars", []), '"calendars"')):
        _apply_calendar(emu, c, f"calendars[{index}]")


def load_seed_file(emu: Emulator, path: str | Path) -> None:
    """Apply the seed file at ``path``; every mistake is one :class:`SeedError` line
    naming the file (missing, unreadable, not JSON) and the calendar and event."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SeedError(f"seed file {path}: not found") from None
    except UnicodeDecodeError:
        raise SeedError(f"seed file {path}: not UTF-8 text") from None
    except OSError as exc:
        raise SeedError(f"seed file {path}: cannot read: {exc.strerror or exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SeedError(f"seed file {path}: line {exc.lineno} column {exc.colno}: "
                        f"invalid JSON: {exc.msg}") from None
    try:
        apply_seed(emu, document)
    except SeedError as exc:
        raise SeedError(f"seed file {path}: {exc}") from None


def _dt(base: Any, days: int, hour: int, minute: int = 0) -> str:
    t = (base + timedelta(days=days)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def seed_demo(emu: Emulator) -> None:
    """Work (the default user's primary), family and a shared team calendar, with a mix
    of timed, all-day, recurring (one exception, one cancelled instance), emoji and
    attendee events, dated around the emulator's "now"."""
    user = emu.default_user
    now = emu.clock.now()
    monday = now - timedelta(days=now.weekday())
    family = "family7q2c5m1v@group.calendar.google.com"
    team = "team@group.calendar.google.com"
    if user not in emu.calendars:
        emu.add_calendar(
            user,
            summary="Work",
            owners=[user],
            time_zone="Europe/Berlin",
            default_reminders=[{"method": "popup", "minutes": 10}],
        )
    emu.add_calendar(family, summary="Family", owners=[user], time_zone="Europe/Berlin")
    emu.add_calendar(team, summary="Team", owners=["alice@example.com"], time_zone="UTC")
    emu.share(team, user, "writer")
    tz = "Europe/Berlin"
    emu.insert_event(
        user,
        {
            "summary": "Quarterly planning",
            "location": "Room 4.12",
            "start": {"dateTime": _dt(monday, 1, 10), "timeZone": tz},
            "end": {"dateTime": _dt(monday, 1, 12), "timeZone": tz},
            "attendees": [
                {"email": user, "responseStatus": "accepted", "self": True},
                {"email": "bob@example.com", "responseStatus": "needsAction"},
                {"email": "carol@example.com", "responseStatus": "tentative"},
            ],
        },
    )
    standup = emu.insert_event(
        user,
        {
            "summary": "Standup",
            "start": {"dateTime": _dt(monday, 0, 9, 30), "timeZone": tz},
            "end": {"dateTime": _dt(monday, 0, 9, 45), "timeZone": tz},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=10"],
        },
    )
    emu.insert_event(
        user,
        {
            "summary": "🚀 Release day",
            "start": {"date": (monday + timedelta(days=4)).date().isoformat()},
            "end": {"date": (monday + timedelta(days=5)).date().isoformat()},
            "transparency": "transparent",
        },
    )
    from .events import instance_id
    from .recurrence import expand

    occ = expand(standup, limit=3)
    if len(occ) >= 3:
        emu.patch_event(
            user,
            instance_id(standup["id"], occ[1].original),
            {
                "summary": "Standup (moved)",
                "start": {"dateTime": _dt(monday, 1, 11), "timeZone": tz},
                "end": {"dateTime": _dt(monday, 1, 11, 15), "timeZone": tz},
            },
        )
        emu.delete_event(user, instance_id(standup["id"], occ[2].original))
    emu.insert_event(
        family,
        {
            "summary": "Grandma's birthday 🎂",
            "start": {"date": (monday + timedelta(days=6)).date().isoformat()},
            "end": {"date": (monday + timedelta(days=7)).date().isoformat()},
            "recurrence": ["RRULE:FREQ=YEARLY"],
        },
    )
    emu.insert_event(
        family,
        {
            "summary": "Swimming lessons",
            "description": "Bring towels",
            "start": {"dateTime": _dt(monday, 2, 17), "timeZone": tz},
            "end": {"dateTime": _dt(monday, 2, 18), "timeZone": tz},
            "recurrence": [
                "RRULE:FREQ=WEEKLY;BYDAY=WE;UNTIL="
                + (monday + timedelta(weeks=12)).strftime("%Y%m%dT000000Z")
            ],
        },
    )
    emu.insert_event(
        team,
        {
            "summary": "Team offsite",
            "start": {"date": (monday + timedelta(days=14)).date().isoformat()},
            "end": {"date": (monday + timedelta(days=16)).date().isoformat()},
        },
        user="alice@example.com",
    )
    emu.insert_event(
        team,
        {
            "summary": "Retro",
            "start": {"dateTime": _dt(monday, 4, 15) + "Z"},
            "end": {"dateTime": _dt(monday, 4, 16) + "Z"},
            "attendees": [
                {"email": "alice@example.com", "organizer": True, "responseStatus": "accepted"},
                {"email": user, "responseStatus": "needsAction"},
            ],
        },
        user="alice@example.com",
    )
