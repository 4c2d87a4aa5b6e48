"""A database restart under a real ``reconciler run``: MariaDB (and PostgreSQL) SIGKILLed and restarted.

The server is private to the test (see :mod:`tests.faults.servers`). Edits go
on in the emulator the whole time. Asserted: the process stays alive,
``/healthz`` is 503 while the server is down and 200 after, the mirror (as
``reconciler export`` prints it) equals the emulator once edits stop, the
change feed has exactly one ``created`` per event and no lost deletion, and
no traceback is in the log. A frozen server (SIGSTOP) must not keep SIGTERM
from ending ``run`` within 15 s.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from reconciler.store import close_thread_connection, fleet, open_store
from tests.faults.servers import PrivateMariaDB, PrivatePostgres, free_port
from tests.faults.support import assert_feed_clean, health, mirror_matches, reconciler_run
from tests.helpers import wait_for, write_config

pytestmark = pytest.mark.slow

CALENDARS = [f"fault{i}@group.calendar.google.com" for i in range(3)]
INTERVAL = 2


def event(n: int) -> dict[str, object]:
    day = 1 + n % 27
    return {"summary": f"event {n}", "start": {"dateTime": f"2031-03-{day:02d}T09:00:00Z"},
            "end": {"dateTime": f"2031-03-{day:02d}T10:00:00Z"}}


class Editor:
    """Inserts, edits and deletes events in the emulator from a thread until stopped."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.stop = threading.Event()
        self.done = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 1000
        while not self.stop.wait(0.1):
            cal = CALENDARS[n % len(CALENDARS)]
            live = [e for e in self.emu.events(cal) if e.get("status") != "cancelled"]
            if n % 3 == 0 and live:
                self.emu.delete_event(cal, live[0]["id"])
            elif n % 3 == 1 and live:
                self.emu.patch_event(cal, live[-1]["id"], {"summary": f"edited {n}"})
            else:
                self.emu.insert_event(cal, event(n))
            n += 1
            self.done += 1

    def __enter__(self) -> Editor:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def seeded(emu: Emulator) -> None:
    for cal in CALENDARS:
        emu.add_calendar(cal)
        for n in range(15):
            emu.insert_event(cal, event(n))


def config_for_server(tmp_path: Path, url: str, metrics_port: int) -> Path:
    extra = f"\n[metrics]\nport = {metrics_port}\nhost = \"127.0.0.1\"\n"
    path = write_config(tmp_path, url, [{"name": "ops", "calendars": CALENDARS}],
                        sync={"interval": INTERVAL, "jitter": 0, "backoff_max": INTERVAL},
                        extra=extra)
    text = path.read_text().replace("max_retry_seconds = 20", "max_retry_seconds = 2")
    path.write_text(text.replace("retries = 4", "retries = 0"))
    return path


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


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[PrivatePostgres]:
    if not PrivatePostgres.available():
        pytest.skip("PostgreSQL server binaries (initdb) not installed")
    server = PrivatePostgres(tmp_path)
    server.install()
    yield server
    server.stop()


def restart_under_run(emu: Emulator, tmp_path: Path, server: PrivateMariaDB | PrivatePostgres,
                      capsys: pytest.CaptureFixture[str]) -> None:
    seeded(emu)
    port = free_port()
    config = config_for_server(tmp_path, server.url, port)
    with reconciler_run(emu, config) as proc:
        wait_for(lambda: health(port) == 200 and mirror_matches(emu, config, CALENDARS), 60,
                 "the first passes")
        with Editor(emu) as editor:
            wait_for(lambda: editor.done >= 10, 30, "edits to start")
            server.kill()
            killed = time.monotonic()
            wait_for(lambda: health(port) == 503, 30, "/healthz to say 503")
            down = time.monotonic() - killed
            # The outage is said once (not a line per calendar and interval).
            wait_for(lambda: proc.count("database unreachable") >= 1, 60,
                     "the lost database logged")
            assert proc.alive()
            assert health(port) == 503
            server.start()
            restarted = time.monotonic()
            wait_for(lambda: health(port) == 200, 30, "/healthz to say 200 again")
            healthy = time.monotonic() - restarted
            wait_for(lambda: editor.done >= 10, 30, "edits after the restart")
        # Edits stopped: the mirror must catch up within a few intervals.
        stopped = time.monotonic()
        wait_for(lambda: mirror_matches(emu, config, CALENDARS), 60, "the mirror to equal the emulator")
        caught_up = time.monotonic() - stopped
        recovery = time.monotonic() - restarted
        assert proc.alive(), proc.log[-3000:]
        assert_feed_clean(emu, config, CALENDARS)
        proc.popen.send_signal(signal.SIGTERM)
        log = proc.finish(20)
    assert proc.popen.returncode == 0, log[-3000:]
    assert "Traceback" not in log, log[-5000:]
    assert proc.count("database unreachable") <= 1 and proc.count("reachable again") <= 1
    assert "scheduler error" not in log
    with capsys.disabled():
        print(f"\n{type(server).__name__}: healthz 503 {down:.1f}s after the kill; 200 "
              f"{healthy:.1f}s after the restart; mirror exact {caught_up:.1f}s after edits "
              f"stopped ({recovery:.1f}s after the restart)")


def test_mariadb_restart_under_run(calendar_emulator: Emulator, tmp_path: Path,
                                   mariadb: PrivateMariaDB,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    restart_under_run(calendar_emulator, tmp_path, mariadb, capsys)


def test_postgres_restart_under_run(calendar_emulator: Emulator, tmp_path: Path,
                                    postgres: PrivatePostgres,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    restart_under_run(calendar_emulator, tmp_path, postgres, capsys)


def test_sigterm_ends_run_within_15s_while_mariadb_is_frozen(
        calendar_emulator: Emulator, tmp_path: Path, mariadb: PrivateMariaDB,
        capsys: pytest.CaptureFixture[str]) -> None:
    emu = calendar_emulator
    seeded(emu)
    port = free_port()
    config = config_for_server(tmp_path, mariadb.url, port)
    with reconciler_run(emu, config) as proc:
        wait_for(lambda: health(port) == 200 and mirror_matches(emu, config, CALENDARS), 60,
                 "the first passes")
        with Editor(emu) as editor:  # passes in flight when the server freezes
            wait_for(lambda: editor.done >= 10, 30, "edits to start")
        mariadb.freeze()
        try:
            wait_for(lambda: health(port) == 503, 30, "/healthz to say 503 (frozen server)")
            asked = time.monotonic()
            proc.popen.send_signal(signal.SIGTERM)
            log = proc.finish(15)  # raises TimeoutExpired past the contract
            took = time.monotonic() - asked
        finally:
            mariadb.thaw()
    assert proc.popen.returncode == 0, log[-3000:]
    assert "Traceback" not in log, log[-5000:]
    with capsys.disabled():
        print(f"\nfrozen MariaDB: SIGTERM to exit {took:.1f}s")


def test_a_thread_without_a_connection_does_not_wait_for_a_connect_to_a_frozen_server(
        mariadb: PrivateMariaDB) -> None:
    """Peewee's connect and close share one process-wide lock, and a connect to a frozen
    server holds it up to the read time-out (30 s). A thread that holds no connection (a
    /healthz request ending, the probe after its deadline) must not queue behind it: before,
    ``close_thread_connection`` took the lock anyway, and /healthz sometimes answered
    nothing for a minute instead of 503 (1 run in 15 of the SIGTERM test above)."""
    db = open_store(mariadb.url, pool_size=4)
    db.close_idle()  # no idle connection: the next store call opens one
    mariadb.freeze()
    try:
        connecting = threading.Thread(target=_newest_success, daemon=True)
        connecting.start()
        wait_for(lambda: db._lock.locked(), 10, "a connect to the frozen server under the lock")
        closed = threading.Event()
        threading.Thread(target=lambda: (close_thread_connection(), closed.set()),
                         daemon=True).start()
        assert closed.wait(5), "close_thread_connection waited for the frozen connect"
    finally:
        mariadb.thaw()
    connecting.join(40)
    db.close_all()


def _newest_success() -> None:
    with contextlib.suppress(Exception):  # fails or succeeds once thawed: either is fine
        fleet.newest_success()
