"""``reconciler run`` in-process against the emulator and SQLite: schedule, sync soon,
backoff, parked accounts, discovery, audits, quota, metrics.

Each test runs a real :class:`Daemon` (APScheduler, thread pool, real HTTP to
the emulator, real SQLite) in a background thread and watches what the
emulator was asked (its request log) and what the mirror holds.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from reconciler.config import load_config
from reconciler.daemon import planning
from reconciler.daemon.backoff import Delay
from reconciler.daemon.scheduler import Daemon
from reconciler.emulator import Emulator
from reconciler.status import calendar_status
from reconciler.store import calendars, open_store
from reconciler.store.changes import read_changes
from reconciler.store.models import Account, Calendar, Event
from tests.daemon.support import free_port, load, running_daemon, write_daemon_config
from tests.helpers import assert_mirror_exact, lists_of, mirror, quiet_period, timed, wait_for

USER = "user@example.com"


def group(i: int | str) -> str:
    return f"cal-{i}@group.calendar.google.com"


def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/mirror.db"


def row(calendar_id: str) -> Calendar:
    found = calendars.get_calendar(calendar_id)
    assert found is not None, calendar_id
    return found


def synced(*calendar_ids: str) -> bool:
    return all((r := calendars.get_calendar(c)) is not None and r.last_success is not None
               for c in calendar_ids)


def idle(daemon: Daemon, calendar_id: str, account: str = "ops") -> bool:
    """No pass of the calendar running or requested, and its next run an interval away.

    Read from the daemon's own decisions (the stored request and lease, the
    scheduler's next run time), so :func:`quiet_period` needs no sleep.
    """
    stored = row(calendar_id)
    upcoming = daemon.next_run_times().get(f"calendar:{account}:{calendar_id}")
    interval = dt.timedelta(seconds=stored.interval or daemon.config.sync.interval)
    return (stored.sync_requested_at is None and stored.lease_owner is None
            and upcoming is not None and upcoming - dt.datetime.now(dt.UTC) > interval / 2)


def test_first_passes_start_at_once_spread_and_repeat_start_to_start(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    ids = [group(i) for i in range(20)]
    for cid in ids:
        emu.add_calendar(cid)
        emu.insert_event(cid, timed("hello"))
    config = load(emu, write_daemon_config(tmp_path, db_url(tmp_path), [
        {"name": "ops", "calendars": ids}], {"sync": {"interval": 20, "jitter": 0.1}}))
    began = time.monotonic()
    with running_daemon(config) as daemon:
        wait_for(lambda: synced(*ids), 10, "first passes")
        firsts = [lists_of(emu, cid)[0].start - began for cid in ids]
        # DESIGN: at once, spread by at most 10% of the interval (2 s here), plus start-up.
        assert max(firsts) < 2.0 + 1.0
        assert max(firsts) - min(firsts) > 0.3, "first passes were not spread"
        jobs = {job.id: job for job in daemon.scheduler.get_jobs()}
        for cid in ids:
            job = jobs[f"calendar:ops:{cid}"]
            assert job.max_instances == 1 and job.coalesce and job.misfire_grace_time >= 20
            stored = row(cid)
            assert stored.last_attempt is not None and stored.next_due is not None
            # start-to-start: due one interval after the pass started (DATETIME granularity)
            gap = (stored.next_due - stored.last_attempt).total_seconds()
            assert 18.5 <= gap <= 20.5, gap
            assert_mirror_exact(emu, cid)
        assert all(len(lists_of(emu, cid)) == 1 for cid in ids)  # nothing ran early


def test_sync_soon_during_a_running_pass_makes_exactly_one_more(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    cid = group("soon")
    emu.add_calendar(cid)
    config = load(emu, write_daemon_config(tmp_path, db_url(tmp_path), [
        {"name": "ops", "calendars": [cid]}], {"sync": {"interval": 600}}))
    with running_daemon(config, rand=lambda: 0.0) as daemon:  # first pass at once
        wait_for(lambda: synced(cid), 10, "first pass")
        pk = row(cid).id
        assert len(lists_of(emu, cid)) == 1

        # Idle: a request is noticed within about a second.
        emu.insert_event(cid, timed("new"))
        asked = time.monotonic()
        calendars.request_sync(pk)
        wait_for(lambda: len(lists_of(emu, cid)) == 2, 5, "the requested pass")
        assert lists_of(emu, cid)[1].start - asked < 1.5
        wait_for(lambda: row(cid).sync_requested_at is None, 5, "request answered")
        assert_mirror_exact(emu, cid)

        # A burst of requests while a pass is running (stalled 2 s) -> exactly one more pass.
        emu.inject_fault(cid, kind="stall", stall_seconds=2.0, methods=["events.list"])
        calendars.request_sync(pk)
        wait_for(lambda: emu.in_flight.current > 0, 5, "the stalled pass inside events.list")
        emu.insert_event(cid, timed("during the stall"))
        for _ in range(5):
            calendars.request_sync(pk)
        burst_sent = time.monotonic()
        wait_for(lambda: len(lists_of(emu, cid)) >= 4, 8, "one more pass")

        def sentinel() -> None:
            calendars.request_sync(pk)

        passes = quiet_period(lambda: lists_of(emu, cid), settled=lambda: idle(daemon, cid),
                              sentinel=sentinel, what="after the burst during a pass")
        assert len(passes) == 4, [p.start for p in passes]
        assert passes[2].end > burst_sent  # the burst really came while that pass ran
        assert passes[3].start >= passes[2].end  # after the running one, never beside it
        assert_mirror_exact(emu, cid)

        # A burst while idle coalesces into one or two passes.
        before = len(lists_of(emu, cid))
        for _ in range(10):
            calendars.request_sync(pk)
        wait_for(lambda: len(lists_of(emu, cid)) > before, 5, "the burst's pass")
        passes = quiet_period(lambda: lists_of(emu, cid), settled=lambda: idle(daemon, cid),
                              sentinel=sentinel, what="after the idle burst")
        assert 1 <= len(passes) - before <= 2, [p.start for p in passes[before:]]


def test_backoff_grows_on_failures_resets_on_success_and_spares_the_others(
        calendar_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    emu = calendar_emulator
    sick, healthy = group("sick"), group("healthy")
    emu.add_calendar(sick)
    emu.add_calendar(healthy)
    config = load(emu, write_daemon_config(tmp_path, db_url(tmp_path), [
        {"name": "ops", "calendars": [sick, healthy]}],
        {"sync": {"interval": 1, "backoff_max": 4}}))
    # The scheduler's decisions, recorded as it makes them: (failures, delay, when decided).
    decisions: list[tuple[int, Delay, float]] = []
    policy = planning.failure_delay

    def recorded(exc: BaseException, failures: int, *args: Any) -> Delay:
        delay = policy(exc, failures, *args)
        decisions.append((failures, delay, time.monotonic()))
        return delay

    monkeypatch.setattr(planning, "failure_delay", recorded)
    with running_daemon(config, rand=lambda: 1.0):  # no jitter: delays are exactly 1, 2, 4, 4 (capped)
        wait_for(lambda: synced(sick, healthy), 10, "first passes")
        emu.inject_fault(sick, status=503, reason="backendError", count=1000,
                         methods=["events.list"])
        wait_for(lambda: row(sick).consecutive_failures >= 4, 20, "four failures")
        emu.clear_faults()
        assert "503" in (row(sick).last_error or "") or row(sick).last_error_kind
        wait_for(lambda: row(sick).consecutive_failures == 0, 8, "recovery")
        recovered = len(lists_of(emu, sick))
        wait_for(lambda: len(lists_of(emu, sick)) >= recovered + 2, 8, "two passes after recovery")
        # Back to the interval: the stored schedule is one interval after the last success.
        back = row(sick)
        assert back.next_due is not None and back.last_success is not None
        assert back.next_due - back.last_success <= dt.timedelta(seconds=1.5), back.next_due
        assert back.consecutive_failures == 0
    # Exponential growth, capped, in the order the failures happened.
    assert [(f, d.seconds, d.reason) for f, d, _ in decisions[:4]] == [
        (1, 1.0, "backoff"), (2, 2.0, "backoff"), (3, 4.0, "backoff"), (4, 4.0, "backoff")]
    # Each retry came no sooner than the delay the scheduler had decided.
    failed = [r for r in lists_of(emu, sick) if r.status == 503]
    for (_f, delay, decided), retry in zip(decisions, failed[1:], strict=False):
        assert retry.start >= decided + delay.seconds - 0.05, (delay, retry.start - decided)
    # The healthy calendar was never backed off and kept being polled meanwhile.
    assert row(healthy).consecutive_failures == 0 and row(healthy).last_error is None
    during = [r for r in lists_of(emu, healthy) if failed[0].start < r.start < failed[3].start]
    assert len(during) >= 3 and all(r.status == 200 for r in during)


def test_retry_after_is_honoured(calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    cid = group("limited")
    emu.add_calendar(cid)
    config = load(emu, write_daemon_config(tmp_path, db_url(tmp_path), [
        {"name": "ops", "calendars": [cid]}], {"sync": {"interval": 1}}))
    with running_daemon(config, rand=lambda: 0.0):
        wait_for(lambda: synced(cid), 10, "first pass")
        emu.inject_fault(cid, status=429, reason="rateLimitExceeded", retry_after=3,
                         methods=["events.list"])
        wait_for(lambda: any(r.status == 429 for r in lists_of(emu, cid)), 5, "the 429")
        wait_for(lambda: row(cid).consecutive_failures == 0 and
                 lists_of(emu, cid)[-1].status == 200, 8, "the pass after Retry-After")
        reqs = lists_of(emu, cid)
        limited = next(i for i, r in enumerate(reqs) if r.status == 429)
        assert reqs[limited + 1].start - reqs[limited].end >= 2.9


def token_file(tmp_path: Path, emu: Emulator, user: str) -> Path:
    """An authorized-user token file whose refresh goes to the emulator's token endpoint."""
    path = tmp_path / f"{user}.json"
    path.write_text(json.dumps({
        "type": "authorized_user", "client_id": "id.apps.googleusercontent.com",
        "client_secret": "s3cret", "refresh_token": f"emulator-user:{user}",
        "token_uri": emu.base_url.split("/calendar/v3/")[0] + "/token"}))
    return path


def test_revoked_credentials_park_the_account_not_the_others(
        calendar_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_CALENDAR_EMULATOR_HOST")  # real credentials, real refreshes
    emu = calendar_emulator
    alice, bob = "alice@example.com", "bob@example.com"
    a1, a2, b1 = group("a1"), group("a2"), group("b1")
    for cid, owner in ((a1, alice), (a2, alice), (b1, bob)):
        emu.add_calendar(cid, owners=[owner])
    alice_token = token_file(tmp_path, emu, alice)
    path = write_daemon_config(tmp_path, db_url(tmp_path), [
        {"name": "alice", "credentials": str(alice_token), "calendars": [a1, a2]},
        {"name": "bob", "credentials": str(token_file(tmp_path, emu, bob)), "calendars": [b1]}],
        {"sync": {"interval": 1}, "google": {"api_endpoint": emu.base_url}})
    config = load_config(path, env={})
    open_store(config.database.url)
    with running_daemon(config) as daemon:
        wait_for(lambda: synced(a1, a2, b1), 10, "first passes")
        # Revoke alice's grant: her next request gets 401, the refresh gets invalid_grant.
        emu.revoke_refresh_token(f"emulator-user:{alice}")
        emu.revoke_access_token(json.loads(alice_token.read_text())["token"])
        # Parked by the failed pass, then given its retry time by the scheduler's decision.
        wait_for(lambda: (parked := Account.get(Account.name == "alice")).state == "needs_reauth"
                 and parked.next_auth_retry is not None, 5, "alice parked")
        parked_at = time.monotonic()
        account = Account.get(Account.name == "alice")
        assert account.next_auth_retry is not None
        wait_s = (account.next_auth_retry - row(a1).last_attempt).total_seconds()
        assert 14 * 60 <= wait_s <= 31 * 60
        # Bob's calendar (interval 1 s) is the sentinel: three more of its passes; had
        # alice's calendars been polled meanwhile, their requests would be in the log too.
        wait_for(lambda: len([r for r in lists_of(emu, b1) if r.start > parked_at]) >= 3, 15,
                 "bob's calendar polled on")
        late = [r for c in (a1, a2) for r in lists_of(emu, c) if r.start > parked_at + 0.3]
        assert late == []  # no tight loop, and the account's other calendar waits too
        # The scheduler's decision: both of alice's calendars wait for the re-auth probe.
        wait_for(lambda: all(
            daemon.next_run_times()[f"calendar:alice:{c}"] - dt.datetime.now(dt.UTC)
            > dt.timedelta(minutes=10) for c in (a1, a2)), 10, "alice's calendars held back")
        states = {s["calendar"]: s["state"] for s in calendar_status(config)}
        assert states[a1] == states[a2] == "needs_reauth" and states[b1] == "ok"


def test_discovery_adds_and_removes_calendars_while_running(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    shared, later = group("shared"), group("later")
    emu.add_calendar(shared, owners=["boss@example.com"])
    emu.share(shared, USER, role="reader")
    emu.add_calendar(later, owners=["boss@example.com"])
    emu.insert_event(later, timed("in later"))
    config = load(emu, write_daemon_config(tmp_path, db_url(tmp_path), [
        {"name": "ops", "discover": True}], {"sync": {"interval": 1}}))
    with running_daemon(config) as daemon:
        wait_for(lambda: synced(shared, USER), 10, "discovered calendars")
        assert later not in daemon.scheduled().values()

        emu.share(later, USER, role="reader")
        wait_for(lambda: synced(later), 8, "a newly shared calendar")
        assert row(later).last_mode == "full" or len(lists_of(emu, later)) >= 1
        assert lists_of(emu, later)[0].params.get("syncToken") is None  # first sync is full
        assert_mirror_exact(emu, later)
        emu.add_calendar(group("created"), owners=[USER])
        wait_for(lambda: synced(group("created")), 8, "a newly created calendar")

        emu.unshare(later, USER)
        wait_for(lambda: row(later).removed, 8, "the unshared calendar marked removed")
        wait_for(lambda: later not in daemon.scheduled().values(), 3, "its job removed")
        count = len(lists_of(emu, later))
        # The shared calendar (same interval) is the sentinel: two more of its passes.
        polled = len(lists_of(emu, shared))
        wait_for(lambda: len(lists_of(emu, shared)) >= polled + 2, 10, "two more polls of another")
        assert len(lists_of(emu, later)) == count  # no longer polled
        assert any(ev["summary"] == "in later" for _s, ev in mirror(later).values())  # rows kept


def test_purge_removed_deletes_the_rows(calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    gone = group("gone")
    emu.add_calendar(gone, owners=["boss@example.com"])
    emu.share(gone, USER)
    emu.insert_event(gone, timed("bye"))
    # $GOOGLE_CALENDAR_EMULATOR_HOST is refused with purge_removed: name the endpoint instead.
    path = write_daemon_config(tmp_path, db_url(tmp_path), [{"name": "ops", "discover": True}], {
        "sync": {"interval": 1, "purge_removed": True}, "google": {"api_endpoint": emu.base_url}})
    config = load_config(path, env={})
    open_store(config.database.url)
    with running_daemon(config):
        wait_for(lambda: synced(gone), 10, "first pass")
        emu.unshare(gone, USER)
        wait_for(lambda: calendars.get_calendar(gone) is None, 8, "rows purged")
        assert mirror(gone) == {}


def test_audit_repairs_a_mirror_edited_behind_the_engines_back(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    cid = group("audited")
    emu.add_calendar(cid)
    events = [emu.insert_event(cid, timed(f"e{i}", hour=i)) for i in range(4)]
    config = load(emu, write_daemon_config(tmp_path, db_url(tmp_path), [
        {"name": "ops", "calendars": [cid]}], {"sync": {"interval": 1, "audit_interval": 3}}))
    with running_daemon(config) as daemon:
        wait_for(lambda: synced(cid), 10, "first pass")
        before = read_changes(0, 10_000)[-1]["id"]
        pk = row(cid).id
        Event.delete().where((Event.calendar == pk)
                             & (Event.event_id == events[0]["id"])).execute()
        altered = json.dumps(dict(events[1], summary="edited behind its back"))
        Event.update(etag='"old"', raw=altered, updated_ms=Event.updated_ms - 60_000).where(
            (Event.calendar == pk) & (Event.event_id == events[1]["id"])).execute()
        wait_for(lambda: daemon.metrics.audits._value.get() >= 1 and
                 daemon.metrics.drift.labels("created")._value.get() >= 1, 10, "an audit")
        assert daemon.metrics.drift.labels("updated")._value.get() >= 1
        assert_mirror_exact(emu, cid)
        repaired = {(c["event_id"], c["kind"]) for c in read_changes(before, 10_000)}
        assert {(events[0]["id"], "created"), (events[1]["id"], "updated")} <= repaired
        fulls = [r for r in lists_of(emu, cid) if "syncToken" not in r.params]
        assert len(fulls) >= 2  # the first sync and the audit listing


def test_quota_budget_paces_requests(calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    ids = [group(f"q{i}") for i in range(12)]
    for cid in ids:
        emu.add_calendar(cid)
    config = load(emu, write_daemon_config(tmp_path, db_url(tmp_path), [
        {"name": "ops", "calendars": ids}],
        {"sync": {"interval": 600, "concurrency": 8},
         "quota": {"per_user_requests_per_minute": 10}}))  # one every 6 s, 10 s of burst
    started = time.monotonic()
    with running_daemon(config, rand=lambda: 0.0) as daemon:
        # The bucket holds 10 s worth (1.67 requests); the other workers reserve the
        # next tokens, 6 s apart; stopping ends the waits.
        wait_for(lambda: daemon.metrics.quota_waits._value.get() > 60, 30,
                 "requests waiting for the budget")
        sent = len(emu.request_log)  # answered requests: each was let through
        assert sent <= 10 / 6 + (time.monotonic() - started) / 6
        assert sum(synced(cid) for cid in ids) <= sent


def test_metrics_and_healthz(calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    cid = group("metrics")
    emu.add_calendar(cid)
    emu.insert_event(cid, timed("counted"))
    port = free_port()
    config = load(emu, write_daemon_config(tmp_path, db_url(tmp_path), [
        {"name": "ops", "calendars": [cid]}],
        {"sync": {"interval": 600}, "metrics": {"port": port}}))
    with running_daemon(config, rand=lambda: 0.0):
        wait_for(lambda: synced(cid), 10, "first pass")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert resp.status == 200 and json.load(resp)["status"] == "ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        assert 'reconciler_syncs_total{mode="full"} 1.0' in text
        assert 'reconciler_api_requests_total{method="events.list"} 1.0' in text
        assert 'reconciler_events_applied_total{kind="created"} 1.0' in text
        assert f'reconciler_calendar_lag_seconds{{account="ops",calendar="{cid}"}}' in text
        assert "reconciler_leases_held 0.0" in text


def test_a_sighup_during_a_reload_is_applied_after_it(
        calendar_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    emu = calendar_emulator
    cid = group("reload")
    emu.add_calendar(cid)
    config = load(emu, write_daemon_config(tmp_path, db_url(tmp_path), [
        {"name": "ops", "calendars": [cid]}], {"sync": {"interval": 600}}))
    from reconciler.daemon import scheduler as scheduler_module

    release = threading.Event()
    entered = threading.Semaphore(0)
    real = scheduler_module.reload_config

    def slow_reload(current: Any, path: Any) -> Any:
        entered.release()
        release.wait(10)  # the first reload is still running when the second SIGHUP comes
        return real(current, path)

    monkeypatch.setattr(scheduler_module, "reload_config", slow_reload)
    caplog.set_level(logging.INFO, logger="reconciler.daemon")
    with running_daemon(config, rand=lambda: 0.0) as daemon:
        wait_for(lambda: synced(cid), 10, "first pass")
        daemon.request_reload()
        assert entered.acquire(timeout=10)
        daemon.request_reload()  # during the first one
        release.set()
        wait_for(lambda: sum("config reloaded" in r.getMessage() for r in caplog.records) == 2,
                 15, "both reloads applied")
