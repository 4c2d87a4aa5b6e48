"""Sync tokens, paging, deletions, 410s and calendarList sync through the real client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from emulator_helpers import list_all, sample, timed
from googleapiclient.errors import HttpError


def err(call: Any) -> HttpError:
    with pytest.raises(HttpError) as info:
        call.execute()
    return info.value


def test_full_then_incremental_with_paging(emu: Any, svc: Any) -> None:
    ids = [
        svc.events().insert(calendarId="primary", body=timed(f"e{i}", day=1 + i % 20)).execute()["id"]
        for i in range(25)
    ]
    items, token = list_all(svc, maxResults=7, showDeleted=True)
    assert sorted(i["id"] for i in items) == sorted(ids) and token
    page = svc.events().list(calendarId="primary", syncToken=token).execute()
    assert page["items"] == [] and page["nextSyncToken"]
    svc.events().patch(calendarId="primary", eventId=ids[0], body={"summary": "changed"}).execute()
    svc.events().delete(calendarId="primary", eventId=ids[1]).execute()
    new = svc.events().insert(calendarId="primary", body=timed("new")).execute()
    changes, token2 = list_all(svc, syncToken=token, maxResults=1)
    by_id = {c["id"]: c for c in changes}
    assert set(by_id) == {ids[0], ids[1], new["id"]}
    assert by_id[ids[1]] == {
        "kind": "calendar#event",
        "etag": by_id[ids[1]]["etag"],
        "id": ids[1],
        "status": "cancelled",
    }
    assert by_id[ids[0]]["summary"] == "changed"
    full, _ = list_all(svc)
    assert ids[1] not in {i["id"] for i in full}
    full_deleted, _ = list_all(svc, showDeleted=True)
    assert ids[1] in {i["id"] for i in full_deleted}
    assert list_all(svc, syncToken=token2)[0] == []


def test_writes_during_paging_come_again(emu: Any, svc: Any) -> None:
    ids = sorted(svc.events().insert(calendarId="primary", body=timed()).execute()["id"] for _ in range(6))
    p1 = svc.events().list(calendarId="primary", maxResults=3).execute()
    svc.events().patch(calendarId="primary", eventId=ids[0], body={"summary": "late"}).execute()
    svc.events().patch(calendarId="primary", eventId=ids[5], body={"summary": "late"}).execute()
    p2 = svc.events().list(calendarId="primary", maxResults=3, pageToken=p1["nextPageToken"]).execute()
    assert [i["id"] for i in p1["items"] + p2["items"]] == ids
    assert p2["items"][-1]["summary"] == "late"
    again = svc.events().list(calendarId="primary", syncToken=p2["nextSyncToken"]).execute()
    assert sorted(i["id"] for i in again["items"]) == [ids[0], ids[5]]


def test_forbidden_params_with_sync_token(svc: Any) -> None:
    token = svc.events().list(calendarId="primary").execute()["nextSyncToken"]
    for kw in (
        {"q": "x"},
        {"timeMin": "2030-01-01T00:00:00Z"},
        {"orderBy": "updated"},
        {"updatedMin": "2030-01-01T00:00:00Z"},
        {"iCalUID": "a"},
        {"privateExtendedProperty": "a=b"},
        {"timeMax": "2030-01-01T00:00:00Z"},
        {"sharedExtendedProperty": "a=b"},
    ):
        e = err(svc.events().list(calendarId="primary", syncToken=token, **kw))
        assert e.status_code == 400 and e.error_details[0]["reason"] == "invalid"


def test_sync_token_expiry_tamper_and_invalidation(emu: Any, svc: Any) -> None:
    want = sample("error-410-fullSyncRequired.json")
    token = svc.events().list(calendarId="primary").execute()["nextSyncToken"]
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in (tampered, "garbage"):
        e = err(svc.events().list(calendarId="primary", syncToken=bad))
        assert e.status_code == 410 and __import__("json").loads(e.content) == want
    emu.expire_tokens("user@example.com")
    assert err(svc.events().list(calendarId="primary", syncToken=token)).status_code == 410
    token = svc.events().list(calendarId="primary").execute()["nextSyncToken"]
    emu.clock.advance(6 * 86400)
    svc.events().list(calendarId="primary", syncToken=token).execute()
    emu.clock.advance(2 * 86400)
    e = err(svc.events().list(calendarId="primary", syncToken=token))
    assert e.error_details[0]["reason"] == "fullSyncRequired"
    bad_page = err(svc.events().list(calendarId="primary", pageToken="nonsense"))
    assert bad_page.status_code == 400 and bad_page.error_details[0]["reason"] == "invalid"


def test_updated_min(emu: Any, svc: Any) -> None:
    a = svc.events().insert(calendarId="primary", body=timed("a")).execute()
    cut = datetime.now(UTC) + timedelta(seconds=1)
    emu.clock.advance(2)
    b = svc.events().insert(calendarId="primary", body=timed("b")).execute()
    svc.events().delete(calendarId="primary", eventId=a["id"]).execute()
    got = svc.events().list(calendarId="primary", updatedMin=cut.isoformat()).execute()["items"]
    assert {i["id"]: i["status"] for i in got} == {a["id"]: "cancelled", b["id"]: "confirmed"}
    old = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    e = err(svc.events().list(calendarId="primary", updatedMin=old))
    assert e.status_code == 410 and e.error_details[0] == {
        "domain": "calendar",
        "reason": "updatedMinTooLongAgo",
        "message": "The requested minimum modification time lies too far in the past.",
        "locationType": "parameter",
        "location": "updatedMin",
    }


def test_envelope_max_results_time_window_and_empty_pages(emu: Any, svc: Any) -> None:
    for d in (1, 5, 9):
        svc.events().insert(calendarId="primary", body=timed(f"d{d}", day=d)).execute()
    page = svc.events().list(calendarId="primary", maxResults=99999).execute()
    assert [k for k in page if k != "items"] == [
        "kind",
        "etag",
        "summary",
        "updated",
        "timeZone",
        "accessRole",
        "defaultReminders",
        "nextSyncToken",
    ]
    assert page["updated"] == max(i["updated"] for i in page["items"])
    got = (
        svc.events()
        .list(calendarId="primary", timeMin="2030-01-04T00:00:00Z", timeMax="2030-01-08T00:00:00Z")
        .execute()["items"]
    )
    assert [i["summary"] for i in got] == ["d5"]
    e = err(
        svc.events().list(
            calendarId="primary", timeMin="2030-01-04T00:00:00Z", timeMax="2030-01-03T00:00:00Z"
        )
    )
    assert e.status_code == 400 and e.error_details[0]["reason"] == "timeRangeEmpty"
    emu.empty_pages("user@example.com", 2)
    items, token = list_all(svc, maxResults=2)
    assert len(items) == 3 and token
    logged = [r for r in emu.request_log if r.method == "events.list"]
    assert len(logged) >= 4


def test_calendar_list_sync(emu: Any, svc: Any) -> None:
    emu.add_calendar("team@group.calendar.google.com", summary="Team", owners=["alice@example.com"])
    emu.share("team@group.calendar.google.com", "user@example.com", "writer")
    emu.add_calendar("hidden@group.calendar.google.com", owners=["alice@example.com"])
    emu.share("hidden@group.calendar.google.com", "user@example.com", "reader", hidden=True)
    full = svc.calendarList().list().execute()
    assert [c["id"] for c in full["items"]] == ["team@group.calendar.google.com", "user@example.com"]
    assert full["items"][1]["primary"] is True and full["items"][0]["accessRole"] == "writer"
    full = svc.calendarList().list(showHidden=True).execute()
    assert len(full["items"]) == 3
    token = full["nextSyncToken"]
    emu.unshare("team@group.calendar.google.com", "user@example.com")
    inc = svc.calendarList().list(syncToken=token, showHidden=True).execute()
    assert [(c["id"], c.get("deleted")) for c in inc["items"]] == [("team@group.calendar.google.com", True)]
    assert svc.calendarList().list(syncToken=inc["nextSyncToken"]).execute()["items"] == []
    assert "team@group.calendar.google.com" not in [
        c["id"] for c in svc.calendarList().list().execute()["items"]
    ]
    deleted = svc.calendarList().list(showDeleted=True).execute()["items"]
    assert {"id": "team@group.calendar.google.com", "deleted": True}.items() <= deleted[0].items()


def test_delete_series_and_single_events_incremental(svc: Any) -> None:
    m = (
        svc.events()
        .insert(calendarId="primary", body=dict(timed("series"), recurrence=["RRULE:FREQ=DAILY;COUNT=3"]))
        .execute()
    )
    inst = svc.events().instances(calendarId="primary", eventId=m["id"]).execute()["items"]
    svc.events().patch(calendarId="primary", eventId=inst[0]["id"], body={"summary": "x"}).execute()
    token = svc.events().list(calendarId="primary").execute()["nextSyncToken"]
    svc.events().delete(calendarId="primary", eventId=m["id"]).execute()
    items = svc.events().list(calendarId="primary", syncToken=token).execute()["items"]
    assert {i["id"]: set(i) for i in items} == {
        m["id"]: {"kind", "etag", "id", "status"},
        inst[0]["id"]: {"kind", "etag", "id", "status"},
    }
