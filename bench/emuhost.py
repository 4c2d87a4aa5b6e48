"""The emulator in its own process, seeded and mutated on command, for honest RSS numbers.

Run by ``bench/run.py`` as a child: it serves the project's Calendar v3
emulator on loopback, prints ``{"host": "127.0.0.1:PORT"}`` and then reads one
JSON command per line on stdin, answering one JSON line on stdout:

* ``{"op": "seed", "calendars": [...], "events": N, "owner": U}`` - add calendars with N
  events each, owned by user U (default ``user@example.com``);
* ``{"op": "burst", "calendar": C, "updates": U, "deletes": D, "inserts": I, "total": N}``;
  ``"calendars": [...]`` instead of ``"calendar"`` applies the same burst to each;
* ``{"op": "set_latency", "fixed_ms": F, "per_item_ms": P, "jitter_ms": J}`` - the
  emulator's per-request latency (Google-like waiting; 0 turns it off);
* ``{"op": "truth", "calendars": [...], "path": P}`` - write {cal: {id: [etag, status, summary]}};
* ``{"op": "requests"}`` - API requests served since the last call (then forgets them):
  total, per method, per user, errors, and the most requests in flight at once;
* ``{"op": "quit"}``.

Seeding happens in-process (``seed_raw``): pushing 150 MB of JSON through the
control API would measure the control API.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from typing import Any

import data

from reconciler.emulator import Emulator
from reconciler.emulator.server import ServerHandle

OWNER = "user@example.com"


def _seed(emu: Emulator, calendars: list[str], events: int, owner: str = OWNER) -> dict[str, Any]:
    for cal in calendars:
        emu.add_calendar(cal, owners=[owner])
        batch: list[dict[str, Any]] = []
        for n in range(events):
            batch.append(data.make_event(cal, n))
            if len(batch) == 5000:
                emu.seed_raw(cal, batch)
                batch = []
        emu.seed_raw(cal, batch)
    return {"ok": True}


def _burst(emu: Emulator, cal: str, updates: int, deletes: int, inserts: int,
           total: int) -> dict[str, Any]:
    """Change ``updates`` events, delete ``deletes`` others, add ``inserts`` new ones."""
    touched = updates + deletes
    step = max(1, total // max(1, touched))
    picks = list(range(0, total, step))[:touched]
    batch = [data.make_event(cal, n, 1) for n in picks[:updates]]
    batch += [data.cancelled_stub(n, 1) for n in picks[updates:]]
    batch += [data.make_event(cal, total + k) for k in range(inserts)]
    batch.sort(key=lambda r: r["id"])
    emu.seed_raw(cal, batch)
    return {"ok": True, "changed": len(batch)}


def _truth(emu: Emulator, calendars: list[str], path: str) -> dict[str, Any]:
    out: dict[str, dict[str, list[str]]] = {}
    with emu.lock:
        for cal_id in calendars:
            cal = emu.calendars[cal_id]
            out[cal_id] = {i: [r.current.resource.get("etag", ""),
                               r.current.resource.get("status", "confirmed"),
                               r.current.resource.get("summary", "")]
                           for i, r in cal.events.items()}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(out, handle)
    return {"ok": True}


def _requests(emu: Emulator) -> dict[str, Any]:
    log = emu.request_log
    emu.clear_request_log()
    methods = Counter(r.method for r in log)
    users = Counter(r.user for r in log)
    errors = sum(1 for r in log if r.status >= 400)
    peak = emu.concurrency(reset=True)["max_in_flight"]
    return {"total": len(log), "methods": dict(methods), "users": dict(users), "errors": errors,
            "max_in_flight": peak}


def main() -> None:
    """Serve, then obey commands until ``quit`` or end of input."""
    emu = Emulator(default_user=OWNER)
    handle = ServerHandle(emu, "127.0.0.1", 0)
    print(json.dumps({"host": emu.host}), flush=True)
    try:
        for line in sys.stdin:
            cmd = json.loads(line)
            op = cmd.pop("op")
            started = time.perf_counter()
            if op == "seed":
                reply = _seed(emu, cmd["calendars"], cmd["events"], cmd.get("owner", OWNER))
            elif op == "burst":
                changed = 0
                for cal in cmd.get("calendars") or [cmd["calendar"]]:
                    changed += _burst(emu, cal, cmd["updates"], cmd["deletes"], cmd["inserts"],
                                      cmd["total"])["changed"]
                reply = {"ok": True, "changed": changed}
            elif op == "set_latency":
                emu.set_latency(fixed_ms=cmd.get("fixed_ms", 0.0),
                                per_item_ms=cmd.get("per_item_ms", 0.0),
                                jitter_ms=cmd.get("jitter_ms", 0.0))
                reply = {"ok": True}
            elif op == "truth":
                reply = _truth(emu, cmd["calendars"], cmd["path"])
            elif op == "requests":
                reply = _requests(emu)
            elif op == "quit":
                break
            else:
                reply = {"error": f"unknown op {op}"}
            reply["seconds"] = time.perf_counter() - started
            print(json.dumps(reply), flush=True)
    finally:
        handle.stop()


if __name__ == "__main__":
    main()
