"""Soak: file descriptors and RSS of a real ``reconciler run`` over SIGHUP reloads and a steady run.

Starts the project's emulator in this process (N calendars with a few events
each, a slow trickle of edits), a ``reconciler run`` subprocess on SQLite (or
``--database URL``) polling every ``--interval`` seconds, then:

1. sends ``--reloads`` SIGHUPs, one after each reload has been logged, and
   prints fds / RSS / threads / TCP connections of the process every
   ``--every`` reloads;
2. lets it run for ``--steady`` seconds and prints the same every
   ``--steady-every`` seconds.

Usage::

    PYTHONPATH=. python bench/soak.py --reloads 100 --steady 120

The first sample after warm-up is the baseline; "delta" columns are against it.
Exit status 1 when fds grew by more than ``--fd-tolerance`` over the reloads.
``tests/faults/test_reload_leaks.py`` runs the same measurement (smaller) in CI.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reconciler.emulator import Emulator  # noqa: E402
from reconciler.emulator.server import running_emulator  # noqa: E402


@dataclass(frozen=True, slots=True)
class Sample:
    """Resources of the process at one moment."""

    label: str
    fds: int
    rss_mb: float
    threads: int
    tcp: int


def sample(proc: psutil.Process, label: str) -> Sample:
    """fds, RSS (MB), threads and TCP connections of ``proc`` now."""
    return Sample(label, proc.num_fds(), proc.memory_info().rss / 2**20, proc.num_threads(),
                  len(proc.net_connections(kind="tcp")))


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until true; TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


class LogWatch:
    """Reads a subprocess's stderr in a thread; counts lines containing a marker."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._lock:
                self.lines.append(line)

    def count(self, marker: str) -> int:
        """Lines so far that contain ``marker``."""
        with self._lock:
            return sum(marker in line for line in self.lines)

    def text(self) -> str:
        """Everything read so far."""
        with self._lock:
            return "".join(self.lines)


def write_config(path: Path, database: str, calendars: list[str], interval: int) -> None:
    """A run config: one account with ``calendars``, quick polls, metrics off."""
    cals = ", ".join(f'"{c}"' for c in calendars)
    path.write_text(f'[database]\nurl = "{database}"\n\n[google]\nretries = 0\n\n'
                    f"[sync]\ninterval = {interval}\njitter = 0\n\n"
                    f'[[accounts]]\nname = "soak"\ncalendars = [{cals}]\n', encoding="utf-8")


@contextmanager
def soak_process(emu: Emulator, config: Path) -> Iterator[tuple[subprocess.Popen[str], LogWatch]]:
    """``reconciler run`` against ``emu``; killed on exit if still alive."""
    env = dict(os.environ, GOOGLE_CALENDAR_EMULATOR_HOST=emu.host,
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "-c", str(config), "run"],
                            env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    watch = LogWatch(proc.stderr)
    try:
        yield proc, watch
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def seed(emu: Emulator, calendars: list[str], events: int) -> None:
    """Add the calendars with ``events`` timed events each."""
    for cal in calendars:
        emu.add_calendar(cal)
        for n in range(events):
            emu.insert_event(cal, {"summary": f"e{n}",
                                   "start": {"dateTime": f"2030-01-{1 + n % 27:02d}T10:00:00Z"},
                                   "end": {"dateTime": f"2030-01-{1 + n % 27:02d}T11:00:00Z"}})


def reload_and_measure(proc: subprocess.Popen[str], watch: LogWatch, reloads: int, every: int,
                       on_sample: Callable[[Sample], None] | None = None) -> list[Sample]:
    """Send ``reloads`` SIGHUPs (each after the previous one was applied); sample every ``every``."""
    ps = psutil.Process(proc.pid)
    samples = [sample(ps, "reload 0")]
    if on_sample:
        on_sample(samples[-1])
    for n in range(1, reloads + 1):
        before = watch.count("config reloaded")
        os.kill(proc.pid, signal.SIGHUP)
        wait_for(lambda b=before: watch.count("config reloaded") > b or proc.poll() is not None,
                 30, f"reload {n}")
        if proc.poll() is not None:
            raise RuntimeError(f"run exited {proc.returncode}:\n{watch.text()[-3000:]}")
        if n % every == 0:
            samples.append(sample(ps, f"reload {n}"))
            if on_sample:
                on_sample(samples[-1])
    return samples


def print_table(samples: list[Sample]) -> None:
    """One row per sample, with deltas against the first."""
    base = samples[0]
    print(f"{'when':<14}{'fds':>6}{'Δfds':>6}{'RSS MB':>9}{'ΔRSS':>8}{'threads':>9}{'tcp':>5}")
    for s in samples:
        print(f"{s.label:<14}{s.fds:>6}{s.fds - base.fds:>+6}{s.rss_mb:>9.1f}"
              f"{s.rss_mb - base.rss_mb:>+8.1f}{s.threads:>9}{s.tcp:>5}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calendars", type=int, default=10)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--interval", type=int, default=2)
    parser.add_argument("--reloads", type=int, default=100)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--steady", type=float, default=120.0, help="seconds of steady run")
    parser.add_argument("--steady-every", type=float, default=20.0)
    parser.add_argument("--database", default=None, help="database URL (default: temp SQLite)")
    parser.add_argument("--fd-tolerance", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_emulator() as emu:
        calendars = [f"soak{i}@group.calendar.google.com" for i in range(args.calendars)]
        seed(emu, calendars, args.events)
        config = Path(tmp) / "reconciler.toml"
        write_config(config, args.database or f"sqlite:///{tmp}/mirror.db", calendars,
                     args.interval)
        with soak_process(emu, config) as (proc, watch):
            wait_for(lambda: watch.count("scheduled") > 0 or proc.poll() is not None, 60,
                     "run to start")
            time.sleep(3 * args.interval)  # warm-up: every calendar polled at least twice
            print(f"# {args.reloads} SIGHUP reloads, {args.calendars} calendars every "
                  f"{args.interval}s, pid {proc.pid}")
            samples = reload_and_measure(proc, watch, args.reloads, args.every)
            print_table(samples)
            ps = psutil.Process(proc.pid)
            steady = [sample(ps, "steady 0s")]
            started = time.monotonic()
            stop = threading.Event()

            def edits() -> None:
                n = 0
                while not stop.wait(0.5):
                    emu.insert_event(calendars[n % len(calendars)], {
                        "summary": f"new {n}", "start": {"date": "2030-02-01"},
                        "end": {"date": "2030-02-02"}})
                    n += 1

            editor = threading.Thread(target=edits, daemon=True)
            editor.start()
            while time.monotonic() - started < args.steady:
                time.sleep(min(args.steady_every, args.steady - (time.monotonic() - started)))
                steady.append(sample(ps, f"steady {time.monotonic() - started:.0f}s"))
            stop.set()
            print(f"# steady run, {args.steady:.0f}s, one new event every 0.5 s")
            print_table(steady)
            tracebacks = watch.text().count("Traceback")
            print(f"# tracebacks in the log: {tracebacks}")
    grew = samples[-1].fds - samples[1 if len(samples) > 1 else 0].fds
    return 1 if grew > args.fd_tolerance or tracebacks else 0


if __name__ == "__main__":
    sys.exit(main())
