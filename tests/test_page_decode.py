"""Decoding an events page once: narrow fields for the rule, raw bytes for the store.

Properties over generated items (Hypothesis): each item's narrow dict equals
the full item restricted to the narrow fields, and its raw bytes decode to the
full item. Hostile pages: what msgspec cannot split falls back to the general
decoder (never a failed page); an undecodable item is refused alone.
End to end: the mirror stores the bytes the server sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.emulator import Emulator
from reconciler.google.pages import NARROW_FIELDS, RawItem, decode_events_page
from reconciler.once import run_once
from reconciler.store import calendars
from reconciler.store.events import dump_raw
from reconciler.store.models import Event
from tests.helpers import assert_mirror_exact, config_for, write_config

TEAM = "team@group.calendar.google.com"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)
keys = st.sampled_from([*NARROW_FIELDS, "description", "attendees", "reminders", "x"])
items = st.dictionaries(keys, json_values, max_size=10)


@settings(max_examples=200, deadline=None)
@given(st.lists(items, max_size=8), st.sampled_from([None, "tok"]))
def test_each_item_keeps_its_bytes_and_its_narrow_fields(page_items: list[dict[str, Any]],
                                                         token: str | None) -> None:
    envelope: dict[str, Any] = {"kind": "calendar#events", "items": page_items,
                                "updated": "2025-01-01T00:00:00.000Z"}
    if token:
        envelope["nextPageToken"] = token
    page = decode_events_page(orjson.dumps(envelope))
    assert page is not None
    assert page.get("nextPageToken") == token and page["updated"] == envelope["updated"]
    assert None not in page["items"]  # nothing refused
    for got, want in zip(page["items"], page_items, strict=True):
        assert isinstance(got, RawItem)
        assert dict(got) == {k: v for k, v in want.items() if k in NARROW_FIELDS}
        assert orjson.loads(got.raw) == want == got.full()
        assert dump_raw(got) == orjson.dumps(want).decode()
        for key in want:
            assert got[key] == want[key]  # also fields outside the narrow set


def test_an_item_that_is_not_an_object_is_handed_on_for_the_planner_to_count() -> None:
    page = decode_events_page(b'{"items":[1,"x",{"id":"a"}]}')
    assert page is not None
    assert page["items"][:2] == [1, "x"] and page["items"][2] == {"id": "a"}


def test_pages_msgspec_cannot_split_fall_back_instead_of_failing() -> None:
    lone = b'{"items":[{"id":"a","summary":"\\ud800"}]}'
    deep = b'{"items":[{"id":"a","x":' + b"[" * 5000 + b"]" * 5000 + b"}]}"
    for body in (lone, deep, b"<html>", b"[]", b'{"items":{}}', b""):
        assert decode_events_page(body) is None
    # The general decoder keeps a lone surrogate as an escape (valid UTF-8).
    assert json.loads(lone)["items"][0]["summary"] == "\ud800"


def test_nul_and_escapes_are_stored_as_sent() -> None:
    page = decode_events_page(b'{"items":[{"id":"a","summary":"n\\u0000l \\u00e9 \\ud83d\\ude00",'
                              b'"n":123456789012345678901234567890}]}')
    assert page is not None
    item = page["items"][0]
    assert item["summary"] == "n\x00l \u00e9 \U0001f600"
    assert dump_raw(item) == ('{"id":"a","summary":"n\\u0000l \\u00e9 \\ud83d\\ude00",'
                              '"n":123456789012345678901234567890}')
    assert item["n"] == 123456789012345678901234567890


def test_the_mirror_stores_the_bytes_the_server_sent(calendar_emulator: Emulator,
                                                     tmp_path: Path) -> None:
    emu = calendar_emulator
    emu.add_calendar(TEAM)
    for n in range(30):
        emu.insert_event(TEAM, {"summary": f"e{n} \u00e9\u00e8 \U0001f600", "description": "d" * n,
                                "start": {"dateTime": "2025-03-01T10:00:00Z"},
                                "end": {"dateTime": "2025-03-01T11:00:00Z"},
                                "attendees": [{"email": f"a{n}@x.org"}]})
    config = config_for(emu, write_config(tmp_path, f"sqlite:///{tmp_path}/m.db",
                                          sync={"page_size": 7}))
    emu.clear_request_log()
    assert run_once(config) == 0
    assert_mirror_exact(emu, TEAM)
    row = calendars.get_calendar(TEAM)
    assert row is not None
    stored = {e.event_id: e.raw for e in Event.select().where(Event.calendar == row.id)}
    truth = {e["id"]: e for e in emu.events(TEAM)}
    for event_id, raw in stored.items():
        assert json.loads(raw) == truth[event_id]
        assert "\n" not in raw and "\U0001f600" in raw  # compact, UTF-8 kept as sent
    assert all(r.params.get("prettyPrint") == ["false"] for r in emu.request_log
               if r.method == "events.list")
