"""End to end: field diffs in the change feed, history, the history window and
event-type filters, through the real client against the emulator, on SQLite and
MariaDB (and PostgreSQL where it runs)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from playhouse.test_utils import count_queries

from reconciler.emulator import Emulator
from reconciler.once import run_once
from reconciler.service import Service
from reconciler.store.changes import read_changes
from reconciler.store.models import Event, EventVersion
from tests.helpers import assert_mirror_exact, config_for, mirror, run_cli, write_config

TEAM = "team@group.calendar.google.com"


def timed(summary: str, hour: int = 10, day: int = 1, **extra: Any) -> dict[str, Any]:
    return {"summary": summary,
            "start": {"dateTime": f"2025-03-{day:02d}T{hour:02d}:00:00Z"},
            "end": {"dateTime": f"2025-03-{day:02d}T{hour + 1:02d}:00:00Z"}, **extra}


def days_ago(days: int, summary: str, **extra: Any) -> dict[str, Any]:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=days)
    end = start + dt.timedelta(hours=1)
    return {"summary": summary, "start": {"dateTime": start.isoformat().replace("+00:00", "Z")},
            "end": {"dateTime": end.isoformat().replace("+00:00", "Z")}, **extra}


@pytest.fixture
def team(calendar_emulator: Emulator) -> Emulator:
    calendar_emulator.add_calendar(TEAM, summary="Team", owners=["user@example.com"])
    return calendar_emulator


def feed_since(last: int, **kwargs: Any) -> list[dict[str, Any]]:
    return read_changes(last, 10_000, **kwargs)


def last_id() -> int:
    feed = read_changes(0, 1_000_000)
    return feed[-1]["id"] if feed else 0


def test_updated_lines_say_which_fields_changed(team: Emulator, database_url: str,
                                                tmp_path: Path) -> None:
    rename = team.insert_event(TEAM, timed("rename me"))
    move = team.insert_event(TEAM, timed("move me"))
    invite = team.insert_event(TEAM, timed("invite", attendees=[
        {"email": "ann@example.com", "responseStatus": "needsAction"},
        {"email": "bob@example.com", "responseStatus": "accepted"}]))
    describe = team.insert_event(TEAM, timed("long", description="short"))
    config = config_for(team, write_config(tmp_path, database_url, sync={"page_size": 2}))
    assert run_once(config) == 0
    before = last_id()

    team.patch_event(TEAM, rename["id"], {"summary": "renamed ✨"})
    moved = team.patch_event(TEAM, move["id"], timed("move me", hour=15))
    assert moved["sequence"] > move["sequence"]
    team.patch_event(TEAM, invite["id"], {"attendees": [
        {"email": "ann@example.com", "responseStatus": "declined"},
        {"email": "bob@example.com", "responseStatus": "accepted"}]})
    team.patch_event(TEAM, describe["id"], {"description": "d" * 5000})
    assert run_once(config) == 0
    assert_mirror_exact(team, TEAM)

    by_id = {c["event_id"]: c for c in feed_since(before)}
    assert {c["kind"] for c in by_id.values()} == {"updated"}
    assert by_id[rename["id"]]["fields"] == ["summary"]
    assert by_id[move["id"]]["fields"] == ["end", "start"]
    assert by_id[invite["id"]]["fields"] == ["attendees"]
    assert by_id[describe["id"]]["fields"] == ["description"]
    assert "diff" not in by_id[rename["id"]]

    detail = {c["event_id"]: c["diff"] for c in feed_since(before, diff=True)}
    assert detail[rename["id"]] == {"summary": {"before": "rename me", "after": "renamed ✨"}}
    assert detail[move["id"]]["sequence"] == {"before": move["sequence"],
                                               "after": moved["sequence"]}
    assert detail[move["id"]]["start"]["after"] == {"dateTime": "2025-03-01T15:00:00Z"}
    assert detail[invite["id"]]["attendees"]["changes"] == [
        {"attendee": "ann@example.com", "change": "responseStatus", "before": "needsAction",
         "after": "declined"}]
    assert detail[describe["id"]]["description"]["after"].endswith("(4800 more characters)")

    # The CLI prints the same, --full untruncated.
    out = run_cli(team, "-c", str(config.path), "changes", "--since", str(before), "--diff",
                  "--full")
    assert out.returncode == 0, out.stderr
    lines = {c["event_id"]: c for c in map(json.loads, out.stdout.splitlines())}
    assert lines[describe["id"]]["diff"]["description"]["after"] == "d" * 5000
    assert lines[rename["id"]]["fields"] == ["summary"]
    plain = run_cli(team, "-c", str(config.path), "changes", "--since", str(before))
    assert all("diff" not in json.loads(line) for line in plain.stdout.splitlines())


def test_the_diff_costs_no_statement_per_event(team: Emulator, tmp_path: Path,
                                               database_url: str) -> None:
    events = [team.insert_event(TEAM, timed(f"e{n}")) for n in range(30)]
    accounts = [{"name": "ops", "calendars": [TEAM]}]
    svc = Service(config_for(team, write_config(tmp_path, database_url, accounts,
                                                {"page_size": 100})))
    try:
        rows, _ = svc.resolve_calendars()
        svc.run_pass(rows)
        svc.run_pass(rows)
        counts = []
        for size in (2, 30):
            for event in events[:size]:
                team.patch_event(TEAM, event["id"], {"summary": f"{event['summary']} {size}"})
            with count_queries() as counter:
                report = svc.run_pass(rows)
            assert report.ok and report.results[0].updated == size
            counts.append(counter.count)
    finally:
        svc.close()
    assert counts[0] == counts[1], counts  # one page either way: same statements
    assert all(c["fields"] == ["summary"] for c in read_changes(0, 1000) if c["kind"] == "updated")


def test_history_keeps_the_last_versions_and_prints_a_timeline(team: Emulator,
                                                               database_url: str,
                                                               tmp_path: Path) -> None:
    event = team.insert_event(TEAM, timed("v0"))
    other = team.insert_event(TEAM, timed("other"))
    path = write_config(tmp_path, database_url, extra="\n[store]\nhistory = 3\n")
    config = config_for(team, path)
    assert run_once(config) == 0
    for n in range(1, 5):
        team.patch_event(TEAM, event["id"], {"summary": f"v{n}"})
        assert run_once(config) == 0
    team.delete_event(TEAM, other["id"])
    assert run_once(config) == 0
    kept = [json.loads(raw)["summary"] for (raw,) in
            EventVersion.select(EventVersion.raw).where(EventVersion.event_id == event["id"])
            .order_by(EventVersion.id).tuples()]
    assert kept == ["v2", "v3", "v4"]

    out = run_cli(team, "-c", str(path), "history", event["id"])
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["event"]["summary"] for line in lines] == ["v2", "v3", "v4"]
    assert [line["kind"] for line in lines] == ["updated"] * 3
    assert "diff" not in lines[0]
    assert lines[1]["fields"] == ["summary"]
    assert lines[1]["diff"] == {"summary": {"before": "v2", "after": "v3"}}
    text = run_cli(team, "-c", str(path), "history", event["id"], "--text")
    assert text.returncode == 0 and 'summary: "v3" -> "v4"' in text.stdout
    gone = run_cli(team, "-c", str(path), "history", other["id"], "--calendar", TEAM)
    assert [json.loads(line)["kind"] for line in gone.stdout.splitlines()] == [
        "created", "deleted"]
    unknown = run_cli(team, "-c", str(path), "history", event["id"], "--calendar", "nope@x")
    assert unknown.returncode == 2 and "nope@x" in unknown.stderr
    missing = run_cli(team, "-c", str(path), "history", "no-such-event")
    assert missing.returncode == 1 and "no-such-event" in missing.stderr


def test_history_is_off_by_default(team: Emulator, tmp_path: Path) -> None:
    event = team.insert_event(TEAM, timed("v0"))
    config = config_for(team, write_config(tmp_path, f"sqlite:///{tmp_path}/m.db"))
    assert run_once(config) == 0
    team.patch_event(TEAM, event["id"], {"summary": "v1"})
    assert run_once(config) == 0
    assert EventVersion.select().count() == 0


def test_a_history_window_leaves_old_events_out_and_keeps_them_through_a_resync(
        team: Emulator, database_url: str, tmp_path: Path) -> None:
    old = team.insert_event(TEAM, days_ago(90, "last quarter"))
    recent = team.insert_event(TEAM, days_ago(3, "this week"))
    plain = config_for(team, write_config(tmp_path, database_url))
    assert run_once(plain) == 0  # an earlier, unwindowed mirror holds the old event
    assert set(mirror(TEAM)) == {old["id"], recent["id"]}

    windowed = config_for(team, write_config(tmp_path, database_url,
                                             sync={"history_days": 30}))
    gone_recent = team.insert_event(TEAM, days_ago(2, "deleted during the outage"))
    assert run_once(windowed) == 0
    team.delete_event(TEAM, gone_recent["id"])
    team.expire_tokens(TEAM)
    team.clear_request_log()
    before = last_id()
    assert run_once(windowed) == 0  # 410, then one windowed full listing
    lists = [r for r in team.request_log if r.method == "events.list"]
    assert "syncToken" in lists[0].params and "timeMin" in lists[-1].params
    rows = mirror(TEAM)
    assert rows[old["id"]][0] == "confirmed"  # outside the window: kept, not swept
    assert rows[gone_recent["id"]][0] == "cancelled"
    assert [(c["event_id"], c["kind"]) for c in feed_since(before)] == [
        (gone_recent["id"], "deleted")]
    # Incremental listings carry no timeMin, and edits to old events still arrive.
    team.patch_event(TEAM, old["id"], {"summary": "last quarter (notes)"})
    team.clear_request_log()
    assert run_once(windowed) == 0
    lists = [r for r in team.request_log if r.method == "events.list"]
    assert all("timeMin" not in r.params for r in lists)
    assert mirror(TEAM)[old["id"]][1]["summary"] == "last quarter (notes)"


def test_a_fresh_windowed_mirror_holds_only_the_window(team: Emulator, tmp_path: Path) -> None:
    team.insert_event(TEAM, days_ago(90, "old"))
    recent = team.insert_event(TEAM, days_ago(3, "recent"))
    config = config_for(team, write_config(tmp_path, f"sqlite:///{tmp_path}/m.db",
                                           sync={"history_days": 30}))
    assert run_once(config) == 0
    assert set(mirror(TEAM)) == {recent["id"]}


def test_an_event_type_filter_keeps_what_it_names_and_a_change_resyncs(
        team: Emulator, database_url: str, tmp_path: Path) -> None:
    meeting = team.insert_event(TEAM, timed("meeting"))
    away = team.insert_event(TEAM, timed("away", day=2, eventType="outOfOffice"))
    focus = team.insert_event(TEAM, timed("focus", day=3, eventType="focusTime"))
    first = config_for(team, write_config(tmp_path, database_url,
                                          sync={"event_types": ["default", "outOfOffice"]}))
    assert run_once(first) == 0
    assert set(mirror(TEAM)) == {meeting["id"], away["id"]}
    types = dict(Event.select(Event.event_id, Event.event_type).tuples())
    assert types == {meeting["id"]: "default", away["id"]: "outOfOffice"}
    team.clear_request_log()
    assert run_once(first) == 0  # the same set: incremental, with eventTypes
    (listing,) = [r for r in team.request_log if r.method == "events.list"]
    assert "syncToken" in listing.params and "eventTypes" in listing.params

    wider = config_for(team, write_config(tmp_path, database_url,
                                          sync={"event_types": ["default", "focusTime",
                                                                "outOfOffice"]}))
    team.clear_request_log()
    assert run_once(wider) == 0
    lists = [r for r in team.request_log if r.method == "events.list"]
    assert all("syncToken" not in r.params for r in lists)  # a full listing, no 410 needed
    assert set(mirror(TEAM)) == {meeting["id"], away["id"], focus["id"]}
    team.clear_request_log()
    assert run_once(wider) == 0
    (listing,) = [r for r in team.request_log if r.method == "events.list"]
    assert "syncToken" in listing.params

    narrower = config_for(team, write_config(tmp_path, database_url,
                                             sync={"event_types": ["default"]}))
    before = last_id()
    assert run_once(narrower) == 0
    assert feed_since(before) == []  # rows of types no longer listed are kept, not deleted
    assert {i: s for i, (s, _) in mirror(TEAM).items()} == {
        meeting["id"]: "confirmed", away["id"]: "confirmed", focus["id"]: "confirmed"}
