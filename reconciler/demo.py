"""``reconciler demo``: the whole product in one minute, with no Google account.

Starts the emulator in-process, seeds sample calendars, mirrors them into a
database, makes the edits that trip naive sync code (a title change that keeps
``sequence``, a move, a delete), syncs again and prints what the change feed
says changed. Everything runs through the same code paths as ``once``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
from collections.abc import Callable

from reconciler.config import parse_config
from reconciler.dburl import sqlite_path
from reconciler.emulator import Emulator, running_emulator
from reconciler.emulator.seed import seed_demo
from reconciler.errors import ConfigError
from reconciler.oneshot import run_once
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


def _demo_accounts(path: str) -> set[str] | None:
    """The account names stored in the SQLite file ``path`` (``None``: not a mirror)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return {name for (name,) in db.execute("SELECT name FROM account")}
    except sqlite3.Error:
        return None


def fresh_database(database_url: str, echo: Echo) -> None:
    """Start the tour from an empty database, saying so when an earlier run's is replaced.

    Why: an earlier demo's rows would turn the "first sync" into a 410 resync with
    deletions. A SQLite file that holds only the demo's own account is removed;
    any other mirror (another account, a server database with calendars) is refused,
    never deleted.
    """
    path = sqlite_path(database_url)
    if path is not None and path != ":memory:" and os.path.exists(path):
        if not (_demo_accounts(path) or set()) <= {"demo"}:
            raise ConfigError(f"demo: {path} holds a mirror that is not the demo's; "
                              "give --database a new file")
        for name in (path, f"{path}-wal", f"{path}-shm"):
            if os.path.exists(name):
                os.remove(name)
        echo(f"Removed the mirror of an earlier demo run ({path}): each run starts empty.")
        return
    if path is None:
        db = open_store(database_url)
        (count,) = db.execute_sql("SELECT COUNT(*) FROM calendar").fetchone()
        if count:
            raise ConfigError(f"demo: {redact_url(database_url)} already holds {count} "
                              "calendar(s); give --database an empty database")


def command_name() -> str:
    """How to call ``reconciler`` from this shell: the bare name when it is on ``PATH``
    (an active venv), else the path of the script that runs now (``.venv/bin/reconciler``),
    so the commands the tour suggests work when pasted."""
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    on_path = shutil.which("reconciler")
    if os.path.basename(script) != "reconciler" or not os.path.isfile(script):
        return "reconciler" if on_path else f"{sys.executable} -m reconciler.cli"
    if on_path and os.path.abspath(on_path) == script:
        return "reconciler"
    relative = os.path.relpath(script)
    return script if relative.startswith("..") else f"./{relative}"


def run_demo(database_url: str, echo: Echo = print) -> int:
    """Run the tour against ``database_url``; return the exit status."""
    fresh_database(database_url, echo)
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
        cmd = command_name()
        echo(f"\nLook around: export RECONCILER_DATABASE_URL={database_url}; then "
             f"`{cmd} status`, `{cmd} export`, `{cmd} changes`.")
        return code
