"""``reconciler receiver`` and ``reconciler watch ...``.

``receiver`` serves only the notification receiver (for a DMZ host that shares
nothing but the database and the config's ``[watch]`` section with the
pollers); ``watch stop-all`` closes every open channel, e.g. after rotating
``[watch] secret`` (a running ``run`` reopens them with new tokens within
seconds) or before turning watch mode off; ``watch list`` shows the table and,
being read-only, never creates a database.
"""

from __future__ import annotations

import signal
import sys
import threading

import click

from reconciler.cli.context import EXIT_FAILED, EXIT_OK, Context, pass_context


@click.command("receiver")
@click.option("--listen", metavar="HOST:PORT", help="Where to bind (default: [watch] listen).")
@pass_context
def receiver(ctx: Context, listen: str | None) -> None:
    """Serve the push-notification receiver only, until SIGTERM/SIGINT."""
    from reconciler.watch.receiver import make_app
    from reconciler.watch.server import ReceiverServer, parse_listen

    stop = threading.Event()
    config = ctx.config()
    host, port = parse_listen(listen, "--listen") if listen else parse_listen(config.watch.listen)
    ctx.store(config)
    app = make_app(config)
    server = ReceiverServer(app, host, port)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    click.echo(f"reconciler: receiver listening on {server.url}", err=True)
    while not stop.wait(0.5):
        pass
    server.stop()
    app.close()
    sys.exit(EXIT_OK)


@click.group("watch")
def watch() -> None:
    """Push-notification channels (watch mode)."""


@watch.command("stop-all")
@pass_context
def stop_all(ctx: Context) -> None:
    """Stop every open channel, whichever process opened it (exit 1 if Google refused any)."""
    from reconciler.service import Service
    from reconciler.watch import channels
    from reconciler.watch.manager import stop_channel

    config = ctx.config()
    ctx.store(config)
    service = Service(config)
    accounts = {a.name for a in config.accounts}
    refused = 0
    rows = [r for r in channels.all_rows() if r.state in channels.LIVE_STATES]
    try:
        for row in rows:
            calendar = channels.calendar(row.calendar_id)
            ok = True
            if row.state == channels.OPEN and row.resource_id and calendar is not None:
                if calendar.account in accounts:
                    ok = stop_channel(service.pool.for_account(calendar.account), row)
                else:
                    ok = False
                    click.echo(f"reconciler: channel {row.channel_id}: account "
                               f"{calendar.account!r} is not in the config; left to expire",
                               err=True)
            channels.forget(row.id)
            refused += not ok
            name = calendar.calendar_id if calendar is not None else "?"
            click.echo(f"stopped {row.channel_id} ({name})" if ok
                       else f"forgot {row.channel_id} ({name}); it expires on its own")
    finally:
        service.close()
    click.echo(f"{len(rows) - refused} of {len(rows)} channel(s) stopped")
    sys.exit(EXIT_FAILED if refused else EXIT_OK)


@watch.command("list")
@pass_context
def list_channels(ctx: Context) -> None:
    """Every channel row: calendar, state, expiry or next retry, owner, last error."""
    from reconciler.watch import channels

    ctx.read_store()
    rows = channels.listing()
    if not rows:
        click.echo("no channels")
        return
    for cal, row in rows:
        when = row.expiration if row.state != "failed" else row.retry_after
        label = "expires" if row.state != "failed" else "retry"
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else "-"
        error = f"  {row.error[:120]}" if row.error else ""
        click.echo(f"{cal}  {row.channel_id}  {row.state}  {label} {stamp}  "
                   f"owner {row.owner or '-'}{error}")
