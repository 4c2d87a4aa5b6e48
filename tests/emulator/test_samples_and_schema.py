"""Real captures round-trip exactly; everything served matches the discovery schemas."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import googleapiclient
import pytest
from emulator_helpers import SAMPLES, timed

from reconciler.emulator.seed import seed_demo

DISCOVERY = json.loads(
    (Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / "calendar.v3.json").read_text(
        encoding="utf-8"
    )
)
SCHEMAS = DISCOVERY["schemas"]


def sample_events() -> list[tuple[str, list[dict[str, Any]]]]:
    out = []
    for path in sorted(SAMPLES.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if path.name.startswith("event-"):
            out.append((path.name, [data]))
        elif path.name.startswith("list-"):
            out.append((path.name, data["items"]))
    return out


@pytest.mark.parametrize(("name", "items"), sample_events(), ids=[n for n, _ in sample_events()])
def test_sample_round_trip(emu: Any, svc: Any, name: str, items: list[dict[str, Any]]) -> None:
    cal = "samples@group.calendar.google.com"
    emu.add_calendar(cal)
    for item in items:
        emu.put_raw(cal, item)
    served = svc.events().list(calendarId=cal, showDeleted=True, maxResults=2500).execute()["items"]
    want = {i["id"]: i for i in items}  # last version of an id wins
    assert sorted(served, key=lambda i: i["id"]) == [want[k] for k in sorted(want)]
    for event_id, item in want.items():
        assert svc.events().get(calendarId=cal, eventId=event_id).execute() == item
    assert emu.events(cal) == [want[k] for k in sorted(want)]


def check(value: Any, schema: dict[str, Any], path: str) -> None:
    if "$ref" in schema:
        schema = SCHEMAS[schema["$ref"]]
    kind = schema.get("type")
    if kind == "string":
        assert isinstance(value, str), path
        fmt = schema.get("format")
        if fmt == "date-time":
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value), path
        elif fmt == "int64":
            assert re.fullmatch(r"-?\d+", value), path
        elif fmt == "date":
            assert re.fullmatch(r"\d{4}-\d\d-\d\d", value), path
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), path
    elif kind == "boolean":
        assert isinstance(value, bool), path
    elif kind == "array":
        assert isinstance(value, list), path
        for i, v in enumerate(value):
            check(v, schema["items"], f"{path}[{i}]")
    elif kind == "object":
        assert isinstance(value, dict), path
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            if k in props:
                check(v, props[k], f"{path}.{k}")
            else:
                assert extra is not None, f"undocumented field {path}.{k}"
                check(v, extra, f"{path}.{k}")


def test_served_resources_match_discovery_schemas(emu: Any, svc: Any) -> None:
    seed_demo(emu)
    ev = svc.events().insert(calendarId="primary", body=timed("t", attendees=[{"email": "a@b.c"}])).execute()
    svc.events().delete(calendarId="primary", eventId=ev["id"]).execute()
    for cal in svc.calendarList().list(showDeleted=True, showHidden=True).execute()["items"]:
        check(cal, {"$ref": "CalendarListEntry"}, "entry")
        full = svc.events().list(calendarId=cal["id"], showDeleted=True).execute()
        check(full, {"$ref": "Events"}, "events")
        single = svc.events().list(calendarId=cal["id"], singleEvents=True).execute()
        check(single, {"$ref": "Events"}, "single")
        inc = svc.events().list(calendarId=cal["id"], syncToken=full["nextSyncToken"]).execute()
        check(inc, {"$ref": "Events"}, "incremental")
        check(svc.calendars().get(calendarId=cal["id"]).execute(), {"$ref": "Calendar"}, "calendar")
        for item in full["items"]:
            if item.get("recurrence"):
                inst = svc.events().instances(calendarId=cal["id"], eventId=item["id"]).execute()
                check(inst, {"$ref": "Events"}, "instances")
    check(svc.calendarList().list().execute(), {"$ref": "CalendarList"}, "calendarList")
    ch = (
        svc.events()
        .watch(
            calendarId="primary",
            body={"id": "c1", "type": "web_hook", "address": "http://127.0.0.1:9/hook", "token": "t"},
        )
        .execute()
    )
    check(ch, {"$ref": "Channel"}, "channel")
