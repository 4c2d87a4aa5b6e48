"""Edits in the emulator reach the database through real push notifications.

The emulator POSTs its notifications over HTTP to the receiver (waitress, in
process); :class:`HintLoop` plays the poller with a 300 s interval, so an edit
that arrives within seconds can only have come through a hint.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from tests.helpers import assert_mirror_exact, lists_of, mirror, quiet_period, timed, wait_for
from tests.watch.conftest import Watched, start_watch
from tests.watch.watch_helpers import TEAM, HintLoop


def test_an_edit_reaches_the_database_long_before_the_poll(team: Emulator, tmp_path: Path,
                                                            database_url: str) -> None:
    w = start_watch(team, tmp_path, database_url)
    try:
        with HintLoop(w.service, interval=300) as loop:
            event = team.insert_event(TEAM, timed("pushed"))
            wait_for(lambda: event["id"] in mirror(TEAM), timeout=5, what="the pushed edit")
            team.patch_event(TEAM, event["id"], {"summary": "renamed"})
            wait_for(lambda: mirror(TEAM)[event["id"]][1].get("summary") == "renamed", timeout=5)
        assert loop.count("poll") == 0 and loop.count("hint") >= 2
        assert_mirror_exact(team, TEAM)
        assert [d["status"] for d in team.deliveries()] == [200, 200, 200]
    finally:
        w.runtime.stop()
        w.service.close()


def test_a_burst_of_1000_notifications_leads_to_at_most_two_syncs(watched: Watched) -> None:
    emu = watched.emu
    emu.pause_notifications()
    for i in range(1000):
        emu.insert_event(TEAM, timed(f"bulk {i}", hour=i % 20))
    with HintLoop(watched.service, interval=300) as loop:
        emu.resume_notifications()
        assert emu.hub.wait_idle(30)
        wait_for(lambda: loop.passes, 10, "a pass")
        # Any pass the burst causes (the trailing hint's too) comes before the sentinel's.
        quiet_period(lambda: lists_of(emu, TEAM), settled=lambda: loop.idle(emu),
                     sentinel=loop.sentinel, what="after the burst")
        passes = loop.passes[:-1]  # the last one is the sentinel's
    exists = [d for d in emu.deliveries() if d["state"] == "exists"]
    assert len(exists) == 1000 and {d["status"] for d in exists} == {200}
    assert 1 <= len(passes) <= 2, passes
    assert_mirror_exact(emu, TEAM)


def test_a_hint_during_a_sync_causes_exactly_one_more_pass(watched: Watched) -> None:
    emu = watched.emu
    with HintLoop(watched.service, interval=300) as loop:
        emu.inject_fault(TEAM, kind="stall", stall_seconds=2.0, methods=["events.list"])
        emu.insert_event(TEAM, timed("first edit"))
        wait_for(lambda: loop.busy and emu.in_flight.current > 0, 5,
                 "the first pass stalled inside events.list")
        late = emu.insert_event(TEAM, timed("edit during the sync"))
        edited = time.monotonic()
        wait_for(lambda: late["id"] in mirror(TEAM), timeout=10, what="the late edit")
        quiet_period(lambda: lists_of(emu, TEAM), settled=lambda: loop.idle(emu),
                     sentinel=loop.sentinel, what="after the hint during a sync")
        passes = loop.passes[:-1]  # the last one is the sentinel's
    assert [why for _s, _e, why in passes] == ["hint", "hint"], passes
    first, second = passes
    assert first[1] > edited  # the edit (and its hint) came while the first pass ran
    assert second[0] >= first[1]  # the second pass started after the first ended
    assert_mirror_exact(emu, TEAM)


def test_a_lost_hint_is_covered_by_the_next_poll(team: Emulator, tmp_path: Path) -> None:
    w = start_watch(team, tmp_path, f"sqlite:///{tmp_path}/mirror.db")
    try:
        assert team.hub.wait_idle(5)
        with HintLoop(w.service, interval=2.0) as loop:
            team.drop_notifications(1)
            event = team.insert_event(TEAM, timed("hint lost"))
            assert [d["dropped"] for d in team.deliveries()] == [False, True]
            wait_for(lambda: event["id"] in mirror(TEAM), timeout=6)
        assert loop.count("hint") == 0 and loop.count("poll") >= 1
        assert_mirror_exact(team, TEAM)
        # the next message (number 3) is accepted although number 2 never arrived
        with HintLoop(w.service, interval=300) as loop:
            other = team.insert_event(TEAM, timed("hint delivered"))
            wait_for(lambda: other["id"] in mirror(TEAM), timeout=5)
        assert loop.count("hint") == 1
    finally:
        w.runtime.stop()
        w.service.close()


@pytest.mark.parametrize("state", ["not_exists"])
def test_other_resource_states_are_hints_too(watched: Watched, state: str) -> None:
    from reconciler.store.models import Calendar
    from tests.watch.watch_helpers import notification, post

    [channel] = watched.emu.channels()
    assert post(watched.port, notification(channel, 5, state=state)) == 200
    assert Calendar.get_by_id(watched.calendar.id).sync_requested_at is not None
