"""What every command shares: options, config, store, and the one error -> exit mapping.

Invariants:
- one exit-status table (:data:`EXIT_STATUSES`) for every command, printed in
  ``reconciler --help``: 0 ok; 1 a calendar or account failed, or the mirror is
  unreadable or missing; 2 usage or config error;
- every failure a user can cause ends as one line per problem on stderr (in the
  ``--log-format``), never a traceback; ``--debug`` re-raises for bug reports;
- the global options (``-c/--config``, ``--log-level``, ``--log-format``,
  ``--debug``) are accepted before or after the subcommand: :func:`global_options`
  builds the same options for the group and for every subcommand, and both write
  into the one :class:`Context`;
- an output command whose reader closes the pipe (``export | head -1``) ends with
  status 0 and no message (:meth:`Context.errors`; click would say 1);
- read-only commands open the store with :meth:`Context.read_store`, which never
  creates a database.
"""

from __future__ import annotations

import logging
import os
import select
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import click

from reconciler.config import Config, load_config
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.logsetup import configure_logging, make_formatter
from reconciler.store import open_store

if TYPE_CHECKING:
    import peewee

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

EXIT_STATUSES = (
    (EXIT_OK, "everything asked for succeeded"),
    (EXIT_FAILED, "a calendar or account failed (each named on stderr), or the mirror "
                  "is unreadable or missing"),
    (EXIT_USAGE, "usage or config error (one line per problem), e.g. an unknown --calendar"),
)

EXIT_TABLE = "\n".join(
    ["\b", "Exit statuses (every command):"]
    + [f"  {code}  {meaning}" for code, meaning in EXIT_STATUSES]
    + ["  status --check: 0 OK, 1 a calendar failing or lagging, 2 the mirror unreadable."])

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")


class Context:
    """The state one ``reconciler`` invocation shares across its commands."""

    def __init__(self) -> None:
        self.config_path: str | None = None
        self.debug = False
        self.log_level = "INFO"
        self.log_format = "text"
        self._config: Config | None = None

    def set_option(self, name: str, value: Any) -> None:
        """Record a global option (from before or after the subcommand)."""
        setattr(self, name, value)
        if name in ("log_level", "log_format"):
            self.apply_logging()

    def apply_logging(self) -> None:
        """(Re)configure logging with the current level and format."""
        configure_logging(self.log_level.upper(), self.log_format)

    def config(self, *, allow_missing: bool = False, check_files: bool = True) -> Config:
        """The loaded config (``ConfigError`` when unusable); loaded once.

        ``check_files=False`` accepts credentials files that are not installed yet.
        """
        if self._config is None:
            self._config = load_config(self.config_path, allow_missing=allow_missing,
                                       check_files=check_files)
        return self._config

    def store(self, config: Config | None = None) -> peewee.Database:
        """Open the database for writing: create it and migrate if needed."""
        return open_store((config or self.config()).database.url)

    def read_store(self, config: Config | None = None) -> peewee.Database:
        """Open an existing database for a read-only command; never create one.

        Works without a config file (``$RECONCILER_DATABASE_URL`` or the default
        SQLite file); a missing SQLite file is ``StoreError`` naming its absolute path.
        """
        return open_store((config or self.config(allow_missing=True)).database.url, create=False)

    def say_error(self, message: str) -> None:
        """One error line on stderr, following ``--log-format``."""
        if self.log_format == "json":  # the same shape as every other JSON log line
            record = logging.makeLogRecord({"name": "reconciler.cli", "levelno": logging.ERROR,
                                            "levelname": "ERROR", "msg": message})
            click.echo(make_formatter("json").format(record), err=True)
        else:
            click.echo(f"reconciler: error: {message}", err=True)

    def fail(self, message: str, code: int = EXIT_FAILED) -> NoReturn:
        """Print one error line and exit with ``code``."""
        self.say_error(message)
        sys.exit(code)

    def report(self, exc: ReconcilerError) -> NoReturn:
        """Print ``exc`` (one line per config problem) and exit with its status."""
        if isinstance(exc, ConfigError):
            for problem in exc.problems or [str(exc)]:
                self.say_error(" ".join(str(problem).split("\n")))
            sys.exit(EXIT_USAGE)
        self.fail(str(exc), exc.exit_code)

    @contextmanager
    def errors(self) -> Iterator[None]:
        """The one mapping from errors to lines and exit statuses (see :data:`EXIT_STATUSES`)."""
        try:
            yield
        except ReconcilerError as exc:
            if self.debug:
                raise
            self.report(exc)
        except BrokenPipeError:  # `reconciler export | head -1`: the reader has seen enough
            if not stdout_reader_gone():
                raise
            end_quietly_on_closed_pipe()
            sys.exit(EXIT_OK)


def stdout_reader_gone() -> bool:
    """Whether standard output is a pipe (or socket) whose reader has closed it.

    Why: a ``BrokenPipeError`` can also come from a socket to Google or the
    database; only a closed *stdout* means "the reader has seen enough" (``| head``).
    """
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def end_quietly_on_closed_pipe() -> None:
    """Point stdout at /dev/null so the interpreter's flush at exit cannot fail again.

    Called once, at the CLI boundary, when the reader of a pipe went away (``export
    | head -1``): the command ends with status 0 and no message, as ``cat`` does.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    finally:
        os.close(devnull)


pass_context = click.make_pass_decorator(Context, ensure=True)


def _setter(name: str, convert: Callable[[Any], Any] = lambda v: v) -> Callable[..., None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None and value is not False:  # not given: keep the group's value
            ctx.ensure_object(Context).set_option(name, convert(value))
    return callback


def global_options() -> list[click.Option]:
    """Fresh copies of the global options (each command needs its own objects)."""
    return [
        click.Option(["-c", "--config"], metavar="FILE", expose_value=False,
                     callback=_setter("config_path"),
                     help="Config file (default: $RECONCILER_CONFIG, else ./reconciler.toml)."),
        click.Option(["--log-level"], expose_value=False, callback=_setter("log_level", str.upper),
                     type=click.Choice(LOG_LEVELS, case_sensitive=False),
                     help="Log level (default: INFO)."),
        click.Option(["--log-format"], expose_value=False, callback=_setter("log_format"),
                     type=click.Choice(LOG_FORMATS), help="Log format (default: text)."),
        click.Option(["--debug"], is_flag=True, default=None, expose_value=False,
                     callback=_setter("debug"),
                     help="Show tracebacks instead of one-line errors."),
    ]


def add_global_options(command: click.Command) -> click.Command:
    """Accept the global options on ``command`` (and its subcommands) too."""
    names = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for option in global_options():
        if not names.intersection(option.opts):
            command.params.append(option)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_global_options(sub)
    return command
