"""Start-up: ``reconciler once`` over one unchanged calendar versus the raw loop, fresh processes.

``python bench/startup.py [--runs 7]`` seeds one calendar (zero latency),
syncs it once with each program, then times ``--runs`` fresh processes of
each over the unchanged calendar (median and min of wall time, process
creation to exit) and prints the top offenders of
``python -X importtime -m reconciler.cli once`` (cumulative microseconds of
the imports, summed per package). ``python bench/startup.py raw DB EMU CAL`` is the raw
loop's process: one events.list pass with the stored sync token.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


def raw_main(db: str, emu: str, cal: str) -> None:
    """The raw loop as a program: one pass over one calendar with its stored sync token."""
    from google.auth.credentials import AnonymousCredentials
    from googleapiclient.discovery import build

    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE IF NOT EXISTS raw_event (calendar TEXT NOT NULL, id TEXT NOT NULL, "
                 "etag TEXT, status TEXT, updated TEXT, raw TEXT, PRIMARY KEY (calendar, id))")
    conn.execute("CREATE TABLE IF NOT EXISTS raw_state (calendar TEXT PRIMARY KEY, token TEXT)")
    row = conn.execute("SELECT token FROM raw_state WHERE calendar = ?", (cal,)).fetchone()
    events = build("calendar", "v3", credentials=AnonymousCredentials(), static_discovery=True,
                   cache_discovery=False,
                   client_options={"api_endpoint": f"http://{emu}/calendar/v3/"}).events()
    page_token = None
    while True:
        params = {"calendarId": cal, "maxResults": 2500, "showDeleted": True}
        if row:
            params["syncToken"] = row[0]
        if page_token:
            params["pageToken"] = page_token
        page = events.list(**params).execute()
        conn.executemany("INSERT OR REPLACE INTO raw_event VALUES (?, ?, ?, ?, ?, ?)",
                         [(cal, i["id"], i.get("etag"), i.get("status"), i.get("updated"),
                           json.dumps(i)) for i in page.get("items", [])])
        page_token = page.get("nextPageToken")
        if not page_token:
            conn.execute("INSERT OR REPLACE INTO raw_state VALUES (?, ?)",
                         (cal, page["nextSyncToken"]))
        conn.commit()
        if not page_token:
            break


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd[:4])} failed: {proc.stderr.strip()[-400:]}")
    return seconds


def importtime(cmd: list[str], env: dict[str, str], cwd: Path, top: int) -> list[tuple[int, str]]:
    """The ``top`` costliest packages (self time of all their modules, us) of one run of ``cmd``.

    A package is a module name's first component (``reconciler.X`` for the
    project's own subpackages), so that a library imported from several places
    is counted once, wherever its import was triggered.
    """
    proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=env, cwd=cwd,
                          capture_output=True, text=True)
    by_package: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, _, name = line[len("import time:"):].split("|")
        parts = name.strip().split(".")
        package = ".".join(parts[:2]) if parts[0] == "reconciler" else parts[0]
        by_package[package] = by_package.get(package, 0) + int(own)
    rows = sorted(((t, n) for n, t in by_package.items()), reverse=True)
    return [(sum(by_package.values()), "(all imports)"), *rows[:top]]


def main() -> None:
    """Seed, warm both programs, time fresh processes, print Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    from run import Emu

    emu = Emu()
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    cal = "startup00000@group.calendar.google.com"
    try:
        emu.call("seed", calendars=[cal], events=50)
        (work / "reconciler.toml").write_text(
            f'[database]\nurl = "sqlite:///{work}/project.sqlite"\n\n'
            f'[[accounts]]\nname = "bench"\ncalendars = ["{cal}"]\n', encoding="utf-8")
        env = {**os.environ, "GOOGLE_CALENDAR_EMULATOR_HOST": emu.host}
        env.pop("RECONCILER_DATABASE_URL", None)
        # An installed package runs from cached bytecode; without it every run
        # would recompile the project's modules and the comparison would be unfair.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        once = [PYTHON, "-m", "reconciler.cli", "-c", str(work / "reconciler.toml"), "once"]
        raw = [PYTHON, str(HERE / "startup.py"), "raw", str(work / "raw.sqlite"), emu.host, cal]
        _timed(once, env, work)
        _timed(raw, env, work)
        emu.call("requests")
        times: dict[str, list[float]] = {"once": [], "raw": []}
        for _ in range(args.runs):  # interleaved, so load drifts hit both alike
            times["once"].append(_timed(once, env, work))
            times["raw"].append(_timed(raw, env, work))
        requests = emu.call("requests")["total"]
        offenders = importtime(once, env, work, args.top)
    finally:
        emu.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"### Start-up: one unchanged calendar, fresh process, {args.runs} runs each "
          f"({requests} API requests in all)\n")
    print("| program | median s | min s | vs raw loop |")
    print("|---|---:|---:|---:|")
    for key, label in (("raw", "raw loop (`python startup.py raw`)"),
                       ("once", "`python -m reconciler.cli once`")):
        print(f"| {label} | {med[key]:.3f} | {min(times[key]):.3f} | "
              f"{med[key] / med['raw']:.2f}x |")
    print("\n`python -X importtime -m reconciler.cli once`: import time per package (self time "
          "of its modules):\n")
    print("| package | ms |")
    print("|---|---:|")
    for micros, name in offenders:
        print(f"| {name} | {micros / 1000:.0f} |")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "raw":
        raw_main(*sys.argv[2:5])
    else:
        main()
