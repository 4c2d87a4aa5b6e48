"""Hostile faults for sync-engine tests: endless page tokens, non-page bodies, per-page stalls."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest
from emulator_helpers import timed

from reconciler.emulator.faults import KINDS

TEAM = "team@group.calendar.google.com"
TEAM_PATH = "/calendar/v3/calendars/team%40group.calendar.google.com/events"


@pytest.fixture
def team(emu: Any) -> Any:
    emu.add_calendar(TEAM, owners=["user@example.com"])
    for day in (1, 2, 3):
        emu.insert_event(TEAM, timed(f"d{day}", day=day))
    return emu


def raw(emu: Any, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], bytes]:
    """One request on one connection: (status, lower-cased headers, body bytes)."""
    c = http.client.HTTPConnection(emu.host, timeout=30)
    c.request(method, path, body=None if body is None else json.dumps(body))
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def test_repeated_page_token_forever_through_the_client(team: Any, svc: Any) -> None:
    team.inject_fault(TEAM, kind="repeat_page_token", count=None)
    first = svc.events().list(calendarId=TEAM, maxResults=2).execute()
    token = first["nextPageToken"]
    assert len(first["items"]) == 2
    rest = [e for e in team.events(TEAM) if e not in first["items"]]
    for _ in range(5):
        page = svc.events().list(calendarId=TEAM, maxResults=2, pageToken=token).execute()
        assert page["nextPageToken"] == token and "nextSyncToken" not in page
        assert page["items"] == rest  # the same second page, again and again
    team.clear_faults()
    last = svc.events().list(calendarId=TEAM, maxResults=2, pageToken=token).execute()
    assert "nextPageToken" not in last and last["nextSyncToken"]


def test_repeated_page_token_on_a_one_page_listing(team: Any, svc: Any) -> None:
    team.inject_fault(TEAM, kind="repeat_page_token", count=None)
    first = svc.events().list(calendarId=TEAM).execute()
    assert len(first["items"]) == 3 and "nextSyncToken" not in first
    token = first["nextPageToken"]
    for _ in range(3):
        page = svc.events().list(calendarId=TEAM, pageToken=token).execute()
        assert page == dict(first, items=[], nextPageToken=token)
    # only the armed calendar misbehaves
    assert "nextSyncToken" in svc.events().list(calendarId="primary").execute()
    # single events take the other listing path: it loops the same way
    page = svc.events().list(calendarId=TEAM, singleEvents=True).execute()
    again = svc.events().list(calendarId=TEAM, singleEvents=True, pageToken=page["nextPageToken"]).execute()
    assert again["nextPageToken"] == page["nextPageToken"] and again["items"] == []


def test_repeat_page_token_is_for_listings_only(emu: Any) -> None:
    with pytest.raises(ValueError, match=r"events\.list"):
        emu.inject_fault(None, kind="repeat_page_token", methods=["events.get"])
    for bad in (0, -1, True):
        with pytest.raises(ValueError, match="count"):
            emu.inject_fault(None, kind="html", count=bad)
    with pytest.raises(ValueError, match="unknown fault kind"):
        emu.inject_fault(None, kind="garbage")


@pytest.mark.parametrize(
    ("kind", "content_type", "body"),
    [
        ("html", "text/html; charset=UTF-8", None),
        ("json_array", "application/json; charset=UTF-8", b"[]"),
        ("empty", "application/json; charset=UTF-8", b""),
    ],
)
def test_non_page_bodies_are_200_on_the_wire(
    team: Any, kind: str, content_type: str, body: bytes | None
) -> None:
    team.inject_fault(TEAM, kind=kind, count=2, methods=["events.list"])
    for _ in range(2):
        status, headers, data = raw(team, "GET", TEAM_PATH)
        assert status == 200 and headers["content-type"] == content_type
        assert headers["content-length"] == str(len(data))
        if body is not None:
            assert data == body
        else:
            assert data.startswith(b"<!DOCTYPE html>") and b"502" in data
    status, _, data = raw(team, "GET", TEAM_PATH)  # count used up: a real page again
    assert status == 200 and len(json.loads(data)["items"]) == 3


def test_truncated_body_is_the_real_answer_cut_in_half(team: Any) -> None:
    ev = team.events(TEAM)[0]
    path = f"{TEAM_PATH}/{ev['id']}"
    status, _, whole = raw(team, "GET", path)
    assert status == 200 and json.loads(whole) == ev
    team.inject_fault(TEAM, kind="truncated", methods=["events.get"])
    status, headers, cut = raw(team, "GET", path)
    assert status == 200 and cut == whole[: len(whole) // 2] and headers["content-length"] == str(len(cut))
    with pytest.raises(ValueError):
        json.loads(cut)


def test_hostile_bodies_reach_the_real_client_and_the_connection_survives(team: Any, svc: Any) -> None:
    # google-api-python-client raises nothing: it hands back whatever it got (not a dict)
    team.inject_fault(TEAM, kind="json_array", methods=["events.list"])
    assert svc.events().list(calendarId=TEAM).execute() == []
    for kind in ("html", "empty", "truncated"):
        team.inject_fault(TEAM, kind=kind, methods=["events.list"])
        got = svc.events().list(calendarId=TEAM).execute()  # undecodable JSON comes back as str
        assert isinstance(got, str)
        start = {"html": "<!DOCTYPE", "empty": "", "truncated": '{"kind":"calendar#events"'}[kind]
        assert got.startswith(start)
    assert len(svc.events().list(calendarId=TEAM).execute()["items"]) == 3  # same client, next call fine
    assert [r.status for r in team.request_log if r.method == "events.list"] == [200] * 5


def test_body_faults_do_not_run_the_request(team: Any) -> None:
    team.inject_fault(TEAM, kind="html", methods=["events.insert"])
    status, _, _ = raw(team, "POST", TEAM_PATH, timed("never stored"))
    assert status == 200
    assert "never stored" not in {e.get("summary") for e in team.events(TEAM)}


def test_stall_every_page_of_a_listing(team: Any, svc: Any) -> None:
    fault = team.inject_fault(TEAM, kind="stall", stall_seconds=0.05, count=None, methods=["events.list"])
    token = None
    pages = 0
    while True:
        page = svc.events().list(calendarId=TEAM, maxResults=1, pageToken=token).execute()
        pages += 1
        token = page.get("nextPageToken")
        if not token:
            break
    assert pages == 3 and fault.hits == 3 and fault.count is None  # still armed
    svc.events().list(calendarId=TEAM).execute()
    assert fault.hits == 4
    assert all(r.end - r.start >= 0.05 for r in team.request_log if r.method == "events.list")
    svc.events().get(calendarId=TEAM, eventId=team.events(TEAM)[0]["id"]).execute()
    assert fault.hits == 4  # other methods are not stalled
    team.clear_faults()
    svc.events().list(calendarId=TEAM).execute()
    assert fault.hits == 4


def test_control_api_arms_unlimited_and_hostile_faults(team: Any) -> None:
    arm = {"calendar_id": TEAM, "kind": "repeat_page_token", "count": None}
    status, _, data = raw(team, "POST", "/_emulator/inject_fault", arm)
    assert status == 200 and json.loads(data) == {"armed": True}
    tokens = set()
    path = TEAM_PATH
    for _ in range(4):
        _, _, data = raw(team, "GET", path)
        tok = json.loads(data)["nextPageToken"]
        tokens.add(tok)
        path = f"{TEAM_PATH}?pageToken={tok}"
    assert len(tokens) == 1
    status, _, data = raw(team, "POST", "/_emulator/inject_fault", {"calendar_id": None, "kind": "nope"})
    assert status == 400 and all(k in json.loads(data)["error"] for k in KINDS)
