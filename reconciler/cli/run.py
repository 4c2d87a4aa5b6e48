"""``reconciler run``: the long-lived process.

Exit status: 0 after SIGTERM/SIGINT (within 15 s, leases released); 1 when
it cannot start (database unreachable, another ``run`` already uses the
same SQLite file, metrics port taken); 2 for usage and config errors.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from reconciler.cli.context import Context, pass_context


@click.command("run")
@pass_context
def run(ctx: Context) -> None:
    """Keep the mirror in sync until SIGTERM/SIGINT; SIGHUP reloads the config."""
    from reconciler.daemon.scheduler import Daemon
    from reconciler.daemon.singleton import lock_for

    config = ctx.config()
    lock = lock_for(config.database.sqlite_path)
    if lock is not None:
        lock.acquire()
    try:
        ctx.store(config)
        daemon = Daemon(config, config_path=config.path or ctx.config_path)
        clean = daemon.run(install_signals=True)
    finally:
        if lock is not None:
            lock.release()
    if not clean:
        # A worker thread is stuck in a request; its leases are already released.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    sys.exit(0)
