"""Crash safety and the CLI's contract: exit statuses, one-line errors, the change feed."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from reconciler.store.changes import read_changes
from reconciler.store.models import Calendar, Event
from tests.helpers import REPO, assert_mirror_exact, config_for, emulator_env, run_cli, write_config

TEAM = "team@group.calendar.google.com"


def seed(emu: Emulator, count: int) -> None:
    emu.add_calendar(TEAM, owners=["user@example.com"])
    emu.seed_raw(TEAM, [{
        "kind": "calendar#event", "etag": f'"{1000 + i}"', "id": f"evt{i:05d}",
        "status": "confirmed", "updated": "2025-01-01T00:00:00.000Z", "summary": f"event {i}",
        "start": {"dateTime": "2025-01-01T10:00:00Z"}, "end": {"dateTime": "2025-01-01T11:00:00Z"},
    } for i in range(count)])


@pytest.mark.slow
def test_sigkill_between_pages_then_resume(calendar_emulator: Emulator, database_url: str,
                                           tmp_path: Path) -> None:
    seed(calendar_emulator, 3000)
    path = write_config(tmp_path, database_url, sync={"page_size": 50, "lease_time": 60})
    env = dict(os.environ, **emulator_env(calendar_emulator))
    config_for(calendar_emulator, path)  # binds the store for the checks below
    partial_seen = False
    for attempt in range(6):
        proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "-c", str(path), "once"],
                                env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        # Kill once some pages are in, but before the listing completes.
        while time.monotonic() < deadline and proc.poll() is None:
            count = Event.select().count()
            if count >= 150 * (attempt + 1):
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        row = Calendar.get_or_none(Calendar.calendar_id == TEAM)
        if row is not None and row.sync_token is None and 0 < Event.select().count() < 3000:
            partial_seen = True
            assert row.lease_owner is not None  # the dead process still "holds" it
    assert partial_seen, "no kill landed between pages"
    started = time.monotonic()
    result = run_cli(calendar_emulator, "-c", str(path), "once")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30  # the dead owner's lease was taken over at once
    assert_mirror_exact(calendar_emulator, TEAM)
    per_event = collections.Counter(c["event_id"] for c in read_changes(0, 100_000))
    assert len(per_event) == 3000 and set(per_event.values()) == {1}


def test_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[sync]\ninterval = "soon"\npage_size = 9999\n[[accounts]]\nname = "x"\n')
    result = run_cli(None, "-c", str(path), "once")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "sync.interval" in result.stderr and "sync.page_size" in result.stderr
    assert str(path.name) in result.stderr


def test_missing_config_file_is_exit_2(tmp_path: Path) -> None:
    result = run_cli(None, "-c", str(tmp_path / "nope.toml"), "once")
    assert result.returncode == 2 and "nope.toml" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_database_is_one_line(calendar_emulator: Emulator, tmp_path: Path) -> None:
    path = write_config(tmp_path, "mysql://root:secretpw@127.0.0.1:1/nothing")
    result = run_cli(calendar_emulator, "-c", str(path), "once")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot open database" in lines[0]
    assert "secretpw" not in result.stderr


def test_unknown_calendar_option_is_a_usage_error(calendar_emulator: Emulator,
                                                  tmp_path: Path) -> None:
    seed(calendar_emulator, 1)
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db")
    result = run_cli(calendar_emulator, "-c", str(path), "once", "--calendar", "nope@example.com")
    assert result.returncode == 2 and "nope@example.com" in result.stderr


def test_export_contract_and_changes_follow(calendar_emulator: Emulator, tmp_path: Path) -> None:
    seed(calendar_emulator, 3)
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db")
    assert run_cli(calendar_emulator, "-c", str(path), "once").returncode == 0
    calendar_emulator.delete_event(TEAM, "evt00001")
    assert run_cli(calendar_emulator, "-c", str(path), "once").returncode == 0

    lines = [json.loads(x) for x in run_cli(None, "-c", str(path), "export").stdout.splitlines()]
    assert [sorted(x) for x in lines] == [["account", "calendar", "event", "status"]] * 2
    assert {x["event"]["id"] for x in lines} == {"evt00000", "evt00002"}
    assert lines[0]["account"] == "ops" and lines[0]["calendar"] == TEAM
    everything = run_cli(None, "-c", str(path), "export", "--include-cancelled",
                         "--calendar", TEAM).stdout.splitlines()
    statuses = {json.loads(x)["event"]["id"]: json.loads(x)["status"] for x in everything}
    assert statuses["evt00001"] == "cancelled"

    feed = [json.loads(x) for x in run_cli(None, "-c", str(path), "changes").stdout.splitlines()]
    assert [c["id"] for c in feed] == [1, 2, 3, 4] and feed[-1]["kind"] == "deleted"
    since = [json.loads(x) for x in
             run_cli(None, "-c", str(path), "changes", "--since", "3").stdout.splitlines()]
    assert [c["id"] for c in since] == [4]

    follower = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", "-c", str(path), "changes", "--since", "4",
         "--follow", "--poll", "0.1"], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        calendar_emulator.patch_event(TEAM, "evt00002", {"summary": "renamed"})
        assert run_cli(calendar_emulator, "-c", str(path), "once").returncode == 0
        line = follower.stdout.readline() if follower.stdout else ""
        assert json.loads(line)["event_id"] == "evt00002"
        assert json.loads(line)["kind"] == "updated" and json.loads(line)["id"] == 5
    finally:
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(timeout=10) == 0


def test_once_waits_for_a_live_lease_then_reports_it(calendar_emulator: Emulator,
                                                     tmp_path: Path) -> None:
    seed(calendar_emulator, 1)
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db", sync={"lease_time": 5})
    assert run_cli(calendar_emulator, "-c", str(path), "once").returncode == 0
    config_for(calendar_emulator, path)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        from reconciler.store import leases
        row = Calendar.get(Calendar.calendar_id == TEAM)
        assert leases.claim(row.id, f"{socket.gethostname()}:{holder.pid}:live", 5)
        started = time.monotonic()
        result = run_cli(calendar_emulator, "-c", str(path), "once")
        waited = time.monotonic() - started
        # Renewed by nobody, the live holder's lease expires after 5 s and is then taken.
        assert result.returncode == 0, result.stderr
        assert 3 <= waited < 20
    finally:
        holder.kill()
        holder.wait()


def test_once_verify_fails_when_the_mirror_drifted_and_repairs_it(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    seed(calendar_emulator, 5)
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db")
    assert run_cli(calendar_emulator, "-c", str(path), "once", "--verify").returncode == 0
    config_for(calendar_emulator, path)
    Event.delete().where(Event.event_id == "evt00001").execute()  # edited behind our back
    Event.update(etag='"stale"', raw='{"id": "evt00002"}').where(
        Event.event_id == "evt00002").execute()
    result = run_cli(calendar_emulator, "-c", str(path), "once", "--verify")
    assert result.returncode == 1
    assert "mirror differed" in result.stderr and "1 missing, 1 outdated" in result.stderr
    assert result.stderr.count("mirror differed") == 1, result.stderr  # reported once, by verify
    assert_mirror_exact(calendar_emulator, TEAM)
    again = run_cli(calendar_emulator, "-c", str(path), "once", "--verify")
    assert again.returncode == 0, again.stderr


def test_malformed_credentials_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "key.json").write_text('{"type": "something_else"}')
    path = tmp_path / "r.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/m.db"\n[[accounts]]\nname = "ops"\n'
                    'credentials = "key.json"\ncalendars = ["team@group.calendar.google.com"]\n')
    result = run_cli(None, "-c", str(path), "once",
                     env={"GOOGLE_CALENDAR_EMULATOR_HOST": ""})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "account ops" in lines[0] and "key.json" in lines[0]
