"""``reconciler emulator`` (also ``python -m reconciler.emulator``): the Calendar v3 emulator
as a standalone server.

The emulator is a separate tool: this module is the only one outside
``reconciler.emulator`` (besides the offline tour, :mod:`reconciler.demo`) that
imports it.

Prints one line with the base URL and the ``GOOGLE_CALENDAR_EMULATOR_HOST`` value,
serves until SIGINT/SIGTERM and exits 0; with ``--state`` the whole state is
loaded at start (if the file exists) and saved on shutdown.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from reconciler.emulator import persist, seed
from reconciler.emulator.emulator import Emulator
from reconciler.emulator.server import ServerHandle


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8085, show_default=True, type=int, help="Port (0: any free port).")
@click.option("--seed", "seed_spec", default=None, help='"demo" or a seed JSON file.')
@click.option(
    "--state",
    "state_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Load state from this JSON file at start, save it on shutdown.",
)
@click.option(
    "--user",
    "default_user",
    default="user@example.com",
    show_default=True,
    help="Default user for requests without an emulator-user bearer token.",
)
def emulator(
    host: str, port: int, seed_spec: str | None, state_file: str | None, default_user: str
) -> None:
    """Run a local Google Calendar v3 emulator."""
    emu = Emulator(default_user=default_user)
    if state_file and Path(state_file).exists():
        persist.load(emu, state_file)
    elif seed_spec == "demo":
        seed.seed_demo(emu)
    elif seed_spec:
        seed.load_seed_file(emu, seed_spec)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    handle = ServerHandle(emu, host, port)
    click.echo(
        f"Calendar emulator serving {emu.base_url} GOOGLE_CALENDAR_EMULATOR_HOST={emu.host}",
        nl=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        handle.stop()
        if state_file:
            persist.save(emu, state_file)
        for s, h in old.items():
            signal.signal(s, h)
