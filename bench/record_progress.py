"""Record ``reconciler once`` on a terminal (tmux) over a 50,000-event calendar.

Why: the issue asks to *see* the progress display. This starts the emulator
in-process with one calendar of 50,000 realistic events and five small ones,
a little latency per page, and runs ``reconciler once`` inside a detached
tmux session (a real terminal, 120x30). It captures the pane whenever the
display changed page count, at most ``--captures`` times while the sync runs,
then the final screen, and writes them to ``docs/once-progress.txt``.

Usage: ``python -m bench.record_progress [--out docs/once-progress.txt]``
(needs ``tmux``).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.data import make_event
from reconciler.emulator import Emulator
from reconciler.emulator.server import running_emulator

BIG = "all-hands@group.calendar.google.com"
SMALL = [f"room-{n}@resource.calendar.google.com" for n in range(1, 6)]
SESSION = "reconciler-progress"
REPO = Path(__file__).resolve().parents[1]


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def _pane() -> str:
    return _tmux("capture-pane", "-p", "-t", SESSION).rstrip() + "\n"


def seed(emu: Emulator, events: int) -> None:
    """One big calendar and five small ones, shared with the emulator's default user."""
    emu.add_calendar(BIG, summary="All hands", owners=["user@example.com"])
    emu.seed_raw(BIG, [make_event(BIG, n) for n in range(events)])
    for i, cid in enumerate(SMALL):
        emu.add_calendar(cid, summary=f"Room {i + 1}", owners=["user@example.com"])
        emu.seed_raw(cid, [make_event(cid, n) for n in range(200 * (i + 1))])


def record(out: Path, events: int, captures: int) -> None:
    """Run the session and write the captures to ``out``."""
    if shutil.which("tmux") is None:
        sys.exit("tmux is not installed (apt-get install tmux)")
    with tempfile.TemporaryDirectory() as tmp, running_emulator() as emu:
        seed(emu, events)
        # ~0.6 s per 2,500-event page: the display is visible for a while.
        emu.set_latency(fixed_ms=100, per_item_ms=0.2)
        config = Path(tmp) / "reconciler.toml"
        calendars = ", ".join(f'"{c}"' for c in [BIG, *SMALL])
        config.write_text(f'[database]\nurl = "sqlite:///{tmp}/mirror.db"\n\n'
                          f'[[accounts]]\nname = "ops"\ncalendars = [{calendars}]\n',
                          encoding="utf-8")
        env = (f"GOOGLE_CALENDAR_EMULATOR_HOST={emu.host} PYTHONPATH={shlex.quote(str(REPO))} "
               f"PS1='$ '")
        _tmux("new-session", "-d", "-s", SESSION, "-x", "120", "-y", "30",
              f"env {env} bash --norc --noprofile")
        try:
            command = f"reconciler -c {config.name} once"
            _tmux("send-keys", "-t", SESSION, f"cd {shlex.quote(tmp)} && alias reconciler="
                  f"'{sys.executable} -m reconciler.cli' && clear", "Enter")
            _tmux("send-keys", "-t", SESSION, command + "; echo exit status $?", "Enter")
            shots: list[str] = []
            last_page = -1
            while not re.search(r"exit status \d", screen := _pane()):
                pages = [int(p) for p in re.findall(r"page (\d+)", screen)]
                page = max(pages, default=0)
                if page >= last_page + 4 and len(shots) < captures:
                    shots.append(screen)
                    last_page = page
                time.sleep(0.2)
            final = screen
        finally:
            _tmux("kill-session", "-t", SESSION)
    parts = [f"$ {command}    # {events:,} events in {BIG}, 5 small calendars; "
             "emulator latency 100 ms + 0.2 ms/event per page; tmux 120x30\n"]
    for n, shot in enumerate(shots, 1):
        parts.append(f"--- capture {n} (while syncing) ---\n{shot}")
    parts.append(f"--- final screen ---\n{final}")
    out.write_text("\n".join(parts), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "once-progress.txt")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--captures", type=int, default=3)
    args = parser.parse_args()
    os.environ.pop("TMUX", None)
    record(args.out, args.events, args.captures)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
