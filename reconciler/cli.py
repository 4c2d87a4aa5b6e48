"""The ``reconciler`` command line.

Exit statuses are part of the interface contract: 0 when everything asked for
succeeded, 1 when a calendar (or account) failed, each failure named on
stderr, 2 for usage and config errors. Every error the user can cause is one
line on stderr, never a traceback; ``--debug`` shows tracebacks for bug reports.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
import peewee

from reconciler.config import Config, load_config
from reconciler.errors import ConfigError, ReconcilerError, StoreError
from reconciler.logsetup import configure_logging
from reconciler.process import tune_for_sync
from reconciler.store import open_store

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("reconciler.cli")


class Context:
    """What every command shares: the config path and how to open config and store."""

    def __init__(self, config_path: str | None, debug: bool) -> None:
        self.config_path = config_path
        self.debug = debug
        self._config: Config | None = None

    def config(self, *, allow_missing: bool = False) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path, allow_missing=allow_missing)
        return self._config

    def store(self, config: Config | None = None) -> peewee.Database:
        """Open the database; read-only commands work without a config file
        (``$RECONCILER_DATABASE_URL`` or the default SQLite file)."""
        return open_store((config or self.config(allow_missing=True)).database.url)


pass_context = click.make_pass_decorator(Context)


def fail(message: str, code: int = 1) -> None:
    """Print one error line and exit with ``code``."""
    click.echo(f"reconciler: error: {message}", err=True)
    sys.exit(code)


def fail_lines(problems: list[str], code: int) -> None:
    """Print one error line per problem (a config with three mistakes: three lines)."""
    for problem in problems:
        click.echo(f"reconciler: error: {problem}", err=True)
    sys.exit(code)


@contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """Turn project and database errors into one line and the contract's exit status."""
    try:
        yield
    except ConfigError as exc:
        if debug:
            raise
        fail_lines(exc.problems, exc.exit_code)
    except ReconcilerError as exc:
        if debug:
            raise
        fail(str(exc), exc.exit_code)
    except peewee.PeeweeException as exc:
        if debug:
            raise
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        fail(f"database error: {detail} (check [database] url and that the server is up)", 1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", "config_path", metavar="FILE",
              help="Config file (default: $RECONCILER_CONFIG, else ./reconciler.toml).")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.option("--log-format", default="text", show_default=True, type=click.Choice(["text", "json"]))
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="calendar-reconciler")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_level: str, log_format: str,
        debug: bool) -> None:
    """Keep a SQL database an exact mirror of Google Calendar events, by polling."""
    configure_logging(log_level.upper(), log_format)
    ctx.obj = Context(config_path, debug)


@cli.command("init-db")
@pass_context
def init_db(ctx: Context) -> None:
    """Create or upgrade the database schema (also done automatically on start)."""
    with user_errors(ctx.debug):
        config = ctx.config()
        from reconciler.store.db import open_database, redact_url
        from reconciler.store.migrate import migrate
        from reconciler.store.models import database_proxy

        db = open_database(config.database.url)
        database_proxy.initialize(db)
        applied = migrate(db)
        where = redact_url(config.database.url)
        if applied:
            click.echo(f"applied {len(applied)} migration(s) to {where}: {', '.join(applied)}")
        else:
            click.echo(f"schema of {where} is up to date")


@cli.command()
@click.option("--calendar", "only", multiple=True, metavar="ID",
              help="Sync only this calendar (repeatable).")
@click.option("--full", is_flag=True, help="Ignore stored tokens: full listing with mark-and-sweep.")
@click.option("--concurrency", type=click.IntRange(min=1), help="Calendars synced in parallel.")
@click.option("--verify", is_flag=True,
              help="Also compare the mirror with a full listing; exit 1 if it differed.")
@pass_context
def once(ctx: Context, only: tuple[str, ...], full: bool, concurrency: int | None,
         verify: bool) -> None:
    """One pass over every calendar, then exit (0 all synced, 1 any failed)."""
    from reconciler.oneshot import run_once

    with user_errors(ctx.debug):
        config = ctx.config()
        ctx.store(config)
        code = run_once(config, only=list(only), full=full, concurrency=concurrency,
                        verify=verify)
    sys.exit(code)


@cli.command()
@click.option("--calendar", "calendar_id", metavar="ID", help="Only this calendar.")
@click.option("--include-cancelled", is_flag=True, help="Also rows whose status is cancelled.")
@pass_context
def export(ctx: Context, calendar_id: str | None, include_cancelled: bool) -> None:
    """Print the mirror as JSON lines: {"account", "calendar", "status", "event"}."""
    from reconciler.store import calendars
    from reconciler.store.events import iter_events

    with user_errors(ctx.debug):
        ctx.store()
        calendar_pk = None
        if calendar_id is not None:
            row = calendars.get_calendar(calendar_id)
            if row is None:
                fail(f"calendar {calendar_id!r} is not in the mirror "
                     "(see `reconciler status` for the calendars it holds)", 1)
            assert row is not None
            calendar_pk = row.id
        out = sys.stdout
        dumps = json.dumps
        for account, cal, status, raw in iter_events(calendar_pk, include_cancelled):
            out.write(f'{{"account":{dumps(account, ensure_ascii=False)},'
                      f'"calendar":{dumps(cal, ensure_ascii=False)},'
                      f'"status":{dumps(status)},"event":{raw}}}\n')
        out.flush()


@cli.command()
@click.option("--since", type=click.IntRange(min=0), default=0, show_default=True,
              help="Only changes with id > N.")
@click.option("--follow", is_flag=True, help="Keep printing new changes as they are committed.")
@click.option("--calendar", "calendar_id", metavar="ID", help="Only this calendar.")
@click.option("--poll", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="Seconds between reads with --follow.")
@pass_context
def changes(ctx: Context, since: int, follow: bool, calendar_id: str | None, poll: float) -> None:
    """Print the change feed as JSON lines, in id order."""
    from reconciler.store.changes import read_changes

    stop = _stop_flag() if follow else None
    with user_errors(ctx.debug):
        ctx.store()
        last = since
        while True:
            rows = read_changes(last, 1000, calendar_id)
            for row in rows:
                click.echo(json.dumps(row, ensure_ascii=False))
                last = row["id"]
            if rows and len(rows) == 1000:
                continue
            if stop is None or stop():
                break
            sys.stdout.flush()
            time.sleep(poll)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per calendar.")
@pass_context
def status(ctx: Context, as_json: bool) -> None:
    """Per calendar: last success, last error, failures in a row, token age, events, lag."""
    from reconciler.status import calendar_status, render_table

    with user_errors(ctx.debug):
        config = ctx.config(allow_missing=True)
        ctx.store(config)
        rows = calendar_status(config)
        if as_json:
            for row in rows:
                click.echo(json.dumps(row, ensure_ascii=False, default=str))
        else:
            click.echo(render_table(rows))


@cli.command()
@click.option("--database", "database_url", default="sqlite:///reconciler-demo.db",
              show_default=True, help="Where the demo mirror is written.")
@pass_context
def demo(ctx: Context, database_url: str) -> None:
    """Offline tour: emulator + sample calendars, sync, edit, sync, print the change feed.

    Afterwards, inspect the result with e.g.
    `RECONCILER_DATABASE_URL=sqlite:///reconciler-demo.db reconciler changes`.
    """
    from reconciler.demo import run_demo

    with user_errors(ctx.debug):
        sys.exit(run_demo(database_url, echo=click.echo))


def _stop_flag() -> Callable[[], bool]:
    stopped = [False]

    def handler(signum: int, frame: object) -> None:
        stopped[0] = True

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return lambda: stopped[0]


def _register_optional_commands() -> None:
    """Commands that live beside their subsystem (emulator, service loop, watch receiver)."""
    import importlib

    for module_name, attribute, name in (
        ("reconciler.emulator.cli", "emulator_command", "emulator"),
        ("reconciler.daemon.cli", "run_command", "run"),
        ("reconciler.watch.cli", "receiver_command", "receiver"),
        ("reconciler.watch.cli", "watch_group", "watch"),
        ("reconciler.cli_auth", "auth", "auth"),
    ):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if not exc.name or not module_name.startswith(exc.name):
                raise
            continue
        cli.add_command(getattr(module, attribute), name)


_register_optional_commands()


def main() -> None:
    """Console-script entry point."""
    tune_for_sync()
    try:
        cli.main(prog_name="reconciler", standalone_mode=True)
    except ConfigError as exc:  # raised before a command's own handler, e.g. by callbacks
        fail_lines(exc.problems, 2)
    except StoreError as exc:
        fail(str(exc), 1)


if __name__ == "__main__":  # pragma: no cover
    main()

