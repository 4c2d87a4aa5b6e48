"""``reconciler emulator``: run the Calendar v3 emulator as a standalone server.

Prints one line with the base URL and the ``GOOGLE_CALENDAR_EMULATOR_HOST`` value,
serves until SIGINT/SIGTERM and exits 0; with ``--state`` the whole state is
loaded at start (if the file exists) and saved on shutdown. ``--latency-ms``
(plus ``--latency-per-item-ms`` and ``--latency-jitter-ms``) makes every API
answer wait as long as Google's would, for benchmarks.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from . import persist, seed
from .emulator import Emulator
from .server import ServerHandle


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option(
    "--port", default=8085, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free port)."
)
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
@click.option(
    "--latency-ms",
    "latency_ms",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 3_600_000),
    help="Fixed delay before every API answer (Google: 100-300 ms).",
)
@click.option(
    "--latency-per-item-ms",
    "latency_per_item_ms",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 60_000),
    help="Extra delay per item in a list page.",
)
@click.option(
    "--latency-jitter-ms",
    "latency_jitter_ms",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 3_600_000),
    help="Extra uniform random delay, 0 to this many ms.",
)
def emulator_command(
    host: str,
    port: int,
    seed_spec: str | None,
    state_file: str | None,
    default_user: str,
    latency_ms: float,
    latency_per_item_ms: float,
    latency_jitter_ms: float,
) -> None:
    """Run a local Google Calendar v3 emulator."""
    emu = Emulator(default_user=default_user)
    emu.set_latency(latency_ms, latency_per_item_ms, latency_jitter_ms)
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
    try:
        handle = ServerHandle(emu, host, port)
    except OSError as exc:
        for s, h in old.items():
            signal.signal(s, h)
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
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
