"""``reconciler run`` with watch mode on, as a subprocess: the whole path, end to end.

The poll interval is 300 s, so an edit in the emulator that reaches the
database within seconds came through a real HTTP notification, the receiver,
``sync_requested_at`` and the run loop. SIGTERM stops the process's channels.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.clock import utcnow
from reconciler.emulator import Emulator
from reconciler.store import open_store
from reconciler.store.calendars import request_sync
from reconciler.store.models import Calendar, Channel
from tests.helpers import (
    REPO,
    assert_mirror_exact,
    emulator_env,
    lists_of,
    mirror,
    quiet_period,
    stop_process,
    timed,
    wait_for,
)
from tests.watch.watch_helpers import TEAM, free_port, watch_config


@pytest.fixture
def running(team: Emulator, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """``reconciler run`` on SQLite with watch on, interval 300 s; its channel open."""
    url = f"sqlite:///{tmp_path}/mirror.db"
    path = watch_config(tmp_path, url, free_port(), interval=300)
    open_store(url)  # migrated before `run` starts: two migrators on one SQLite file race
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "-c", str(path), "run"],
                            env={**os.environ, **emulator_env(team)}, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: Calendar.select().where(Calendar.last_success.is_null(False)).exists(),
                 timeout=40, what="the first sync")
        # DESIGN: a channel within 30 s of the first sync
        wait_for(lambda: len(team.channels()) == 1, timeout=30, what="the channel")
        assert team.hub.wait_idle(5)
        yield proc
    finally:
        stop_process(proc)


def test_run_gets_edits_within_seconds_and_stops_its_channel_on_sigterm(
        running: subprocess.Popen[str], team: Emulator) -> None:
    latencies = []
    for i in range(3):
        started = time.monotonic()
        event = team.insert_event(TEAM, timed(f"pushed {i}"))
        wait_for(lambda ev=event: ev["id"] in mirror(TEAM), timeout=10)
        latencies.append(time.monotonic() - started)
    assert max(latencies) < 5, latencies
    assert_mirror_exact(team, TEAM)
    assert Channel.select().where(Channel.state == "open").count() == 1
    running.send_signal(signal.SIGTERM)
    assert running.wait(15) == 0
    assert team.channels() == []
    assert Channel.select().count() == 0
    assert [r.method for r in team.request_log if r.method == "channels.stop"] == ["channels.stop"]


def test_run_turns_a_burst_of_1000_notifications_into_at_most_two_syncs(
        running: subprocess.Popen[str], team: Emulator) -> None:
    team.pause_notifications()
    for i in range(1000):
        team.insert_event(TEAM, timed(f"bulk {i}", hour=i % 20))
    before = len(lists_of(team, TEAM))
    team.resume_notifications()
    assert team.hub.wait_idle(30)
    wait_for(lambda: len(mirror(TEAM)) == 1001, timeout=15, what="the burst mirrored")
    calendar = Calendar.get(Calendar.calendar_id == TEAM)

    def settled() -> bool:
        # No notification on its way, no hint pending, no pass running, next poll far away
        # (the interval is 300 s): nothing but the sentinel can cause another request.
        row = Calendar.get_by_id(calendar.id)
        return bool(team.hub.wait_idle(0.05) and row.sync_requested_at is None
                    and row.lease_owner is None and row.next_due is not None
                    and row.next_due - utcnow() > dt.timedelta(seconds=150))

    lists = quiet_period(lambda: lists_of(team, TEAM), settled=settled,
                         sentinel=lambda: request_sync(calendar.id),
                         what="after the burst")[before:]
    exists = [d for d in team.deliveries() if d["state"] == "exists"]
    assert len(exists) == 1000 and {d["status"] for d in exists} == {200}
    assert 1 <= len(lists) <= 2, [(r.start, r.params.get("pageToken")) for r in lists]
    assert_mirror_exact(team, TEAM)
