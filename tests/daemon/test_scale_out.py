"""Scale-out on MariaDB: three ``reconciler run`` processes share 300 calendars.

Edits flow while they run; one process is killed with SIGKILL. The emulator's
request log must show no two overlapping ``events.list`` requests for one
calendar, the dead process's calendars must be polled again within the lease
time, and after the others stop (SIGTERM) the mirror must be exact.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from reconciler.store import open_store
from reconciler.store.models import Calendar
from tests.daemon.support import write_daemon_config
from tests.helpers import REPO, assert_mirror_exact, timed, wait_for

CALENDARS = 300
INTERVAL = 3
LEASE = 6


def start(emu: Emulator, config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, GOOGLE_CALENDAR_EMULATOR_HOST=emu.host)
    with open(log, "wb") as sink:
        return subprocess.Popen([sys.executable, "-m", "reconciler.cli", "-c", str(config), "run"],
                                env=env, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)


@pytest.mark.slow
@pytest.mark.mysql
def test_three_processes_share_calendars_without_overlap(
        calendar_emulator: Emulator, mysql_url: str, tmp_path: Path) -> None:
    emu = calendar_emulator
    ids = [f"team-{i:03d}@group.calendar.google.com" for i in range(CALENDARS)]
    for i, cid in enumerate(ids):
        emu.add_calendar(cid)
        emu.insert_event(cid, timed(f"seed {i}", hour=i % 20))
    path = write_daemon_config(tmp_path, mysql_url, [{"name": "ops", "calendars": ids}], {
        "sync": {"interval": INTERVAL, "lease_time": LEASE, "concurrency": 8},
        "quota": {"requests_per_minute": 1_000_000, "per_user_requests_per_minute": 1_000_000},
    })
    open_store(mysql_url)
    stop_edits = threading.Event()
    edits = [0]

    def edit() -> None:
        rng = random.Random(5)
        live: dict[str, list[str]] = defaultdict(list)
        while not stop_edits.is_set():
            cid = rng.choice(ids)
            roll = rng.random()
            if roll < 0.5 or not live[cid]:
                live[cid].append(emu.insert_event(cid, timed(f"edit {edits[0]}"))["id"])
            elif roll < 0.8:
                emu.patch_event(cid, rng.choice(live[cid]), {"summary": f"renamed {edits[0]}"})
            else:
                emu.delete_event(cid, live[cid].pop(rng.randrange(len(live[cid]))))
            edits[0] += 1
            time.sleep(0.01)

    procs = [start(emu, path, tmp_path / f"run{i}.log") for i in range(3)]
    editor = threading.Thread(target=edit, daemon=True)
    try:
        wait_for(lambda: Calendar.select().where(Calendar.last_success.is_null(False)).count()
                 == CALENDARS, 30, "every calendar synced once", step=0.2)
        editor.start()
        edits_from = time.monotonic()
        # Steady state: edits flowing, every calendar polled again since they began.
        wait_for(lambda: edits[0] >= 200 and all(
            any(r.start > edits_from for r in by_cal[cid])
            for by_cal in [lists_by_calendar(emu)] for cid in ids), 60,
            "a pass of every calendar while edits flow", step=0.2)

        def held_by_first() -> set[str]:
            return {row.calendar_id for row in Calendar.select().where(
                Calendar.lease_owner.contains(f":{procs[0].pid}:"))}

        held = wait_for(held_by_first, 30, "the first process holding leases")
        procs[0].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        procs[0].wait(10)
        # Takeover: every calendar, those the dead process held too, polled again.
        wait_for(lambda: all(
            any(r.start > killed_at for r in by_cal[cid])
            for by_cal in [lists_by_calendar(emu)] for cid in ids), LEASE + 30,
            "a pass of every calendar after the kill", step=0.2)
        stop_edits.set()
        editor.join(10)
        settled = time.monotonic()
        # Let every calendar finish one pass that started after the last edit.
        wait_for(lambda: all(
            any(r.start > settled for r in by_cal[cid])
            for by_cal in [lists_by_calendar(emu)] for cid in ids), 30,
            "a pass of every calendar after the last edit", step=0.5)
        for proc in procs[1:]:
            proc.send_signal(signal.SIGTERM)
        for proc in procs[1:]:
            assert proc.wait(15) == 0
    finally:
        stop_edits.set()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    by_cal = lists_by_calendar(emu)
    for cid in ids:
        reqs = sorted(by_cal[cid], key=lambda r: r.start)
        for before, after in itertools.pairwise(reqs):
            assert after.start >= before.end, f"{cid}: overlapping events.list requests"
    # Takeover: every calendar polled again after the kill; those the dead process held
    # within the lease time.
    resumed = {cid: min((r.start for r in by_cal[cid] if r.start > killed_at), default=None)
               for cid in ids}
    assert all(t is not None for t in resumed.values())
    takeover = max(t - killed_at for t in resumed.values() if t is not None)
    held_takeover = max((resumed[cid] - killed_at for cid in held if resumed[cid]), default=0.0)
    print(f"edits {edits[0]}, requests {sum(len(v) for v in by_cal.values())}, "
          f"held by the killed process {len(held)}, max resume after kill {takeover:.2f}s, "
          f"for its held calendars {held_takeover:.2f}s")
    # The takeover bound is about the dead process's calendars: the others were never
    # held, and how soon two busy processes poll all 300 again depends on the CPU, not on
    # leases (CI saw 11.8 s for an unheld calendar while the held ones resumed in 4 s).
    assert held_takeover <= LEASE
    assert Calendar.select().where(Calendar.lease_owner.is_null(False)).count() == 0
    for cid in ids:
        assert_mirror_exact(emu, cid)


def lists_by_calendar(emu: Emulator) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    for r in emu.request_log:
        if r.method == "events.list" and r.calendar_id:
            out[r.calendar_id].append(r)
    return out
