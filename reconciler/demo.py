"""``reconciler demo``: the whole product in one minute, with no Google account.

Starts the emulator in-process, seeds sample calendars, mirrors them into a
database, makes the edits that trip naive sync code (a title change that keeps
``sequence``, a move, a delete), syncs again and prints what the change feed
says changed. Everything runs through the same code paths as ``once``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from reconciler.config import parse_config
from reconciler.emulator import Emulator, running_emulator
from reconciler.emulator.seed import seed_demo
from reconciler.once import run_once
from reconciler.store import open_store
from reconciler.store.changes import read_changes
from reconciler.store.db import redact_url
from reconciler.store.events import count_events
from reconciler.store.models import Calendar

Echo = Callable[[str], None]


def _summaries(feed: list[dict], titles: dict[str, str]) -> list[str]:
    """One line per change; an ``updated`` line names the fields that changed."""
    return [f"  #{c['id']:<4} {c['kind']:<8} {c['calendar']}  {c['event_id']}"
            f"  {titles.get(c['event_id'], '')}"
            + (f"  fields: {', '.join(c['fields'])}" if c.get("fields") else "") for c in feed]


def _titles(emu: Emulator) -> dict[str, str]:
    return {e["id"]: e["summary"] for cal in emu.dump()["calendars"] for e in cal["events"]
            if "summary" in e}


def run_demo(database_url: str, echo: Echo = print) -> int:
    """Run the tour against ``database_url``; return the exit status."""
    with running_emulator() as emu:
        seed_demo(emu)
        text = (f'[database]\nurl = {json.dumps(database_url)}\n'
                f'[google]\napi_endpoint = {json.dumps(emu.base_url)}\n'
                '[sync]\npage_size = 5\nconcurrency = 2\n'
                '[[accounts]]\nname = "demo"\ndiscover = true\n')
        config = parse_config(text, path="demo.toml", env={})
        open_store(config.database.url)
        echo(f"Emulator at {emu.base_url}; mirror in {redact_url(database_url)}")
        echo("\n1. First sync (full listing of every calendar in calendarList):")
        code = run_once(config)
        start = max((c["id"] for c in read_changes(0, 1_000_000)), default=0)
        for row in Calendar.select().where(~Calendar.removed).order_by(Calendar.calendar_id):
            echo(f"  {row.calendar_id}: {count_events(row.id)} events mirrored")

        titles = _titles(emu)
        work = emu.default_user
        events = [e for e in emu.events(work, include_cancelled=False)
                  if "recurringEventId" not in e]
        by_title = {e.get("summary", ""): e for e in events}
        planning = by_title.get("Quarterly planning") or events[0]
        release = by_title.get("🚀 Release day") or events[-1]
        renamed = emu.patch_event(work, planning["id"], {"summary": "Quarterly planning (v2)"})
        echo("\n2. Edits in 'Google':")
        echo(f"  renamed {planning['id']}: sequence {planning.get('sequence')} -> "
             f"{renamed.get('sequence')} (unchanged: sequence-based sync would miss this)")
        moved = emu.patch_event(work, planning["id"], {
            "start": dict(planning["start"], dateTime=planning["start"]["dateTime"][:11] + "14:00:00"),
            "end": dict(planning["end"], dateTime=planning["end"]["dateTime"][:11] + "16:00:00")})
        echo(f"  moved   {planning['id']} to 14:00: sequence -> {moved.get('sequence')}")
        emu.delete_event(work, release["id"])
        echo(f"  deleted {release['id']} ({release.get('summary')})")

        echo("\n3. Second sync (incremental, with the stored sync tokens):")
        code = max(code, run_once(config))
        titles.update(_titles(emu))
        feed = read_changes(start, 1000)
        echo("\n4. The change feed since the first sync (`reconciler changes --since "
             f"{start}`):")
        for line in _summaries(feed, titles):
            echo(line)
        echo(f"\nLook around: export RECONCILER_DATABASE_URL={database_url}; then "
             "`reconciler status`, `reconciler export`, `reconciler changes`.")
        return code
