"""One cause, one line: a database outage under ``run`` with 50 calendars.

The MariaDB server is private to the test (:mod:`tests.faults.servers`) and
is SIGKILLed for more than a minute, then restarted. Counted in the log of the
real ``reconciler run`` process: exactly one WARNING when the database goes,
one reminder (with how many calendars wait) for the minute it stays down, one
INFO when it is back; no per-calendar ERROR, no "pass failed", no traceback.
Before, every calendar logged ``scheduler error: database connection lost``
every interval (here: 25 lines a second).
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from tests.faults.servers import PrivateMariaDB, free_port
from tests.faults.support import health, reconciler_run
from tests.helpers import timed, wait_for, write_config

pytestmark = pytest.mark.slow

CALENDARS = [f"outage{i:02d}@group.calendar.google.com" for i in range(50)]
INTERVAL = 2


@pytest.fixture
def mariadb(tmp_path: Path) -> Iterator[PrivateMariaDB]:
    if not PrivateMariaDB.available():
        if os.environ.get("CI"):
            pytest.fail("mariadb-install-db / mariadbd are not installed in CI")
        pytest.skip("MariaDB server binaries not installed")
    server = PrivateMariaDB(tmp_path)
    server.install()
    yield server
    server.stop()


def level_lines(log: str, *levels: str) -> list[str]:
    """The log's lines at any of ``levels`` (text format: ``<time> LEVEL logger: ...``)."""
    return [line for line in log.splitlines()
            if re.match(r"\S+ (" + "|".join(levels) + r") ", line)]


def test_a_database_outage_is_one_warning_a_reminder_and_one_info(
        calendar_emulator: Emulator, tmp_path: Path, mariadb: PrivateMariaDB,
        capsys: pytest.CaptureFixture[str]) -> None:
    emu = calendar_emulator
    for n, cid in enumerate(CALENDARS):
        emu.add_calendar(cid)
        emu.insert_event(cid, timed(f"seed {n}", hour=n % 20))
    port = free_port()
    path = write_config(tmp_path, mariadb.url, [{"name": "ops", "calendars": CALENDARS}],
                        sync={"interval": INTERVAL, "jitter": 0, "backoff_max": INTERVAL},
                        extra=f"\n[metrics]\nport = {port}\nhost = \"127.0.0.1\"\n")
    path.write_text(path.read_text().replace("max_retry_seconds = 20", "max_retry_seconds = 2")
                    .replace("retries = 4", "retries = 0"))
    with reconciler_run(emu, path) as proc:
        wait_for(lambda: proc.count('full_reason="first sync"') >= len(CALENDARS)
                 and health(port) == 200, 90, "the first passes of all 50 calendars")
        before = len(proc.log.splitlines())
        mariadb.kill()
        wait_for(lambda: proc.count("database unreachable") >= 1, 30, "the outage noticed")
        wait_for(lambda: health(port) == 503, 30, "/healthz 503")
        # Down for more than a minute: one reminder, with how many calendars wait.
        wait_for(lambda: proc.count("database still unreachable") >= 1, 100, "the reminder")
        assert proc.alive()
        mariadb.start()
        wait_for(lambda: proc.count("database reachable again") >= 1, 60, "the recovery noticed")
        wait_for(lambda: health(port) == 200, 30, "/healthz 200 again")
        outage = proc.log.splitlines()[before:]
        # Passes go on: an edit made now reaches the mirror (an INFO "synced" with created=1).
        synced_before = proc.count("created=1")
        emu.insert_event(CALENDARS[7], timed("after the outage"))
        wait_for(lambda: proc.count("created=1") > synced_before, 30, "a pass after the outage")
        proc.popen.send_signal(signal.SIGTERM)
        log = proc.finish(20)
    assert proc.popen.returncode == 0, log[-3000:]
    assert "Traceback" not in log, log[-5000:]
    text = "\n".join(outage)
    loud = level_lines(text, "WARNING", "ERROR", "CRITICAL")
    with capsys.disabled():
        print(f"\noutage of one database under run, 50 calendars, interval {INTERVAL}s: "
              f"{len(outage)} log lines, {len(loud)} at WARNING or above:\n  "
              + "\n  ".join(level_lines(text, "INFO", "WARNING", "ERROR", "CRITICAL")))
    assert len(loud) == 2, loud
    assert "database unreachable" in loud[0]
    assert "database still unreachable after" in loud[1] and "calendar(s) wait" in loud[1]
    waiting = int(re.search(r"(\d+) calendar\(s\) wait", loud[1]).group(1))  # type: ignore[union-attr]
    assert waiting == len(CALENDARS), loud[1]
    back = [line for line in outage if "database reachable again" in line]
    assert len(back) == 1 and " INFO " in back[0], back
    assert "scheduler error" not in log and "pass failed" not in log
