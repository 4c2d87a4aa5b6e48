"""Field-level diffs (reconciler.diff): examples and Hypothesis properties."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler.diff import (
    VOLATILE,
    apply_diff,
    attendee_changes,
    changed_fields,
    describe,
    field_diff,
    raw_diff,
    truncate,
)

BASE = {"id": "e1", "etag": '"1"', "updated": "2024-01-01T00:00:00.000Z", "sequence": 0,
        "summary": "Standup", "status": "confirmed",
        "start": {"dateTime": "2024-01-02T09:00:00Z"}, "end": {"dateTime": "2024-01-02T09:15:00Z"}}


def test_rename_reports_summary_only() -> None:
    new = {**BASE, "etag": '"2"', "updated": "2024-01-01T01:00:00.000Z", "summary": "Daily"}
    assert changed_fields(BASE, new) == ["summary"]
    assert field_diff(BASE, new) == {"summary": {"before": "Standup", "after": "Daily"}}


def test_move_reports_start_and_end_with_sequence_in_detail() -> None:
    new = {**BASE, "etag": '"2"', "sequence": 1, "start": {"dateTime": "2024-01-02T10:00:00Z"},
           "end": {"dateTime": "2024-01-02T10:15:00Z"}}
    assert changed_fields(BASE, new) == ["end", "start"]
    diff = field_diff(BASE, new)
    assert sorted(diff) == ["end", "sequence", "start"]
    assert diff["sequence"] == {"before": 0, "after": 1}


def test_volatile_keys_alone_are_no_change() -> None:
    new = {**BASE, "etag": '"9"', "updated": "2030-01-01T00:00:00Z", "sequence": 5}
    assert changed_fields(BASE, new) == []
    assert field_diff(BASE, new) == {}


def test_added_and_removed_keys_keep_absent_sides_out() -> None:
    new = {k: v for k, v in BASE.items() if k != "summary"} | {"location": None}
    diff = field_diff(BASE, new)
    assert diff == {"summary": {"before": "Standup"}, "location": {"after": None}}


def test_declined_invitation_names_attendee_and_both_statuses() -> None:
    before = [{"email": "a@x", "responseStatus": "needsAction"},
              {"email": "b@x", "responseStatus": "accepted"}]
    after = [{"email": "b@x", "responseStatus": "accepted"},
             {"email": "a@x", "responseStatus": "declined"},
             {"id": "room1", "responseStatus": "accepted", "resource": True}]
    assert attendee_changes(before, after) == [
        {"attendee": "a@x", "change": "responseStatus", "before": "needsAction",
         "after": "declined"},
        {"attendee": "room1", "change": "added", "responseStatus": "accepted"},
    ]
    assert attendee_changes(after, before)[-1] == {"attendee": "room1", "change": "removed"}
    assert attendee_changes([{"email": "a@x", "optional": True}], [{"email": "a@x"}]) == [
        {"attendee": "a@x", "change": "updated", "fields": ["optional"]}]


def test_describe_truncates_long_strings_unless_full() -> None:
    long = "x" * 1000
    diff = field_diff({**BASE, "description": "short"}, {**BASE, "description": long})
    shown = describe(diff)["description"]["after"]
    assert shown.startswith("x" * 200) and shown.endswith("(800 more characters)")
    assert describe(diff, full=True)["description"]["after"] == long
    assert truncate(["y" * 300])[0].endswith("(100 more characters)")
    att = describe(field_diff({"attendees": []}, {"attendees": [{"email": "a@x"}]}))
    assert att["attendees"]["changes"] == [{"attendee": "a@x", "change": "added",
                                            "responseStatus": None}]


json_values = st.sampled_from([None, True, 0, 2, "", "a", "b", [], ["a"], {}, {"x": 1},
                              {"x": 2}, [{"email": "a@x", "responseStatus": "declined"}]])
keys = st.sampled_from(["summary", "start", "end", "location", "description", "attendees",
                        "status", "etag", "updated", "sequence", "recurrence"])
resources = st.dictionaries(keys, json_values, max_size=8)


def _without_volatile(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in VOLATILE}


@given(resources, resources)
def test_applying_the_diff_reproduces_the_new_version(old: dict[str, Any],
                                                      new: dict[str, Any]) -> None:
    diff = field_diff(old, new)
    assert _without_volatile(apply_diff(old, diff)) == _without_volatile(new)
    assert sorted(k for k in diff if k != "sequence") == changed_fields(old, new)
    if diff and "sequence" in old.keys() | new.keys():
        assert apply_diff(old, diff).get("sequence") == new.get("sequence")


@given(resources, resources)
def test_fields_are_sorted_symmetric_and_never_volatile(old: dict[str, Any],
                                                        new: dict[str, Any]) -> None:
    fields = changed_fields(old, new)
    assert fields == sorted(fields) == changed_fields(new, old)
    assert not VOLATILE & set(fields)
    assert changed_fields(old, old) == []


@given(st.lists(resources, min_size=1, max_size=6))
def test_folding_diffs_over_the_first_version_reproduces_every_later_one(
        versions: list[dict[str, Any]]) -> None:
    state = versions[0]
    for previous, current in itertools.pairwise(versions):
        state = apply_diff(state, field_diff(previous, current))
        assert _without_volatile(state) == _without_volatile(current)


@given(resources, resources)
def test_the_raw_diff_equals_the_diff_of_the_parsed_resources(old: dict[str, Any],
                                                              new: dict[str, Any]) -> None:
    fields, text = raw_diff(json.dumps(old), json.dumps(new))
    assert fields == changed_fields(old, new)
    assert json.loads(text) == field_diff(old, new)


def _raw(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], Any]:
    fields, text = raw_diff(json.dumps(old), json.dumps(new))
    return fields, json.loads(text)


def test_the_raw_diff_ignores_nested_key_order() -> None:
    old = {**BASE, "start": {"timeZone": "UTC", "dateTime": "2024-01-02T09:00:00Z"}}
    new = {**BASE, "start": {"dateTime": "2024-01-02T09:00:00Z", "timeZone": "UTC"}}
    assert _raw(old, new) == ([], {})
    new = {**BASE, "sequence": 3, "summary": "x"}
    assert _raw(BASE, new) == (["summary"], {"sequence": {"before": 0, "after": 3},
                                             "summary": {"before": "Standup", "after": "x"}})
    assert _raw({"a": 2**70}, {"a": 1}) == (["a"], {"a": {"before": 2**70, "after": 1}})
