"""Change-to-database latency with watch mode on versus polling only.

Starts the emulator and a real ``reconciler run`` (subprocess, SQLite) per
mode, edits one event ``--edits`` times at random moments and measures how long
each edit takes to show up in the mirror; prints a Markdown table of p50/p95.
With polling only the latency is spread over the poll interval (p50 about half
of it); with watch mode it is the notification, the request poll (0.5 s) and
one incremental pass.

    .venv/bin/python bench/watch_latency.py --interval 10 --edits 15
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reconciler.emulator import Emulator, running_emulator
from reconciler.store import open_store
from reconciler.store.models import Calendar, Channel, Event, key_of

REPO = Path(__file__).resolve().parents[1]
CAL = "bench@group.calendar.google.com"
SECRET = "bench-secret-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(directory: Path, interval: int, watch: bool) -> Path:
    port = _free_port()
    text = (f'[database]\nurl = "sqlite:///{directory}/mirror.db"\n\n'
            f"[sync]\ninterval = {interval}\njitter = 0\n\n"
            f"[watch]\nenabled = {'true' if watch else 'false'}\n"
            f'address = "http://127.0.0.1:{port}/hook"\nlisten = "127.0.0.1:{port}"\n'
            f'secret = "{SECRET}"\n\n'
            f'[[accounts]]\nname = "bench"\ncalendars = [{json.dumps(CAL)}]\n')
    path = directory / "reconciler.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _wait(check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise TimeoutError("the mirror did not catch up in time")


def _summary_in_db(event_id: str) -> str | None:
    row = (Event.select(Event.summary).join(Calendar)
           .where((Calendar.calendar_key == key_of(CAL)) & (Event.event_key == key_of(event_id)))
           .first())
    return None if row is None else row.summary


def measure(watch: bool, interval: int, edits: int, rng: random.Random) -> list[float]:
    """Latencies (seconds) of ``edits`` edits with watch mode on or off."""
    with tempfile.TemporaryDirectory() as tmp, running_emulator() as emu:
        emu.add_calendar(CAL, summary="Bench", owners=["user@example.com"])
        event = emu.insert_event(CAL, {"summary": "v0", "start": {"dateTime": "2025-03-01T10:00:00Z"},
                                       "end": {"dateTime": "2025-03-01T11:00:00Z"}})
        path = _config(Path(tmp), interval, watch)
        open_store(f"sqlite:///{tmp}/mirror.db")  # migrate before `run` starts (no race)
        proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "-c", str(path),
                                 "--log-level", "WARNING", "run"],
                                env={**os.environ, "GOOGLE_CALENDAR_EMULATOR_HOST": emu.host},
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait(lambda: _summary_in_db(event["id"]) == "v0", 60)
            if watch:
                _wait(lambda: Channel.select().where(Channel.state == "open").exists(), 30)
                _settle(emu)
            latencies = []
            for i in range(1, edits + 1):
                time.sleep(rng.uniform(0.2, interval))  # edits fall anywhere in the poll cycle
                summary = f"v{i}"
                started = time.monotonic()
                emu.patch_event(CAL, event["id"], {"summary": summary})
                _wait(lambda s=summary: _summary_in_db(event["id"]) == s, interval * 3 + 30)
                latencies.append(time.monotonic() - started)
            return latencies
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def _settle(emu: Emulator) -> None:
    emu.hub.wait_idle(5)
    time.sleep(1.0)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    """Run both modes and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=int, default=10, help="poll interval, seconds")
    parser.add_argument("--edits", type=int, default=15, help="edits measured per mode")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows = []
    for label, watch in (("watch on", True), ("poll only", False)):
        values = measure(watch, args.interval, args.edits, rng)
        rows.append((label, values))
    print(f"Change-to-database latency, poll interval {args.interval} s, "
          f"{args.edits} edits per mode (SQLite, emulator, `reconciler run`)\n")
    print("| mode | p50 (s) | p95 (s) | mean (s) | max (s) |")
    print("|---|---:|---:|---:|---:|")
    for label, values in rows:
        print(f"| {label} | {_pct(values, 0.5):.2f} | {_pct(values, 0.95):.2f} | "
              f"{statistics.fmean(values):.2f} | {max(values):.2f} |")


if __name__ == "__main__":
    main()
