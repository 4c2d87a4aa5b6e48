"""100 SIGHUP reloads of a real ``reconciler run`` leave its file descriptors flat.

Measured with psutil on the subprocess (the same code as ``bench/soak.py``):
after a warm-up (every calendar polled, the first reloads done) the number
of open descriptors other than TCP sockets (a poll's connection is open or
not at the moment of sampling; CI once saw 21-26 with 0-3 of them open) may
move by a few (a pass thread started late opens its own database handle),
never grow with the reload count. RSS is checked
for a bounded total, not per reload: allocators do not give memory back
page by page.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from bench.soak import print_table, reload_and_measure, seed, soak_process, wait_for, write_config
from reconciler.emulator import Emulator

pytestmark = pytest.mark.slow

FD_TOLERANCE = 4
RSS_TOLERANCE_MB = 15.0


def test_100_reloads_leave_fds_and_rss_flat(calendar_emulator: Emulator, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    emu = calendar_emulator
    calendars = [f"leak{i}@group.calendar.google.com" for i in range(4)]
    seed(emu, calendars, 5)
    config = tmp_path / "reconciler.toml"
    write_config(config, f"sqlite:///{tmp_path}/mirror.db", calendars, interval=1)
    with soak_process(emu, config) as (proc, watch):
        wait_for(lambda: watch.count("synced") + watch.count("scheduled") > 0
                 or proc.poll() is not None, 60, "run to start")
        polled = len(emu.request_log)
        wait_for(lambda: len(emu.request_log) >= polled + 2 * len(calendars), 60, "warm-up polls")
        reload_and_measure(proc, watch, 10, 10)  # warm-up reloads
        samples = reload_and_measure(proc, watch, 100, 10)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    with capsys.disabled():
        print()
        print_table(samples)
    # A poll's TCP connection may be open at the moment of sampling or not: count
    # descriptors without those, so the check sees growth, not polls in flight.
    fds = [s.fds - s.tcp for s in samples]
    assert max(fds) - min(fds) <= FD_TOLERANCE, [(s.fds, s.tcp) for s in samples]
    # ... and the sockets themselves stay bounded by the polls that can be in flight.
    assert max(s.tcp for s in samples) <= 2 * len(calendars), [s.tcp for s in samples]
    assert samples[-1].rss_mb - samples[0].rss_mb < RSS_TOLERANCE_MB, [s.rss_mb for s in samples]
    assert "Traceback" not in watch.text()
