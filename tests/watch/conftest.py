"""Fixtures: an emulator calendar mirrored once, and a started WatchRuntime for it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.config import Config
from reconciler.emulator import Emulator
from reconciler.once import run_once
from reconciler.service import Service
from reconciler.store.models import Calendar
from reconciler.watch.runtime import WatchRuntime
from tests.helpers import config_for, timed
from tests.watch.watch_helpers import TEAM, ShiftedClock, free_port, watch_config


@dataclass
class Watched:
    """Everything a watch test touches."""

    emu: Emulator
    config: Config
    service: Service
    runtime: WatchRuntime
    clock: ShiftedClock
    port: int
    calendar: Calendar


@pytest.fixture
def team(calendar_emulator: Emulator) -> Emulator:
    """The emulator with TEAM and one event in it."""
    calendar_emulator.add_calendar(TEAM, summary="Team", owners=["user@example.com"])
    calendar_emulator.insert_event(TEAM, timed("first"))
    return calendar_emulator


def start_watch(emu: Emulator, tmp_path: Path, database_url: str, **config: int) -> Watched:
    """Mirror TEAM once, then start a runtime (receiver serving) and open its channel."""
    port = free_port()
    cfg = config_for(emu, watch_config(tmp_path, database_url, port, **config))
    assert run_once(cfg) == 0
    clock = ShiftedClock()
    service = Service(cfg)
    runtime = WatchRuntime(service, cfg, now=clock)
    runtime.start()
    report = runtime.tick()
    assert report.opened == [TEAM], report
    return Watched(emu, cfg, service, runtime, clock, port,
                   Calendar.get(Calendar.calendar_id == TEAM))


@pytest.fixture
def watched(team: Emulator, tmp_path: Path) -> Iterator[Watched]:
    """TEAM mirrored on SQLite with an open channel and the receiver serving."""
    w = start_watch(team, tmp_path, f"sqlite:///{tmp_path}/mirror.db")
    assert team.hub.wait_idle(5)  # the `sync` message is delivered
    yield w
    w.runtime.stop()
    w.service.close()
