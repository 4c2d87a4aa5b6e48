"""``reconciler once``: one pass over every calendar, for cron jobs and CI.

Exit statuses follow the one table: 0 all synced, 1 any calendar or account
failed (each named on stderr), 2 usage or config errors, including an unknown
``--calendar`` (with the closest known ids), 130 or 143 when SIGINT or SIGTERM
stopped it after the pages in flight (one line says so; a second SIGINT stops
it at once).
"""

from __future__ import annotations

import sys

import click

from reconciler.cli.context import Context, pass_context


@click.command()
@click.option("--calendar", "only", multiple=True, metavar="ID",
              help="Sync only this calendar (repeatable).")
@click.option("--full", is_flag=True, help="Ignore stored tokens: full listing with mark-and-sweep.")
@click.option("--concurrency", type=click.IntRange(min=1, max=256),
              help="Calendars synced in parallel.")
@click.option("--verify", is_flag=True,
              help="Also compare the mirror with a full listing; exit 1 if it differed.")
@pass_context
def once(ctx: Context, only: tuple[str, ...], full: bool, concurrency: int | None,
         verify: bool) -> None:
    """One pass over every calendar, then exit (0 all synced, 1 any failed)."""
    from reconciler.once import Interrupts, run_once

    interrupts = Interrupts(ctx.log_format)
    interrupts.install()
    try:
        config = ctx.config()
        ctx.store(config)
        status = run_once(config, only=list(only), full=full, concurrency=concurrency,
                          verify=verify, log_format=ctx.log_format, summary=True,
                          interrupts=interrupts)
    finally:
        interrupts.restore()
    sys.exit(status)
