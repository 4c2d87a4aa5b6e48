"""Helpers for the daemon tests: a config with quick retries, an in-process daemon."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reconciler.config import Config
from reconciler.daemon.scheduler import Daemon
from reconciler.emulator import Emulator
from tests.helpers import config_for, wait_for


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def write_daemon_config(tmp_path: Path, database_url: str, accounts: list[dict[str, Any]],
                        sections: dict[str, dict[str, Any]] | None = None,
                        name: str = "reconciler.toml") -> Path:
    """A config file whose API errors fail fast (no long inline retries)."""
    tables: dict[str, dict[str, Any]] = {"database": {"url": database_url},
                                         "google": {"retries": 0, "max_retry_seconds": 2}}
    for key, values in (sections or {}).items():
        tables.setdefault(key, {}).update(values)
    lines: list[str] = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
        lines.append("")
    for account in accounts:
        lines.append("[[accounts]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in account.items()]
        lines.append("")
    path = tmp_path / name
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def load(emu: Emulator, path: Path) -> Config:
    """Load the config the way the CLI does (emulator variable set) and open the store."""
    return config_for(emu, path)


@contextmanager
def running_daemon(config: Config, **kwargs: Any) -> Iterator[Daemon]:
    """A daemon serving in a background thread; stopped (and checked clean) on exit."""
    daemon = Daemon(config, **kwargs)
    outcome: dict[str, Any] = {}

    def serve() -> None:
        try:
            outcome["clean"] = daemon.run(install_signals=False)
        except BaseException as exc:  # surfaced in the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=serve, name="daemon", daemon=True)
    thread.start()
    try:
        wait_for(lambda: daemon.scheduler.running or "error" in outcome, 10, "scheduler start")
        if "error" in outcome:
            raise outcome["error"]
        yield daemon
    finally:
        daemon.request_stop()
        thread.join(20)
    assert not thread.is_alive(), "daemon did not stop"
    if "error" in outcome:
        raise outcome["error"]
    assert outcome.get("clean") is True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
