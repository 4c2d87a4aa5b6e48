"""Channel lifecycle against the emulator: open, renew with no gap, stop, back off, share.

Time moves with an injected clock for the manager and ``emu.clock`` for the
emulator (which expires channels by its own clock), in step.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from reconciler.emulator import Emulator
from reconciler.once import run_once
from reconciler.service import Service
from reconciler.status import calendar_status, render_table
from reconciler.store import calendars, leases
from reconciler.store import channels as channel_rows
from reconciler.store.models import Calendar, Channel
from reconciler.watch import channels
from reconciler.watch.runtime import WatchRuntime
from reconciler.watch.tokens import channel_token
from tests.helpers import REPO, config_for, emulator_env, run_cli, timed, wait_for
from tests.watch.conftest import Watched
from tests.watch.watch_helpers import SECRET, TEAM, ShiftedClock, free_port, notification, post, watch_config


def methods(emu: Emulator) -> list[str]:
    return [r.method for r in emu.request_log if r.method in ("events.watch", "channels.stop")]


def test_first_channel_follows_the_first_sync(team: Emulator, tmp_path: Path) -> None:
    port = free_port()
    config = config_for(team, watch_config(tmp_path, f"sqlite:///{tmp_path}/m.db", port))
    service = Service(config)
    runtime = WatchRuntime(service, config, serve=False)
    try:
        service.resolve_calendars()
        assert runtime.tick().opened == []  # never synced yet: nothing to watch
        assert run_once(config) == 0
        assert runtime.tick().opened == [TEAM]
        [channel] = team.channels()
        row = Channel.get()
        assert channel["id"] == row.channel_id and channel["resourceId"] == row.resource_id
        assert channel["address"] == f"http://127.0.0.1:{port}/hooks/calendar"
        assert channel["token"] == channel_token(SECRET, row.channel_id)
        assert TEAM not in channel["token"] and "user@" not in channel["token"]
        expected = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=7)
        assert abs((row.expiration - expected).total_seconds()) < 60
        assert row.owner == service.owner and row.state == "open"
        assert runtime.tick().opened == []  # idempotent
        assert methods(team) == ["events.watch"]
    finally:
        service.close()


def test_renewal_opens_the_new_channel_before_stopping_the_old(team: Emulator,
                                                              tmp_path: Path) -> None:
    port = free_port()
    config = config_for(team, watch_config(tmp_path, f"sqlite:///{tmp_path}/m.db", port,
                                           ttl=3600, renew_margin=600))
    assert run_once(config) == 0
    open_at_stop: list[list[str]] = []

    def before_request(account: str, method: str) -> None:
        if method == "channels.stop":
            open_at_stop.append([c["id"] for c in team.channels()])

    service = Service(config, before_request=before_request)
    clock = ShiftedClock()
    runtime = WatchRuntime(service, config, now=clock, serve=False)
    try:
        assert runtime.tick().opened == [TEAM]
        [old] = team.channels()
        clock.advance(team, 2900)  # 700 s left: more than renew_margin
        assert runtime.tick().renewed == []
        clock.advance(team, 150)  # 550 s left: renew now
        report = runtime.tick()
        assert report.renewed == [TEAM] and report.stopped == [old["id"]]
        [new] = team.channels()
        assert new["id"] != old["id"]
        assert methods(team) == ["events.watch", "events.watch", "channels.stop"]
        assert open_at_stop == [[old["id"], new["id"]]]  # both open: no gap
        assert [r.channel_id for r in Channel.select()] == [new["id"]]
        clock.advance(team, 3000)  # the new one is renewed in turn
        assert runtime.tick().renewed == [TEAM]
        assert len(team.channels()) == 1
    finally:
        service.close()


def test_a_channel_that_expired_unrenewed_is_replaced(watched: Watched) -> None:
    [old] = watched.emu.channels()
    watched.clock.advance(watched.emu, 8 * 86400)  # the process was down past expiry
    assert watched.emu.channels() == []
    report = watched.runtime.tick()
    assert report.opened == [TEAM] and report.stopped == []
    assert "channels.stop" not in methods(watched.emu)
    [new] = watched.emu.channels()
    assert new["id"] != old["id"] and Channel.select().count() == 1
    # notifications on the dead channel are now unknown; on the new one they are hints
    assert post(watched.port, notification(old, 5)) == 404
    assert post(watched.port, notification(new, 2)) == 200


def test_live_calendars_are_those_with_an_open_unexpired_channel(watched: Watched) -> None:
    """What the adaptive plan treats as watched (polled only as a safety net)."""
    now = watched.clock()
    assert channel_rows.live_calendars(now) == {watched.calendar.id}
    [row] = channel_rows.of_calendar(watched.calendar.id)
    assert row.expiration is not None
    assert channel_rows.live_calendars(row.expiration + dt.timedelta(seconds=1)) == set()
    channel_rows.mark_failed(row.id, watched.calendar.id, "refused", now, 1)
    assert channel_rows.live_calendars(now) == set()


def test_removed_calendar_has_its_channel_stopped(watched: Watched) -> None:
    calendars.mark_removed(watched.calendar.id)
    report = watched.runtime.tick()
    assert report.stopped and watched.emu.channels() == []
    assert Channel.select().count() == 0
    assert watched.runtime.tick().opened == []


def test_stop_closes_own_channels_and_another_worker_reopens(watched: Watched,
                                                              tmp_path: Path) -> None:
    stopped = watched.runtime.stop()
    assert len(stopped) == 1 and watched.emu.channels() == []
    assert not _answers(watched.port)  # the receiver stopped serving
    other = Service(watched.config)
    try:
        runtime = WatchRuntime(other, watched.config, serve=False)
        assert runtime.tick().opened == [TEAM]
        assert Channel.get().owner == other.owner
        assert watched.runtime.manager.stop_owned() == []  # not ours any more
        assert len(watched.emu.channels()) == 1
    finally:
        other.close()


def test_unsupported_calendar_backs_off_and_is_still_polled(team: Emulator,
                                                            tmp_path: Path) -> None:
    config = config_for(team, watch_config(tmp_path, f"sqlite:///{tmp_path}/m.db", free_port()))
    assert run_once(config) == 0
    service = Service(config)
    clock = ShiftedClock()
    runtime = WatchRuntime(service, config, now=clock, serve=False)
    try:
        team.inject_fault(TEAM, status=403, reason="pushNotSupportedForRequestedResource",
                          methods=["events.watch"])
        assert runtime.tick().failed == [TEAM]
        row = Channel.get()
        assert row.state == "failed" and row.error.startswith("AccessDenied")
        assert row.failures == 1 and row.retry_after > clock() + dt.timedelta(hours=23)
        for _ in range(3):
            assert runtime.tick().failed == []
        assert methods(team) == ["events.watch"]  # not retried every cycle
        [status] = calendar_status(config)
        assert status["channel"] == "failed" and status["channel_retry"] == row.retry_after
        assert status["channel_expires"] is None
        team.insert_event(TEAM, timed("polled anyway"))
        assert run_once(config) == 0
        clock.advance(team, 86400 + 60)
        assert runtime.tick().opened == [TEAM]
        assert [r.state for r in Channel.select()] == ["open"]  # failure forgotten
        [status] = calendar_status(config)
        assert status["channel"] == "open" and status["channel_expires"] == Channel.get().expiration
        assert "open" in render_table([status])
    finally:
        service.close()


def test_channel_work_is_claimed_per_calendar_apart_from_the_sync_lease(watched: Watched) -> None:
    calendars.mark_removed(watched.calendar.id)
    assert channels.claim_calendar(watched.calendar.id, "elsewhere:1:x", 60)  # another process
    report = watched.runtime.tick()
    assert report.busy == [TEAM] and len(watched.emu.channels()) == 1
    channels.release_calendar(watched.calendar.id, "elsewhere:1:x")
    assert leases.claim(watched.calendar.id, "syncer:2:y", 30)  # a sync in progress elsewhere
    assert watched.runtime.tick().stopped  # channel work does not wait for it
    assert Calendar.get_by_id(watched.calendar.id).lease_owner == "syncer:2:y"  # nor touch it
    assert Calendar.get_by_id(watched.calendar.id).watch_owner is None  # claim given back


def test_two_processes_open_exactly_one_channel(team: Emulator, tmp_path: Path,
                                                database_url: str) -> None:
    config = config_for(team, watch_config(tmp_path, database_url, free_port()))
    assert run_once(config) == 0
    services = [Service(config) for _ in range(4)]
    runtimes = [WatchRuntime(s, config, serve=False) for s in services]
    gate = threading.Barrier(len(runtimes))
    opened: list[str] = []

    def work(runtime: WatchRuntime) -> None:
        gate.wait()
        for _ in range(3):
            opened.extend(runtime.tick().opened)

    try:
        threads = [threading.Thread(target=work, args=(r,)) for r in runtimes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert opened == [TEAM]
        assert len(team.channels()) == 1 and Channel.select().count() == 1
        assert methods(team) == ["events.watch"]
    finally:
        for service in services:
            service.close()


def test_the_channel_work_claim_has_one_winner(team: Emulator, tmp_path: Path,
                                              database_url: str) -> None:
    config = config_for(team, watch_config(tmp_path, database_url, free_port()))
    assert run_once(config) == 0
    pk = Calendar.get().id
    gate = threading.Barrier(8)
    won: list[str] = []

    def claim(owner: str) -> None:
        gate.wait()
        if channels.claim_calendar(pk, owner, 60):
            won.append(owner)

    threads = [threading.Thread(target=claim, args=(f"host:{i}:x",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 1
    assert not channels.claim_calendar(pk, "late:9:x", 60)
    channels.release_calendar(pk, won[0])
    assert channels.claim_calendar(pk, "late:9:x", 60)


def test_watch_stop_all_and_list_commands(watched: Watched) -> None:
    path = str(watched.config.path)
    listed = run_cli(watched.emu, "-c", path, "watch", "list")
    assert listed.returncode == 0 and TEAM in listed.stdout and " open " in listed.stdout
    assert SECRET not in listed.stdout
    result = run_cli(watched.emu, "-c", path, "watch", "stop-all")
    assert result.returncode == 0, result.stderr
    assert "1 of 1 channel(s) stopped" in result.stdout
    assert watched.emu.channels() == [] and Channel.select().count() == 0
    assert watched.runtime.tick().opened == [TEAM]  # a running process reopens


def test_receiver_command_serves_alone_and_exits_0_on_sigterm(watched: Watched) -> None:
    watched.runtime.stop()  # frees the port; the channel row stays for the standalone receiver
    watched.runtime.tick()
    [channel] = watched.emu.channels()
    port = free_port()
    env = dict(emulator_env(watched.emu))
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "-c",
                             str(watched.config.path), "receiver", "--listen",
                             f"127.0.0.1:{port}"], env={**os.environ, **env}, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _answers(port), timeout=15, step=0.1)
        assert post(port, notification(channel, 40)) == 200
        assert Calendar.get_by_id(watched.calendar.id).sync_requested_at is not None
        assert post(port, notification(channel, 41, token="forged")) == 403
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=5)


def _answers(port: int) -> bool:
    try:
        return post(port, {}, path="/healthz", method="GET") == 200
    except OSError:
        return False


def test_receiver_without_a_secret_is_a_one_line_config_error(team: Emulator,
                                                              tmp_path: Path) -> None:
    from tests.helpers import write_config

    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db")
    result = run_cli(team, "-c", str(path), "receiver")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "watch.secret" in result.stderr
    bad = run_cli(team, "-c", str(path), "receiver", "--listen", "nope")
    assert bad.returncode == 2 and "--listen" in bad.stderr and "Traceback" not in bad.stderr
