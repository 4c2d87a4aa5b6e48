"""Derived columns: every real sample parses, and odd content never raises."""

from __future__ import annotations

import datetime as dt

import pytest

from reconciler.eventfields import derive, format_rfc3339, parse_rfc3339, to_millis
from tests.conftest import load_sample, sample_events


@pytest.mark.parametrize(("name", "resource"), sample_events(), ids=[n for n, _ in sample_events()])
def test_every_sample_event_derives_without_error(name: str, resource: dict) -> None:
    fields = derive(resource)
    assert fields.event_id == resource["id"]
    assert fields.etag == resource.get("etag", "")
    if resource.get("status") != "cancelled" and "start" in resource:
        assert fields.start_utc is not None or fields.start_date is not None


def test_offset_wins_over_time_zone() -> None:
    resource = load_sample("event-timezone-UTC-but-offset-minus-0700.json")
    fields = derive(resource)
    start = parse_rfc3339(resource["start"]["dateTime"])
    assert fields.start_utc == start
    assert resource["start"]["timeZone"] == "UTC"
    assert start is not None and start.utcoffset() == dt.timedelta(0)
    assert "-07:00" in resource["start"]["dateTime"]


def test_all_day_dates_are_kept_as_dates_with_exclusive_end() -> None:
    fields = derive(load_sample("event-allday-multiday-transparent-popup-override.json"))
    assert fields.start_date == dt.date(2015, 7, 22)
    assert fields.end_date == dt.date(2015, 8, 1)


def test_cancelled_stub_with_only_an_id() -> None:
    fields = derive(load_sample("event-cancelled-instance-stub-id-status-only.json"))
    assert fields.status == "cancelled"
    assert fields.updated_ms is None and fields.sequence is None
    assert fields.problems == []


@pytest.mark.parametrize("bad", [
    {"id": "abcde", "start": {"date": "0000-01-01"}, "end": {"date": "0000-01-02"}},
    {"id": "abcde", "start": {"dateTime": "not a time"}},
    {"id": "abcde", "start": "2020-01-01"},
    {"id": "abcde", "summary": "no start", "eventType": "somethingNew"},
    {"id": "abcde", "updated": "yesterday", "sequence": "3", "start": {"date": "2038-01-19"}},
])
def test_unparseable_fields_become_null_and_are_reported(bad: dict) -> None:
    fields = derive(bad)
    assert fields.event_id == "abcde"
    assert fields.problems


def test_rfc3339_round_trip_keeps_milliseconds() -> None:
    value = parse_rfc3339("2025-03-25T13:06:14.176Z")
    assert value is not None
    assert format_rfc3339(value) == "2025-03-25T13:06:14.176Z"
    assert to_millis(value) % 1000 == 176
