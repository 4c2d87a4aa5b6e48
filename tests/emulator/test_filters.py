"""events.list filters as Google applies them: eventTypes (with sync tokens) and timeMin/timeMax."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from emulator_helpers import list_all, timed
from googleapiclient.errors import HttpError

CAL = "primary"


def err(call: Any) -> HttpError:
    with pytest.raises(HttpError) as info:
        call.execute()
    return info.value


def typed(summary: str, event_type: str | None, day: int = 1) -> dict[str, Any]:
    body = timed(summary, day=day)
    if event_type is not None:
        body["eventType"] = event_type
    return body


@pytest.fixture
def mixed(emu: Any, svc: Any) -> dict[str, str]:
    """Ids by summary of one event per type; "plain" is stored without any eventType."""
    ids = {}
    for summary, kind in (("ooo", "outOfOffice"), ("focus", "focusTime"), ("dflt", "default")):
        ids[summary] = svc.events().insert(calendarId=CAL, body=typed(summary, kind)).execute()["id"]
    emu.put_raw("user@example.com", dict(timed("plain"), id="plainevent01", status="confirmed"))
    ids["plain"] = "plainevent01"
    return ids


def summaries(items: list[dict[str, Any]]) -> set[str]:
    return {i.get("summary", i["id"]) for i in items}


def test_event_types_filter_full_listing(svc: Any, mixed: dict[str, str]) -> None:
    items, token = list_all(svc, eventTypes=["default"])
    assert summaries(items) == {"dflt", "plain"} and token  # no eventType means "default"
    items, _ = list_all(svc, eventTypes=["outOfOffice", "focusTime"])
    assert summaries(items) == {"ooo", "focus"}
    items, _ = list_all(svc)
    assert summaries(items) == {"ooo", "focus", "dflt", "plain"}
    # paging keeps the filter: one item a page, still only the named types
    items, _ = list_all(svc, eventTypes=["default", "focusTime"], maxResults=1)
    assert sorted(summaries(items)) == ["dflt", "focus", "plain"]


def test_event_types_with_sync_token_same_filter(svc: Any, mixed: dict[str, str]) -> None:
    _, token = list_all(svc, eventTypes=["default"])
    new_ooo = svc.events().insert(calendarId=CAL, body=typed("ooo2", "outOfOffice")).execute()
    svc.events().insert(calendarId=CAL, body=typed("dflt2", None)).execute()
    svc.events().delete(calendarId=CAL, eventId=mixed["focus"]).execute()
    svc.events().delete(calendarId=CAL, eventId=mixed["plain"]).execute()
    items, token2 = list_all(svc, eventTypes=["default"], syncToken=token)
    # new events of other types stay out; every deletion comes, whatever its type (a stub has none)
    got = {i["id"]: i.get("summary", i["status"]) for i in items}
    assert got == {
        next(i for i in items if i.get("summary") == "dflt2")["id"]: "dflt2",
        mixed["focus"]: "cancelled",
        mixed["plain"]: "cancelled",
    }
    assert new_ooo["id"] not in got and token2
    items, _ = list_all(svc, eventTypes=["default"], syncToken=token2)
    assert items == []


@pytest.mark.parametrize(
    ("full", "incremental"),
    [
        (["default"], ["default", "outOfOffice"]),
        (["default"], None),
        (None, ["default"]),
        (["focusTime", "default"], ["focusTime"]),
    ],
)
def test_event_types_differing_from_the_full_listing_need_a_full_sync(
    svc: Any, mixed: dict[str, str], full: list[str] | None, incremental: list[str] | None
) -> None:
    kw = {"eventTypes": full} if full else {}
    _, token = list_all(svc, **kw)
    kw = {"eventTypes": incremental} if incremental else {}
    e = err(svc.events().list(calendarId=CAL, syncToken=token, **kw))
    assert e.status_code == 410 and e.error_details[0]["reason"] == "fullSyncRequired"


def test_event_types_order_and_repetition_do_not_matter(svc: Any, mixed: dict[str, str]) -> None:
    _, token = list_all(svc, eventTypes=["outOfOffice", "default"])
    page = svc.events().list(calendarId=CAL, syncToken=token, eventTypes=["default", "outOfOffice"]).execute()
    assert page["items"] == [] and "nextSyncToken" in page


def test_event_types_change_between_pages_is_a_bad_page_token(svc: Any, mixed: dict[str, str]) -> None:
    first = svc.events().list(calendarId=CAL, maxResults=1, eventTypes=["default"]).execute()
    e = err(
        svc.events().list(
            calendarId=CAL, maxResults=1, eventTypes=["focusTime"], pageToken=first["nextPageToken"]
        )
    )
    assert e.status_code == 400


def test_unknown_event_type_is_400(emu: Any) -> None:
    url = f"{emu.base_url}calendars/primary/events?eventTypes=default&eventTypes=meeting"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, timeout=30)
    body = json.loads(info.value.read())
    assert info.value.code == 400
    assert body["error"]["errors"][0]["location"] == "eventTypes" and "meeting" in body["error"]["message"]


def test_time_min_is_exclusive_on_end_time_max_exclusive_on_start(svc: Any) -> None:
    def ev(summary: str, start: str, end: str) -> None:
        body = {"summary": summary, "start": {"dateTime": start}, "end": {"dateTime": end}}
        svc.events().insert(calendarId=CAL, body=body).execute()

    ev("ends-at-min", "2030-01-01T09:00:00Z", "2030-01-01T10:00:00Z")
    ev("ends-after-min", "2030-01-01T09:00:00Z", "2030-01-01T10:00:01Z")
    ev("starts-at-max", "2030-01-01T12:00:00Z", "2030-01-01T13:00:00Z")
    ev("starts-before-max", "2030-01-01T11:59:59Z", "2030-01-01T13:00:00Z")
    ev("spans", "2029-12-31T00:00:00Z", "2030-01-03T00:00:00Z")
    svc.events().insert(
        calendarId=CAL,
        body={"summary": "all-day-before", "start": {"date": "2029-12-31"}, "end": {"date": "2030-01-01"}},
    ).execute()
    items, token = list_all(svc, timeMin="2030-01-01T10:00:00Z", timeMax="2030-01-01T12:00:00Z")
    assert summaries(items) == {"ends-after-min", "starts-before-max", "spans"}
    assert token  # a windowed full listing still yields a sync token
    items, _ = list_all(svc, timeMin="2030-01-01T10:00:00+01:00")  # 09:00Z: offsets count
    assert "ends-at-min" in summaries(items) and "all-day-before" not in summaries(items)


def test_recurring_series_matches_when_an_occurrence_is_inside(svc: Any) -> None:
    body = dict(timed("daily", day=1), recurrence=["RRULE:FREQ=DAILY;COUNT=10"])
    svc.events().insert(calendarId=CAL, body=body).execute()
    assert summaries(list_all(svc, timeMin="2030-01-05T00:00:00Z")[0]) == {"daily"}
    assert list_all(svc, timeMin="2030-01-11T00:00:00Z")[0] == []
    window = {"timeMin": "2030-01-05T00:00:00Z", "timeMax": "2030-01-07T00:00:00Z"}
    inside = list_all(svc, singleEvents=True, **window)[0]
    assert [i["originalStartTime"]["dateTime"][:10] for i in inside] == ["2030-01-05", "2030-01-06"]


def test_time_window_with_sync_token_is_400(svc: Any) -> None:
    svc.events().insert(calendarId=CAL, body=timed()).execute()
    _, token = list_all(svc, timeMin="2029-01-01T00:00:00Z")
    for kw in ({"timeMin": "2029-01-01T00:00:00Z"}, {"timeMax": "2031-01-01T00:00:00Z"}):
        e = err(svc.events().list(calendarId=CAL, syncToken=token, **kw))
        assert e.status_code == 400 and e.error_details[0]["reason"] == "invalid"
        assert e.error_details[0]["location"] == next(iter(kw))


def test_windowed_full_sync_then_increments_carry_changes_outside_the_window(svc: Any) -> None:
    old = svc.events().insert(calendarId=CAL, body=timed("old", day=1)).execute()
    new = svc.events().insert(calendarId=CAL, body=timed("new", day=20)).execute()
    items, token = list_all(svc, timeMin="2030-01-10T00:00:00Z")
    assert [i["id"] for i in items] == [new["id"]]
    svc.events().patch(calendarId=CAL, eventId=old["id"], body={"summary": "old, renamed"}).execute()
    items, _ = list_all(svc, syncToken=token)
    assert [(i["id"], i["summary"]) for i in items] == [(old["id"], "old, renamed")]


def test_cancelled_events_and_show_deleted_under_filters(svc: Any, mixed: dict[str, str]) -> None:
    svc.events().delete(calendarId=CAL, eventId=mixed["dflt"]).execute()
    window = {"timeMin": "2029-01-01T00:00:00Z", "timeMax": "2031-01-01T00:00:00Z"}
    items, _ = list_all(svc, eventTypes=["default"], **window)
    assert summaries(items) == {"plain"}  # a cancelled event needs showDeleted on a full listing
    items, _ = list_all(svc, eventTypes=["default"], showDeleted=True, **window)
    assert {i["id"]: i["status"] for i in items} == {mixed["dflt"]: "cancelled", mixed["plain"]: "confirmed"}
