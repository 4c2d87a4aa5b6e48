"""``reconciler init-db``: create or upgrade the schema explicitly.

Every writing command migrates on start anyway; this exists for deployments
that prepare the database before the first ``run`` (and say so in their logs).
"""

from __future__ import annotations

import click

from reconciler.cli.context import Context, pass_context


@click.command("init-db")
@pass_context
def init_db(ctx: Context) -> None:
    """Create or upgrade the database schema (also done automatically on start)."""
    from reconciler.store import open_store
    from reconciler.store.db import redact_url
    from reconciler.store.migrate import migrate

    config = ctx.config()
    db = open_store(config.database.url, run_migrations=False)
    applied = migrate(db)
    where = redact_url(config.database.url)
    if applied:
        click.echo(f"applied {len(applied)} migration(s) to {where}: {', '.join(applied)}")
    else:
        click.echo(f"schema of {where} is up to date")
