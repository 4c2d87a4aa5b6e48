"""``reconciler run`` with watch mode on and ``schedule = "adaptive"``, as a subprocess.

A watched calendar gets its freshness from notifications, so the plan polls it
only at ``max_interval`` (a safety net) however busy it is, and sets aside
what its hinted passes cost. The hinted passes themselves find the changes,
so they raise the calendar's estimate, and every request they send passes the
same quota hook as the polls. An equally busy calendar whose watch Google
refuses is polled by the square-root rule, below ``max_interval``.

Real HTTP to the emulator (notifications included), a real SQLite database;
waits for events, never fixed sleeps.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.clock import utcnow
from reconciler.emulator import Emulator
from reconciler.schedule.allocate import budget_per_second
from reconciler.schedule.plan import hinted_passes
from reconciler.store import channels, open_store
from reconciler.store import schedule as rows
from tests.helpers import (
    REPO,
    emulator_env,
    mirror,
    stop_process,
    timed,
    wait_for,
    write_config,
)
from tests.watch.watch_helpers import HOOK_PATH, SECRET, free_port

BUSY = "busy@group.calendar.google.com"  # watched
REFUSED = "refused@group.calendar.google.com"  # as busy, but Google refuses its watch
IDLE = [f"idle{n}@group.calendar.google.com" for n in range(3)]  # watched, never edited
MAX_INTERVAL = 30
INTERVAL = 2
QUOTA = 600


def _metric(port: int, method: str) -> float:
    """``reconciler_api_requests_total{method=...}`` of the running process (0 before any)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    pattern = r'^reconciler_api_requests_total\{method="' + re.escape(method) + r'"\} (\S+)$'
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.fixture
def adaptive_watch(calendar_emulator: Emulator, tmp_path: Path) -> Iterator[int]:
    """``run`` on SQLite: adaptive, watch on, every calendar synced, four channels open.

    Yields the metrics port.
    """
    emu = calendar_emulator
    for cid in [BUSY, REFUSED, *IDLE]:
        emu.add_calendar(cid, summary=cid, owners=["user@example.com"])
        emu.insert_event(cid, timed("first"))
    emu.inject_fault(REFUSED, status=403, reason="pushNotSupportedForRequestedResource",
                     count=None, methods=["events.watch"])
    url = f"sqlite:///{tmp_path}/mirror.db"
    port, metrics = free_port(), free_port()
    extra = ("\n[watch]\nenabled = true\n"
             f'address = "http://127.0.0.1:{port}{HOOK_PATH}"\nlisten = "127.0.0.1:{port}"\n'
             f'secret = "{SECRET}"\n'
             f"\n[quota]\nrequests_per_minute = {QUOTA}\n"
             f"\n[metrics]\nport = {metrics}\n")
    path = write_config(tmp_path, url, [{"name": "ops", "calendars": [BUSY, REFUSED, *IDLE]}],
                        sync={"interval": INTERVAL, "schedule": "adaptive", "min_interval": 1,
                              "max_interval": MAX_INTERVAL, "lease_time": 30, "jitter": 0},
                        extra=extra)
    open_store(url)  # migrated before `run` starts: two migrators on one SQLite file race
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "-c", str(path), "run"],
                            env={**os.environ, **emulator_env(emu)}, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(emu.channels()) == 1 + len(IDLE), timeout=40,
                 what="a channel per watchable calendar")
        assert emu.hub.wait_idle(5)
        yield metrics
    finally:
        stop_process(proc)


def _fleet() -> dict[str, rows.FleetRow]:
    return {r.calendar_id: r for r in rows.fleet_estimates()}


def _changes(row: rows.FleetRow) -> float:
    """The estimate's decayed count of observed changes (rate x weight)."""
    return row.rate * row.weight


@pytest.mark.slow
def test_watched_busy_calendar_sits_at_max_interval_and_its_hinted_passes_raise_its_estimate(
        adaptive_watch: int, calendar_emulator: Emulator) -> None:
    emu = calendar_emulator
    pks = {cid: row.pk for cid, row in _fleet().items()}
    assert channels.live_calendars(utcnow()) == {pks[c] for c in [BUSY, *IDLE]}
    # The plan sees the channels: every watched calendar at max_interval before any edit.
    wait_for(lambda: all(_fleet()[c].planned_interval == pytest.approx(MAX_INTERVAL)
                         for c in [BUSY, *IDLE]), timeout=20, what="watched calendars planned")
    before = _changes(_fleet()[BUSY])
    edits = 8
    for n in range(edits):
        # Both calendars change alike; BUSY's change reaches the mirror through a notification
        # (its next poll is up to max_interval away), REFUSED's through its polls.
        busy = emu.insert_event(BUSY, timed(f"pushed {n}"))
        refused = emu.insert_event(REFUSED, timed(f"polled {n}"))
        wait_for(lambda ev=busy: ev["id"] in mirror(BUSY), timeout=5,
                 what=f"edit {n} of the watched calendar, well before its next poll")
        wait_for(lambda ev=refused: ev["id"] in mirror(REFUSED), timeout=MAX_INTERVAL + 10,
                 what=f"edit {n} of the unwatched calendar")
    # The hinted passes observed the changes: BUSY's estimate counts (nearly) all of them
    # (the half-life is 10 minutes: a few seconds' decay is a fraction of a change).
    after = wait_for(lambda: (lambda r: r if _changes(r) >= before + edits - 0.5 else None)(
        _fleet()[BUSY]), timeout=10, what="the estimate raised by the hinted passes")
    assert after.rate > 0

    def planned() -> dict[str, rows.FleetRow] | None:
        now = _fleet()
        ok = (now[BUSY].planned_interval == pytest.approx(MAX_INTERVAL)
              and now[REFUSED].planned_interval is not None
              and now[REFUSED].planned_interval < MAX_INTERVAL / 2)
        return now if ok else None

    # As busy as REFUSED, yet planned at max_interval; REFUSED, polled, is planned far below it.
    now = wait_for(planned, timeout=20, what="the plan: BUSY at max_interval, REFUSED polled often")
    assert now[BUSY].rate > 0 and now[REFUSED].rate > 0
    # The plan's polls and the watched calendars' expected hinted passes fit the budget.
    watched = {now[c].pk for c in [BUSY, *IDLE]}
    spend = sum(1 / (r.planned_interval or INTERVAL) for r in now.values())
    hints = hinted_passes([(r.pk, r.rate, r.weight) for r in now.values()], watched, 1)
    assert spend + hints <= budget_per_second(len(now), INTERVAL, QUOTA) * (1 + 1e-6)
    # Every events.list the emulator answered, hinted ones included, went through the
    # process's request hook, the one that takes a token from the quota bucket.
    wait_for(lambda: _metric(adaptive_watch, "events.list") == sum(
        1 for r in emu.request_log if r.method == "events.list"), timeout=10,
        what="the quota hook counted every events.list", step=0.005)
