"""events.* write and read rules, driven only through google-api-python-client."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from emulator_helpers import build_service, sample, timed
from googleapiclient.errors import HttpError

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def err(call: Any) -> HttpError:
    with pytest.raises(HttpError) as info:
        call.execute()
    return info.value


def body_of(e: HttpError) -> Any:
    import json

    return json.loads(e.content)


def test_insert_sets_server_fields(svc: Any) -> None:
    ev = svc.events().insert(calendarId="primary", body=timed("Lunch 🍜", unknownField={"a": 1})).execute()
    assert ev["kind"] == "calendar#event"
    assert re.fullmatch(r'"\d+"', ev["etag"])
    assert re.fullmatch(r"[0-9a-v]{26}", ev["id"])
    assert ev["iCalUID"] == ev["id"] + "@google.com"
    assert ev["sequence"] == 0 and ev["status"] == "confirmed"
    assert RFC3339_MS.match(ev["created"]) and RFC3339_MS.match(ev["updated"])
    assert ev["creator"] == {"email": "user@example.com"} == ev["organizer"]
    assert ev["htmlLink"].startswith("https://www.google.com/calendar/event?eid=")
    assert ev["unknownField"] == {"a": 1}
    got = svc.events().get(calendarId="primary", eventId=ev["id"]).execute()
    assert got == ev


def test_etag_updated_change_every_write_sequence_only_significant(svc: Any) -> None:
    ev = svc.events().insert(calendarId="primary", body=timed()).execute()
    seen = [ev]
    for patch in ({"summary": "a"}, {"description": "d"}, {"colorId": "5"}):
        seen.append(svc.events().patch(calendarId="primary", eventId=ev["id"], body=patch).execute())
    assert [e["sequence"] for e in seen] == [0, 0, 0, 0]
    moved = (
        svc.events()
        .patch(calendarId="primary", eventId=ev["id"], body={"start": {"dateTime": "2030-01-01T09:00:00Z"}})
        .execute()
    )
    seen.append(moved)
    assert moved["sequence"] == 1
    upd = (
        svc.events()
        .update(
            calendarId="primary",
            eventId=ev["id"],
            body=dict(timed("u", hour=9), recurrence=["RRULE:FREQ=DAILY;COUNT=2"]),
        )
        .execute()
    )
    seen.append(upd)
    assert upd["sequence"] == 2 and upd["created"] == ev["created"] and upd["iCalUID"] == ev["iCalUID"]
    etags = [e["etag"] for e in seen]
    assert len(set(etags)) == len(etags)
    updated = [e["updated"] for e in seen]
    assert updated == sorted(updated) and len(set(updated)) == len(updated)


def test_updated_strictly_increasing_with_frozen_clock(emu: Any, svc: Any) -> None:
    from datetime import UTC, datetime

    emu.clock.set(datetime(2030, 1, 1, tzinfo=UTC))
    emu.clock.advance(0)
    ev = svc.events().insert(calendarId="primary", body=timed()).execute()
    emu.clock.set(datetime(2030, 1, 1, tzinfo=UTC))  # back in time: still increasing
    p = svc.events().patch(calendarId="primary", eventId=ev["id"], body={"summary": "b"}).execute()
    assert p["updated"] > ev["updated"]


def test_sequence_below_current_rejected(svc: Any) -> None:
    ev = svc.events().insert(calendarId="primary", body=timed(sequence=3)).execute()
    assert ev["sequence"] == 3
    e = err(svc.events().patch(calendarId="primary", eventId=ev["id"], body={"sequence": 2}))
    assert e.status_code == 400 and e.error_details[0]["reason"] == "invalid"
    assert e.error_details[0]["message"] == (
        "Invalid sequence value. The specified sequence number is below the current sequence "
        "number of the resource."
    )


def test_client_ids_duplicate_and_restore(svc: Any) -> None:
    e = err(svc.events().insert(calendarId="primary", body=timed(id="BAD_ID")))
    assert e.status_code == 400 and e.error_details[0]["reason"] == "invalid"
    assert err(svc.events().insert(calendarId="primary", body=timed(id="abc"))).status_code == 400
    ev = svc.events().insert(calendarId="primary", body=timed(id="evid0001")).execute()
    assert ev["id"] == "evid0001"
    dup = err(svc.events().insert(calendarId="primary", body=timed(id="evid0001")))
    assert dup.status_code == 409 and body_of(dup) == sample("error-409-duplicate-docs.json")
    svc.events().delete(calendarId="primary", eventId="evid0001").execute()
    gone = err(svc.events().delete(calendarId="primary", eventId="evid0001"))
    assert gone.status_code == 410 and body_of(gone) == sample("error-410-deleted-docs.json")
    again = svc.events().insert(calendarId="primary", body=timed("back", id="evid0001")).execute()
    assert again["status"] == "confirmed" and again["summary"] == "back"
    assert again["created"] == ev["created"]


def test_patch_restores_cancelled(svc: Any) -> None:
    ev = svc.events().insert(calendarId="primary", body=timed("r")).execute()
    svc.events().delete(calendarId="primary", eventId=ev["id"]).execute()
    stub = svc.events().get(calendarId="primary", eventId=ev["id"]).execute()
    assert set(stub) == {"kind", "etag", "id", "status"} and stub["status"] == "cancelled"
    back = svc.events().patch(calendarId="primary", eventId=ev["id"], body={"status": "confirmed"}).execute()
    assert back["summary"] == "r" and back["status"] == "confirmed"
    assert back["sequence"] > ev["sequence"]


def test_not_found_and_acl(emu: Any, svc: Any) -> None:
    e = err(svc.events().list(calendarId="nope@group.calendar.google.com"))
    assert e.status_code == 404 and body_of(e) == sample("error-404-notFound-docs.json")
    emu.add_calendar("secret@group.calendar.google.com", owners=["boss@example.com"])
    assert err(svc.events().list(calendarId="secret@group.calendar.google.com")).status_code == 404
    emu.share("secret@group.calendar.google.com", "user@example.com", "reader")
    page = svc.events().list(calendarId="secret@group.calendar.google.com").execute()
    assert page["accessRole"] == "reader"
    e = err(svc.events().insert(calendarId="secret@group.calendar.google.com", body=timed()))
    assert e.status_code == 403
    emu.unshare("secret@group.calendar.google.com", "user@example.com")
    assert (
        err(svc.events().get(calendarId="secret@group.calendar.google.com", eventId="abcde")).status_code
        == 404
    )
    assert err(svc.events().get(calendarId="primary", eventId="abcdef")).status_code == 404


def test_identity_from_bearer_token(emu: Any) -> None:
    bob = build_service(emu.base_url, "emulator-user:bob@example.com")
    ev = bob.events().insert(calendarId="primary", body=timed()).execute()
    assert ev["organizer"]["email"] == "bob@example.com"
    assert emu.get_event("bob@example.com", ev["id"])["id"] == ev["id"]
    other = build_service(emu.base_url, "some-other-token")
    cals = other.calendarList().list().execute()["items"]
    assert [c["id"] for c in cals] == ["user@example.com"]
    emu.revoke_access_token("some-other-token")
    status, body = raw_get(emu, "users/me/calendarList", "some-other-token")
    assert status == 401 and body == sample("error-401-authError-docs.json")


def raw_get(emu: Any, path: str, token: str | None = None) -> tuple[int, Any]:
    """GET an API path without google-auth (which would try to refresh on 401)."""
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(emu.base_url + path)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(
    ("status", "reason", "sample_name"),
    [
        (500, "backendError", "error-500-backendError-docs.json"),
        (403, "rateLimitExceeded", "error-403-rateLimitExceeded-docs.json"),
        (403, "userRateLimitExceeded", "error-403-userRateLimitExceeded.json"),
        (403, "quotaExceeded", "error-403-quotaExceeded-calendar-usage-limits-docs.json"),
        (429, "rateLimitExceeded", "error-429-rateLimitExceeded-docs.json"),
        (401, "authError", "error-401-authError-docs.json"),
    ],
)
def test_injected_status_faults(emu: Any, svc: Any, status: int, reason: str, sample_name: str) -> None:
    emu.inject_fault(
        "user@example.com",
        status=status,
        reason=reason,
        count=2,
        retry_after=7 if status == 429 else None,
        methods={"events.list"},
    )
    svc.events().insert(calendarId="primary", body=timed()).execute()  # other methods unaffected
    if status == 401:  # google-auth would try to refresh anonymous credentials: go raw
        for _ in range(2):
            code, body = raw_get(emu, "calendars/primary/events")
            assert code == 401 and body == sample(sample_name)
        assert len(svc.events().list(calendarId="primary").execute()["items"]) == 1
        return
    for _ in range(2):
        e = err(svc.events().list(calendarId="primary"))
        assert e.status_code == status and e.error_details[0]["reason"] == reason
        assert body_of(e) == sample(sample_name)
        if status == 429:
            assert e.resp["retry-after"] == "7"
    assert len(svc.events().list(calendarId="primary").execute()["items"]) == 1


def test_503_stall_and_drop(emu: Any, svc: Any) -> None:
    import time

    emu.inject_fault(None, status=503)
    e = err(svc.events().list(calendarId="primary"))
    assert e.status_code == 503 and e.error_details[0]["reason"] == "backendError"
    emu.inject_fault(None, kind="stall", stall_seconds=0.3)
    t = time.monotonic()
    svc.events().list(calendarId="primary").execute()
    assert time.monotonic() - t >= 0.3
    emu.inject_fault(None, kind="drop", count=2)  # httplib2 retries a dropped connection once
    with pytest.raises(Exception) as info:
        svc.events().list(calendarId="primary").execute()
    assert not isinstance(info.value, HttpError)
    svc2 = build_service(emu.base_url)
    assert svc2.events().list(calendarId="primary").execute()["kind"] == "calendar#events"
    assert [r.status for r in emu.request_log][-3:] == [0, 0, 200]


def test_request_log(emu: Any, svc: Any) -> None:
    emu.add_calendar("a@group.calendar.google.com")
    emu.clear_request_log()
    for _ in range(3):
        svc.events().list(calendarId="a@group.calendar.google.com", showDeleted=True).execute()
    log = [r for r in emu.request_log if r.method == "events.list"]
    assert len(log) == 3
    assert all(r.calendar_id == "a@group.calendar.google.com" for r in log)
    assert log[0].params["showDeleted"] == ["true"] and log[0].user == "user@example.com"
    assert all(a.end <= b.start for a, b in itertools.pairwise(log))
    emu.clear_request_log()
    assert emu.request_log == []


def test_recurring_instances_exceptions_and_cancelled(svc: Any) -> None:
    master = (
        svc.events()
        .insert(
            calendarId="primary",
            body={
                "summary": "daily",
                "start": {"dateTime": "2030-03-01T09:00:00", "timeZone": "Europe/Berlin"},
                "end": {"dateTime": "2030-03-01T09:30:00", "timeZone": "Europe/Berlin"},
                "recurrence": ["RRULE:FREQ=DAILY;COUNT=5"],
            },
        )
        .execute()
    )
    inst = svc.events().instances(calendarId="primary", eventId=master["id"]).execute()["items"]
    assert [i["id"] for i in inst] == [f"{master['id']}_2030030{d}T080000Z" for d in range(1, 6)]
    assert inst[0]["originalStartTime"] == {
        "dateTime": "2030-03-01T09:00:00+01:00",
        "timeZone": "Europe/Berlin",
    }
    svc.events().patch(calendarId="primary", eventId=inst[1]["id"], body={"summary": "moved"}).execute()
    svc.events().delete(calendarId="primary", eventId=inst[2]["id"]).execute()
    page = svc.events().list(calendarId="primary", showDeleted=True).execute()
    by_id = {i["id"]: i for i in page["items"]}
    assert by_id[inst[1]["id"]]["recurringEventId"] == master["id"]
    stub = by_id[inst[2]["id"]]
    assert set(stub) == {"kind", "etag", "id", "status", "recurringEventId", "originalStartTime"}
    inst2 = svc.events().instances(calendarId="primary", eventId=master["id"]).execute()["items"]
    assert [i.get("summary") for i in inst2] == ["daily", "moved", "daily", "daily"]
    single = svc.events().list(calendarId="primary", singleEvents=True, orderBy="startTime").execute()
    assert len(single["items"]) == 4 and "nextSyncToken" not in single
    weekly = (
        svc.events()
        .insert(
            calendarId="primary",
            body={
                "summary": "w",
                "start": {"date": "2030-01-07"},
                "end": {"date": "2030-01-08"},
                "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20300116"],
            },
        )
        .execute()
    )
    ids = [
        i["id"] for i in svc.events().instances(calendarId="primary", eventId=weekly["id"]).execute()["items"]
    ]
    assert ids == [f"{weekly['id']}_{d}" for d in ("20300107", "20300109", "20300114", "20300116")]


def test_calendars_get_and_token_endpoint(emu: Any, svc: Any) -> None:
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    cal = svc.calendars().get(calendarId="primary").execute()
    assert cal["kind"] == "calendar#calendar" and cal["id"] == "user@example.com"
    url = f"http://{emu.host}/token"
    form = urllib.parse.urlencode(
        {"grant_type": "refresh_token", "refresh_token": "rt1", "client_id": "c", "client_secret": "s"}
    ).encode()
    got = json.loads(urllib.request.urlopen(url, form).read())
    assert got["expires_in"] == 3600 and got["token_type"] == "Bearer" and got["access_token"]
    emu.revoke_refresh_token("rt1")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, form)
    assert info.value.code == 400
    assert json.loads(info.value.read()) == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }


def test_google_auth_refresh_through_token_endpoint(emu: Any) -> None:
    import google.auth.exceptions
    import google.oauth2.credentials

    from reconciler.emulator.pytest_plugin import build_client

    def creds() -> Any:
        return google.oauth2.credentials.Credentials(
            None,
            refresh_token="emulator-user:carol@example.com",
            token_uri=f"http://{emu.host}/token",
            client_id="c",
            client_secret="s",
        )

    svc = build_client(emu.base_url, creds())
    assert svc.calendarList().list().execute()["items"][0]["id"] == "carol@example.com"
    emu.revoke_refresh_token("emulator-user:carol@example.com")
    svc = build_client(emu.base_url, creds())
    with pytest.raises(google.auth.exceptions.RefreshError):
        svc.calendarList().list().execute()
