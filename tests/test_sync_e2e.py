"""End to end: the real client against the emulator, into SQLite and MariaDB.

Every test drives ``reconciler once`` (in-process through ``run_once`` or as a
subprocess for exit-status contracts) and compares the mirror with the
emulator's ground truth.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from reconciler.emulator import Emulator, running_emulator
from reconciler.once import run_once
from reconciler.store.changes import read_changes
from reconciler.store.models import Calendar
from tests.conftest import sample_events
from tests.helpers import assert_mirror_exact, config_for, mirror, run_cli, timed, write_config

TEAM = "team@group.calendar.google.com"


@pytest.fixture
def team(calendar_emulator: Emulator) -> Emulator:
    calendar_emulator.add_calendar(TEAM, summary="Team", owners=["user@example.com"])
    return calendar_emulator


def kinds_since(last: int) -> list[tuple[str, str]]:
    return [(c["event_id"], c["kind"]) for c in read_changes(last, 10_000)]


def last_change_id() -> int:
    feed = read_changes(0, 1_000_000)
    return feed[-1]["id"] if feed else 0


def test_first_full_sync_of_a_multipage_calendar(team: Emulator, database_url: str,
                                                 tmp_path: Path) -> None:
    for i in range(57):
        team.insert_event(TEAM, timed(f"event {i}", hour=i % 20, day=1 + i % 28))
    team.empty_pages(TEAM, 1)
    config = config_for(team, write_config(tmp_path, database_url, sync={"page_size": 10}))
    assert run_once(config) == 0
    assert_mirror_exact(team, TEAM)
    feed = read_changes(0, 1000)
    assert len(feed) == 57 and {c["kind"] for c in feed} == {"created"}
    lists = [r for r in team.request_log if r.method == "events.list"]
    assert len(lists) == 7  # one empty page, then 6 pages of at most 10
    row = Calendar.get(Calendar.calendar_id == TEAM)
    assert row.sync_token and row.last_success is not None


def test_incremental_edits_of_every_kind(team: Emulator, database_url: str,
                                         tmp_path: Path) -> None:
    keep = team.insert_event(TEAM, timed("keep"))
    rename = team.insert_event(TEAM, timed("rename me"))
    move = team.insert_event(TEAM, timed("move me"))
    delete = team.insert_event(TEAM, timed("delete me"))
    restore = team.insert_event(TEAM, timed("restore me"))
    master = team.insert_event(TEAM, dict(timed("daily"), recurrence=["RRULE:FREQ=DAILY;COUNT=5"]))
    config = config_for(team, write_config(tmp_path, database_url, sync={"page_size": 3}))
    assert run_once(config) == 0
    before = last_change_id()

    renamed = team.patch_event(TEAM, rename["id"], {"summary": "renamed ✨"})
    assert renamed["sequence"] == rename["sequence"]  # a title edit keeps sequence
    moved = team.patch_event(TEAM, move["id"], timed("move me", hour=15))
    assert moved["sequence"] > move["sequence"]
    team.delete_event(TEAM, delete["id"])
    team.delete_event(TEAM, restore["id"])
    assert run_once(config) == 0
    middle = last_change_id()
    team.patch_event(TEAM, restore["id"], {"status": "confirmed"})
    instance_id = f"{master['id']}_20250302T100000Z"
    team.patch_event(TEAM, instance_id, {"summary": "daily (moved)",
                                         "start": {"dateTime": "2025-03-02T12:00:00Z"},
                                         "end": {"dateTime": "2025-03-02T13:00:00Z"}})
    team.delete_event(TEAM, f"{master['id']}_20250303T100000Z")
    assert run_once(config) == 0
    assert_mirror_exact(team, TEAM)

    assert sorted(kinds_since(before)[: middle - before]) == sorted([
        (rename["id"], "updated"), (move["id"], "updated"),
        (delete["id"], "deleted"), (restore["id"], "deleted")])
    after = kinds_since(middle)
    assert (restore["id"], "created") in after
    assert (instance_id, "created") in after
    rows = mirror(TEAM)
    assert rows[delete["id"]][0] == "cancelled"
    assert rows[keep["id"]][1] == team.get_event(TEAM, keep["id"])
    cancelled_instance = rows[f"{master['id']}_20250303T100000Z"]
    assert cancelled_instance[0] == "cancelled"
    assert cancelled_instance[1]["recurringEventId"] == master["id"]
    deleted_change = next(c for c in read_changes(before, 100)
                          if c["kind"] == "deleted" and c["event_id"] == delete["id"])
    assert deleted_change["etag"] == rows[deleted_change["event_id"]][1]["etag"]


def test_delete_then_restore_between_passes_is_one_update(team: Emulator, database_url: str,
                                                          tmp_path: Path) -> None:
    event = team.insert_event(TEAM, timed("flaky"))
    config = config_for(team, write_config(tmp_path, database_url))
    assert run_once(config) == 0
    before = last_change_id()
    team.delete_event(TEAM, event["id"])
    team.patch_event(TEAM, event["id"], {"status": "confirmed"})
    assert run_once(config) == 0
    assert kinds_since(before) == [(event["id"], "updated")]


def test_410_recovery_with_deletions_in_between(team: Emulator, database_url: str,
                                                tmp_path: Path) -> None:
    created = [team.insert_event(TEAM, timed(f"e{i}")) for i in range(12)]
    config = config_for(team, write_config(tmp_path, database_url, sync={"page_size": 5}))
    assert run_once(config) == 0
    for event in created[:4]:
        team.delete_event(TEAM, event["id"])
    team.patch_event(TEAM, created[5]["id"], {"summary": "changed during the outage"})
    team.expire_tokens(TEAM)
    before = last_change_id()
    team.clear_request_log()
    assert run_once(config) == 0
    assert_mirror_exact(team, TEAM)
    kinds = kinds_since(before)
    assert sorted(k for _, k in kinds) == ["deleted"] * 4 + ["updated"]
    lists = [r for r in team.request_log if r.method == "events.list"]
    assert "syncToken" in lists[0].params
    assert sum("syncToken" in r.params for r in lists) == 1  # one 410, then one full listing
    assert run_once(config) == 0  # the new token works


def test_transient_errors_are_retried(team: Emulator, database_url: str, tmp_path: Path) -> None:
    team.insert_event(TEAM, timed("x"))
    config = config_for(team, write_config(tmp_path, database_url))
    team.inject_fault(TEAM, status=503, reason="backendError", count=2)
    team.inject_fault(TEAM, status=429, reason="rateLimitExceeded", retry_after=1, count=1)
    team.inject_fault(TEAM, kind="drop", count=1)
    assert run_once(config) == 0
    assert_mirror_exact(team, TEAM)
    statuses = [r.status for r in team.request_log if r.method == "events.list"]
    assert statuses[-1] == 200 and len(statuses) >= 4


def test_one_failing_calendar_among_healthy_ones(team: Emulator, database_url: str,
                                                 tmp_path: Path) -> None:
    others = [f"healthy{i}@group.calendar.google.com" for i in range(3)]
    for cal in others:
        team.add_calendar(cal, owners=["user@example.com"])
        team.insert_event(cal, timed("fine"))
    path = write_config(tmp_path, database_url, accounts=[{
        "name": "ops", "calendars": [*others, "missing@group.calendar.google.com"]}])
    result = run_cli(team, "-c", str(path), "once")
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("reconciler:")]
    assert len(errors) == 1
    assert "missing@group.calendar.google.com" in errors[0] and "404" in errors[0]
    assert "Traceback" not in result.stderr
    config_for(team, path)
    for cal in others:
        assert_mirror_exact(team, cal)
    status = run_cli(team, "-c", str(path), "status", "--json")
    states = {json.loads(line)["calendar"]: json.loads(line)["state"]
              for line in status.stdout.splitlines()}
    assert states["missing@group.calendar.google.com"] == "gone"
    assert states[others[0]] == "ok"


def test_no_change_pass_sends_exactly_one_request_per_calendar(
        calendar_emulator: Emulator, database_url: str, tmp_path: Path) -> None:
    cals = [f"c{i}@group.calendar.google.com" for i in range(6)]
    for cal in cals:
        calendar_emulator.add_calendar(cal, owners=["user@example.com"])
        calendar_emulator.insert_event(cal, timed("one"))
    path = write_config(tmp_path, database_url, accounts=[{"name": "ops", "calendars": cals}])
    assert run_cli(calendar_emulator, "-c", str(path), "once").returncode == 0
    calendar_emulator.clear_request_log()
    result = run_cli(calendar_emulator, "-c", str(path), "once")
    assert result.returncode == 0, result.stderr
    log = calendar_emulator.request_log
    assert [r.method for r in log] == ["events.list"] * len(cals)
    assert sorted(r.calendar_id for r in log) == sorted(cals)


def test_every_real_sample_shape_is_mirrored_unchanged(calendar_emulator: Emulator,
                                                       database_url: str, tmp_path: Path) -> None:
    calendar_emulator.add_calendar(TEAM, owners=["user@example.com"])
    resources = {resource["id"]: resource for _, resource in sample_events()}
    calendar_emulator.seed_raw(TEAM, list(resources.values()))
    config = config_for(calendar_emulator, write_config(tmp_path, database_url,
                                                        sync={"page_size": 4}))
    assert run_once(config) == 0
    rows = mirror(TEAM)
    assert set(rows) == set(resources)
    for event_id, resource in resources.items():
        assert rows[event_id][1] == resource
        assert rows[event_id][0] == resource.get("status", "confirmed")


def test_unparseable_events_are_stored_and_do_not_fail_the_calendar(
        team: Emulator, database_url: str, tmp_path: Path) -> None:
    odd = [
        {"kind": "calendar#event", "etag": '"1"', "id": "yearzero0", "status": "confirmed",
         "updated": "2025-01-01T00:00:00.000Z", "start": {"date": "0000-01-01"},
         "end": {"date": "0000-01-02"}},
        {"kind": "calendar#event", "etag": '"2"', "id": "nostart00", "status": "confirmed",
         "updated": "2025-01-01T00:00:00.000Z", "eventType": "teleportation"},
        {"kind": "calendar#event", "etag": '"3"', "id": "badtime00", "status": "tentative",
         "updated": "2025-01-01T00:00:00.000Z", "start": {"dateTime": "2038-13-45T99:00:00Z"}},
    ]
    team.seed_raw(TEAM, odd)
    team.insert_event(TEAM, timed("normal"))
    config = config_for(team, write_config(tmp_path, database_url))
    assert run_once(config) == 0
    assert_mirror_exact(team, TEAM)


@pytest.mark.mysql
def test_emoji_huge_description_and_800_attendees_on_mariadb(
        team: Emulator, mysql_url: str, tmp_path: Path) -> None:
    body = timed("🍜 Lunch with everyone 🎉")
    body["description"] = "📅" + "x" * 200_000
    body["attendees"] = [{"email": f"p{i}@example.com", "displayName": f"Person {i} 😀"}
                         for i in range(800)]
    event = team.insert_event(TEAM, body)
    config = config_for(team, write_config(tmp_path, mysql_url))
    assert run_once(config) == 0
    assert_mirror_exact(team, TEAM)
    assert len(json.dumps(mirror(TEAM)[event["id"]][1])) > 250_000


def test_updated_min_mode_mirrors_edits_and_deletions(team: Emulator, database_url: str,
                                                      tmp_path: Path) -> None:
    events = [team.insert_event(TEAM, timed(f"e{i}")) for i in range(6)]
    config = config_for(team, write_config(tmp_path, database_url,
                                           sync={"mode": "updated_min", "page_size": 4}))
    assert run_once(config) == 0
    team.patch_event(TEAM, events[0]["id"], {"summary": "edited"})
    team.delete_event(TEAM, events[1]["id"])
    team.clear_request_log()
    assert run_once(config) == 0
    assert_mirror_exact(team, TEAM)
    lists = [r for r in team.request_log if r.method == "events.list"]
    assert lists and all("syncToken" not in r.params for r in lists)
    assert all("updatedMin" in r.params for r in lists)


def test_updated_min_cursor_older_than_21_days_does_a_full_pass(
        team: Emulator, database_url: str, tmp_path: Path) -> None:
    events = [team.insert_event(TEAM, timed(f"e{i}")) for i in range(3)]
    config = config_for(team, write_config(tmp_path, database_url, sync={"mode": "updated_min"}))
    assert run_once(config) == 0
    team.delete_event(TEAM, events[0]["id"])
    Calendar.update(updated_min_cursor_ms=Calendar.updated_min_cursor_ms - 22 * 86_400_000).execute()
    team.clear_request_log()
    assert run_once(config) == 0
    assert_mirror_exact(team, TEAM)
    lists = [r for r in team.request_log if r.method == "events.list"]
    assert [("updatedMin" in r.params) for r in lists] == [False]
    assert mirror(TEAM)[events[0]["id"]][0] == "cancelled"


def test_updated_min_too_long_ago_410_falls_back_to_a_full_pass(database_url: str,
                                                                tmp_path: Path) -> None:
    emu = Emulator(updated_min_limit=dt.timedelta(days=1))
    with running_emulator(emu=emu) as team:
        team.add_calendar(TEAM, owners=["user@example.com"])
        events = [team.insert_event(TEAM, timed(f"e{i}")) for i in range(3)]
        config = config_for(team, write_config(tmp_path, database_url,
                                               sync={"mode": "updated_min"}))
        assert run_once(config) == 0
        team.delete_event(TEAM, events[1]["id"])
        Calendar.update(
            updated_min_cursor_ms=Calendar.updated_min_cursor_ms - 2 * 86_400_000).execute()
        team.clear_request_log()
        assert run_once(config) == 0
        assert_mirror_exact(team, TEAM)
        statuses = [(r.status, "updatedMin" in r.params) for r in team.request_log
                    if r.method == "events.list"]
        assert statuses == [(410, True), (200, False)]
