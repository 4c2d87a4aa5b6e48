"""The ``reconciler`` command line: the top floor of the house.

Why a package: every command group lives in its own module (``once``, ``read``
for export/changes/status, ``run``, ``watch``, ``emulator``, ``demo``,
``initdb``, ``config``) and shares one :class:`~reconciler.cli.context.Context`. Nothing
below this package imports click or this package (``tests/test_layers.py``
checks it), so commands are plain functions of the layers underneath.

Invariants:
- one grammar: the global options work before or after the subcommand, also for
  groups added later with ``cli.add_command`` (the group adds them);
- one exit-status table, printed in ``reconciler --help``
  (:data:`~reconciler.cli.context.EXIT_STATUSES`);
- one error -> exit mapping (:meth:`Context.errors`), wrapped around every
  command by the group; usage errors are one line too (exit 2).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from reconciler.cli.context import (
    EXIT_FAILED,
    EXIT_TABLE,
    EXIT_USAGE,
    Context,
    add_global_options,
    global_options,
)
from reconciler.errors import ReconcilerError, first_line
from reconciler.process import tune_for_sync


class ReconcilerGroup(click.Group):
    """A group whose commands accept the global options and share the error mapping."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Register ``cmd``, giving it (and its subcommands) the global options."""
        super().add_command(add_global_options(cmd), name)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand inside the one error -> exit mapping."""
        with ctx.ensure_object(Context).errors():
            return super().invoke(ctx)


@click.group(cls=ReconcilerGroup, epilog=EXIT_TABLE,
             context_settings={"help_option_names": ["-h", "--help"]},
             params=global_options())
@click.version_option(package_name="calendar-reconciler")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Keep a SQL database an exact mirror of Google Calendar events, by polling.

    Global options work before or after the command, e.g.
    `reconciler once --log-level warning`.
    """
    ctx.ensure_object(Context).apply_logging()


def _register() -> None:
    from reconciler.cli import (
        auth,
        config,
        demo,
        emulator,
        history,
        initdb,
        once,
        read,
        run,
        watch,
    )

    for command in (once.once, read.export, read.changes, read.status, history.history,
                    run.run, initdb.init_db, watch.receiver, watch.watch, demo.demo,
                    emulator.emulator, auth.auth, config.config_group):
        cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run ``cli`` and exit with the table's status."""
    tune_for_sync()
    try:
        result = cli.main(args=argv, prog_name="reconciler", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:  # usage errors: one line, exit 2
        where = exc.ctx.command_path if isinstance(exc, click.UsageError) and exc.ctx else "reconciler"
        Context().say_error(f"{where}: {exc.format_message().rstrip('.')} (see `{where} --help`)")
        sys.exit(exc.exit_code if exc.exit_code != 1 else EXIT_USAGE)
    except click.Abort:
        Context().say_error("aborted")
        sys.exit(EXIT_FAILED)
    except ReconcilerError as exc:  # raised outside a command (e.g. by an option callback)
        Context().report(exc)
    except Exception as exc:  # a bug: still one line; --debug shows the traceback
        if "--debug" in (argv if argv is not None else sys.argv[1:]):
            raise
        Context().say_error(f"internal error: {type(exc).__name__}: {first_line(exc)} "
                            "(run again with --debug for the traceback, and please report it)")
        sys.exit(EXIT_FAILED)
    sys.exit(result if isinstance(result, int) else 0)


__all__ = ["Context", "cli", "main"]
