"""100 SIGHUP reloads of a real ``reconciler run`` leave its file descriptors flat.

Measured with psutil on the subprocess (the same code as ``bench/soak.py``):
after a warm-up (every calendar polled, the first reloads done) the number
of open descriptors may move by a few (a poll's connection open or not at
the moment of sampling), never grow with the reload count. RSS is checked
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
    fds = [s.fds for s in samples]
    assert max(fds) - min(fds) <= FD_TOLERANCE, fds
    assert samples[-1].rss_mb - samples[0].rss_mb < RSS_TOLERANCE_MB, [s.rss_mb for s in samples]
    assert "Traceback" not in watch.text()
