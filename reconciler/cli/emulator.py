"""``reconciler emulator`` (also ``python -m reconciler.emulator``): the Calendar v3 emulator
as a standalone server.

The emulator is a separate tool: this module is the only one outside
``reconciler.emulator`` (besides the offline tour, :mod:`reconciler.demo`) that
imports it.

Prints one line with the base URL and the ``GOOGLE_CALENDAR_EMULATOR_HOST`` value,
serves until SIGINT/SIGTERM and exits 0; with ``--state`` the whole state is
loaded at start (if the file exists) and saved on shutdown. ``--latency-ms``
(plus ``--latency-per-item-ms`` and ``--latency-jitter-ms``) makes every API
answer wait as long as Google's would, for benchmarks.

``--client-secrets FILE`` registers an OAuth client and writes its client-secrets
file (naming this emulator's endpoints), so ``reconciler auth login
--client-secrets FILE`` can be rehearsed from the shell; ``--calendars N
--events M --generate-seed S`` generates calendars and events for large syncs.
A seed file that cannot be applied is one line naming the file and the event
(exit 2), never an internal error.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from reconciler.emulator import generate, persist, seed
from reconciler.emulator.emulator import Emulator
from reconciler.emulator.oauth import client_secrets_document
from reconciler.emulator.server import ServerHandle
from reconciler.errors import ConfigError

CLIENT_ID = "emulator-desktop.apps.googleusercontent.com"
CLIENT_SECRET = "emulator-desktop-secret"


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
@click.option(
    "--client-secrets",
    "client_secrets",
    default=None,
    type=click.Path(dir_okay=False),
    help="Register an OAuth client and write its client-secrets file here "
         "(for `reconciler auth login --client-secrets FILE`).",
)
@click.option("--client-id", default=CLIENT_ID, show_default=True,
              help="The OAuth client id to register with --client-secrets.")
@click.option(
    "--calendars",
    "generate_calendars",
    default=0,
    show_default=True,
    type=click.IntRange(0, 100_000),
    help="Generate this many calendars of the default user (generated-0001@group...).",
)
@click.option(
    "--events",
    "generate_events",
    default=0,
    show_default=True,
    type=click.IntRange(0, 10_000_000),
    help="Events generated in each calendar of --calendars.",
)
@click.option("--generate-seed", default=0, show_default=True, type=int,
              help="Random seed of --calendars/--events (the same seed, the same events).")
def emulator(
    host: str,
    port: int,
    seed_spec: str | None,
    state_file: str | None,
    default_user: str,
    latency_ms: float,
    latency_per_item_ms: float,
    latency_jitter_ms: float,
    client_secrets: str | None,
    client_id: str,
    generate_calendars: int,
    generate_events: int,
    generate_seed: int,
) -> None:
    """Run a local Google Calendar v3 emulator.

    Examples: `reconciler emulator --seed demo`; `reconciler emulator --calendars 5
    --events 10000` (large syncs); `reconciler emulator --client-secrets
    client.json` then `reconciler auth login --client-secrets client.json
    --output token.json --no-browser` (the printed URL consents at once).
    """
    if generate_events and not generate_calendars:
        raise click.UsageError("--events needs --calendars N (events are generated per calendar)")
    emu = Emulator(default_user=default_user)
    emu.set_latency(latency_ms, latency_per_item_ms, latency_jitter_ms)
    try:
        if state_file and Path(state_file).exists():
            persist.load(emu, state_file)
        elif seed_spec == "demo":
            seed.seed_demo(emu)
        elif seed_spec:
            seed.load_seed_file(emu, seed_spec)
    except seed.SeedError as exc:
        raise ConfigError(str(exc)) from None
    generated = (generate.generate(emu, generate_calendars, generate_events, generate_seed)
                 if generate_calendars else [])
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
    try:
        if client_secrets:
            _write_client_secrets(emu, client_secrets, client_id)
        click.echo(
            f"Calendar emulator serving {emu.base_url} GOOGLE_CALENDAR_EMULATOR_HOST={emu.host}",
            nl=True,
        )
        if generate_calendars:
            kept = generate_calendars - len(generated)
            click.echo(f"generated {len(generated)} calendar(s) of {generate_events} "
                       f"event(s) each (seed {generate_seed})"
                       + (f"; {kept} already in the state, kept as they were" if kept else ""))
        if client_secrets:
            click.echo(f"OAuth client {client_id} registered; client secrets in {client_secrets}")
        while not stop.wait(0.5):
            pass
    finally:
        handle.stop()
        if state_file:
            persist.save(emu, state_file)
        for s, h in old.items():
            signal.signal(s, h)


def _write_client_secrets(emu: Emulator, path: str, client_id: str) -> None:
    """Register ``client_id`` and write its client-secrets file (mode 0600, like a download
    that holds a secret), naming this emulator's authorization and token endpoints."""
    emu.oauth.register_client(client_id, CLIENT_SECRET)
    document = client_secrets_document(f"http://{emu.host}", client_id, CLIENT_SECRET)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
    except OSError as exc:
        raise ConfigError(f"--client-secrets {path}: cannot write: {exc.strerror or exc}") from None
