"""``reconciler demo``: the offline tour (the logic is :mod:`reconciler.demo`)."""

from __future__ import annotations

import sys

import click

from reconciler.cli.context import Context, pass_context


@click.command("demo")
@click.option("--database", "database_url", default="sqlite:///reconciler-demo.db",
              show_default=True, help="Where the demo mirror is written.")
@pass_context
def demo(ctx: Context, database_url: str) -> None:
    """Offline tour: emulator + sample calendars, sync, edit, sync, print the change feed.

    Afterwards, inspect the result with e.g.
    `RECONCILER_DATABASE_URL=sqlite:///reconciler-demo.db reconciler changes`.
    """
    from reconciler.demo import run_demo

    sys.exit(run_demo(database_url, echo=click.echo))
