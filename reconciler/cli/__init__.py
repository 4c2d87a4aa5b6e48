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

import importlib
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

# Each command's module is imported when the command is asked for, not at start-up:
# ``reconciler once`` never pays for the emulator, the watch receiver, the daemon
# (APScheduler, prometheus) or the demo. name -> (module, attribute).
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "once": ("reconciler.cli.once", "once"),
    "export": ("reconciler.cli.read", "export"),
    "changes": ("reconciler.cli.read", "changes"),
    "status": ("reconciler.cli.read", "status"),
    "run": ("reconciler.cli.run", "run"),
    "init-db": ("reconciler.cli.initdb", "init_db"),
    "receiver": ("reconciler.cli.watch", "receiver"),
    "watch": ("reconciler.cli.watch", "watch"),
    "demo": ("reconciler.cli.demo", "demo"),
    "emulator": ("reconciler.cli.emulator", "emulator"),
    "auth": ("reconciler.cli.auth", "auth"),
    "config": ("reconciler.cli.config", "config_group"),
    "history": ("reconciler.cli.history", "history"),
    "agenda": ("reconciler.cli.agenda", "agenda"),
}


class ReconcilerGroup(click.Group):
    """A group whose commands accept the global options and share the error mapping.

    Commands named in :data:`LAZY_COMMANDS` are imported on first use.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, loaded or not (help lists them all)."""
        return sorted(set(self.commands) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, importing its module on first use."""
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            module, attribute = LAZY_COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

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
