"""One cause, one line: an account whose credentials are refused logs one line for the
account, not one per calendar (six calendars of one account fail together here)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest

from reconciler.config import load_config
from reconciler.emulator import Emulator
from reconciler.store import calendars, open_store
from reconciler.store.models import Account
from tests.daemon.support import running_daemon, write_daemon_config
from tests.daemon.test_daemon import group, synced, token_file
from tests.helpers import wait_for


def test_a_refused_account_is_one_line_for_the_account(
        calendar_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("GOOGLE_CALENDAR_EMULATOR_HOST")  # real credentials, real refreshes
    emu = calendar_emulator
    alice, bob = "alice@example.com", "bob@example.com"
    mine = [group(f"alice{i}") for i in range(6)]
    for cid in mine:
        emu.add_calendar(cid, owners=[alice])
    emu.add_calendar(group("bob"), owners=[bob])
    emu.revoke_refresh_token(f"emulator-user:{alice}")  # refused from the start
    tokens = {user: token_file(tmp_path, emu, user) for user in (alice, bob)}
    for token in tokens.values():
        token.chmod(0o600)
    path = write_daemon_config(tmp_path, f"sqlite:///{tmp_path}/mirror.db", [
        {"name": "alice", "credentials": str(tokens[alice]), "calendars": mine},
        {"name": "bob", "credentials": str(tokens[bob]), "calendars": [group("bob")]}],
        {"sync": {"interval": 1, "jitter": 0}, "google": {"api_endpoint": emu.base_url}})
    config = load_config(path, env={})
    open_store(config.database.url)
    caplog.set_level(logging.INFO)
    with running_daemon(config, rand=lambda: 0.0) as daemon:  # every first pass at once
        wait_for(lambda: Account.get(Account.name == "alice").state == "needs_reauth", 10,
                 "alice parked")
        wait_for(lambda: synced(group("bob")), 10, "bob's calendar synced")
        # Every calendar of alice's has made its first look (failed, or found the account
        # parked) and waits for the re-auth probe.
        wait_for(lambda: all(
            daemon.next_run_times()[f"calendar:alice:{c}"] - dt.datetime.now(dt.UTC)
            > dt.timedelta(minutes=10) for c in mine), 10, "alice's calendars held back")
        failed = sum(calendars.get_calendar(c).consecutive_failures > 0  # type: ignore[union-attr]
                     for c in mine)
    loud = [r for r in caplog.records  # the project's lines (not APScheduler's job names)
            if r.levelno >= logging.WARNING and r.name.startswith("reconciler")]
    about_alice = [r.getMessage() for r in loud if "alice" in r.getMessage()]
    assert len(about_alice) == 1, about_alice
    assert about_alice[0].startswith("account alice: credentials refused: ")
    assert "its calendars wait, next try in" in about_alice[0]
    assert not [r for r in loud if "pass failed" in r.getMessage()]
    print(f"calendars of alice whose pass failed: {failed}; lines about alice: {len(about_alice)}")
