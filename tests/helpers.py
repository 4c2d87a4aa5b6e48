"""Test helpers: write a config for an emulator, run passes, compare mirror with truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from reconciler.config import Config, load_config
from reconciler.emulator import Emulator
from reconciler.store import open_store
from reconciler.store.events import iter_events

REPO = Path(__file__).resolve().parents[1]


def write_config(tmp_path: Path, database_url: str, accounts: list[dict[str, Any]] | None = None,
                 sync: dict[str, Any] | None = None, extra: str = "") -> Path:
    """A TOML config file for the given database and accounts."""
    accounts = accounts or [{"name": "ops", "calendars": ["team@group.calendar.google.com"]}]
    lines = ["[database]", f"url = {json.dumps(database_url)}", "", "[google]",
             "max_retry_seconds = 20", "retries = 4", "", "[sync]"]
    for key, value in (sync or {}).items():
        lines.append(f"{key} = {json.dumps(value)}")
    for account in accounts:
        lines += ["", "[[accounts]]"]
        for key, value in account.items():
            lines.append(f"{key} = {json.dumps(value)}")
    path = tmp_path / "reconciler.toml"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def emulator_env(emu: Emulator) -> dict[str, str]:
    """The environment that points the reconciler at ``emu``."""
    return {"GOOGLE_CALENDAR_EMULATOR_HOST": emu.host}


def config_for(emu: Emulator, path: Path) -> Config:
    """Load a config file as the CLI would with the emulator variable set."""
    config = load_config(path, env=emulator_env(emu))
    open_store(config.database.url)
    return config


def run_cli(emu: Emulator | None, *args: str, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``reconciler ARGS`` in a subprocess, as other tools do."""
    full_env = dict(os.environ)
    if emu is not None:
        full_env.update(emulator_env(emu))
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], env=full_env,
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


def mirror(calendar_id: str | None = None) -> dict[str, tuple[str, dict[str, Any]]]:
    """The mirror's rows: event id -> (status, raw resource)."""
    rows = {}
    for _account, cal, status, raw in iter_events(None, include_cancelled=True):
        if calendar_id is None or cal == calendar_id:
            event = json.loads(raw)
            rows[event["id"]] = (status, event)
    return rows


def assert_mirror_exact(emu: Emulator, calendar_id: str) -> None:
    """Live rows equal the emulator's live events byte for byte; deleted ones are tombstones."""
    truth = {e["id"]: e for e in emu.events(calendar_id)}
    rows = mirror(calendar_id)
    live_truth = {i: e for i, e in truth.items() if e.get("status") != "cancelled"}
    live_rows = {i: raw for i, (status, raw) in rows.items() if status != "cancelled"}
    assert set(live_rows) == set(live_truth), (
        f"missing {sorted(set(live_truth) - set(live_rows))[:5]}, "
        f"extra {sorted(set(live_rows) - set(live_truth))[:5]}")
    for event_id, event in live_truth.items():
        assert live_rows[event_id] == event, event_id
    for event_id, event in truth.items():
        if event.get("status") == "cancelled" and event_id in rows:
            assert rows[event_id][0] == "cancelled", event_id
