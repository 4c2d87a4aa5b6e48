"""Logging for every command: readable text for people, JSON lines of fields for machines.

Why: an operator filters a fleet's logs by calendar, account or error kind, so a
line must carry those as fields, not inside prose. structlog renders both the
project's own structlog loggers and every stdlib ``logging`` call (the project's
modules, googleapiclient, APScheduler, waitress) through ONE pipeline
(``structlog.stdlib.ProcessorFormatter`` on the one stderr handler), so every
line on stderr follows ``--log-format``.

Invariants:

- JSON lines always carry ``event``, ``level`` (upper case), ``time`` (ISO 8601
  UTC ending in ``Z``) and ``logger``, plus the context a call passes
  (``extra={...}`` on stdlib calls, keyword arguments on structlog calls).
- Context keys that clash with ``logging.LogRecord`` attributes (``created``,
  ``name``, ``module``...) cannot travel in stdlib ``extra=``: log them through
  :func:`get_logger` (structlog), as :func:`log_pass` does.
- Library loggers never repeat what the project reports itself: the Google
  client's retry WARNINGs are raised to ERROR, waitress's queue warnings to
  ERROR, and APScheduler's "maximum number of running instances" is demoted to
  DEBUG.
- Tokens never reach the logs above DEBUG: no module logs request URLs.
- ``warnings.warn`` output is captured into logging (logger ``py.warnings``), so
  it follows the format too.
- The handler looks ``sys.stderr`` up on every line, so a live display that
  redirects stderr (``rich``) or a test that captures it sees every line.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import structlog
from structlog.dev import Column, ConsoleRenderer, KeyValueColumnFormatter, plain_traceback
from structlog.typing import EventDict, Processor, WrappedLogger

FORMATS = ("text", "json")

# Library loggers and the lowest level at which their lines are worth showing.
_LIBRARY_FLOORS: dict[str, int] = {
    "googleapiclient": logging.WARNING,
    # Every retried 403/429 is already reported (once) by the project.
    "googleapiclient.http": logging.ERROR,
    "googleapiclient.discovery_cache": logging.ERROR,
    "google": logging.WARNING,
    "google_auth_httplib2": logging.WARNING,
    "urllib3": logging.WARNING,
    "apscheduler": logging.WARNING,
    "peewee": logging.WARNING,
    "waitress": logging.WARNING,
    # "Task queue depth is N" repeats under load; the receiver's own metrics tell it.
    "waitress.queue": logging.ERROR,
}

# (logger name, message fragment): lines demoted to DEBUG.
_DEMOTED: tuple[tuple[str, str], ...] = (
    ("apscheduler.scheduler", "maximum number of running instances reached"),
    ("apscheduler.executors.default", "maximum number of running instances reached"),
)


class _StderrHandler(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is at the time of the line."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:  # StreamHandler.__init__ assigns it
        pass


class _Demote(logging.Filter):
    """Rewrite matching records to DEBUG; keep them only when the user asked for DEBUG."""

    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        if self.fragment not in record.getMessage():
            return True
        record.levelno = logging.DEBUG
        record.levelname = "DEBUG"
        return logging.getLogger("reconciler").isEnabledFor(logging.DEBUG)


def _upper_level(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """``level`` in upper case, as the stdlib and most log shippers spell it."""
    level = event_dict.get("level")
    if isinstance(level, str):
        event_dict["level"] = level.upper()
    return event_dict


def _shared_processors() -> list[Processor]:
    """Processors every line passes, whether it came from structlog or the stdlib."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        _upper_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
    ]


_HEAD = ("time", "level", "logger", "event")


def _head_first(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """Put ``time, level, logger, event`` first in a JSON line, for people reading it raw."""
    ordered = {key: event_dict.pop(key) for key in _HEAD if key in event_dict}
    ordered.update(event_dict)
    return ordered


def _text_value(value: object) -> str:
    """A value for ``key=value`` text: bare when it has no spaces, JSON-quoted otherwise."""
    text = str(value)
    if not text or any(ch.isspace() for ch in text) or '"' in text:
        return json.dumps(text, ensure_ascii=False)
    return text


def _plain(value_repr: Any = str, postfix: str = "") -> KeyValueColumnFormatter:
    return KeyValueColumnFormatter(key_style=None, value_style="", reset_style="",
                                   value_repr=value_repr, postfix=postfix)


def _text_renderer() -> ConsoleRenderer:
    """``2025-01-01T12:00:00.000Z INFO reconciler.service: event key=value ...``, no colours."""
    columns = [
        Column("time", _plain()),
        Column("level", _plain()),
        Column("logger", _plain(postfix=":")),
        Column("event", _plain()),
        Column("", KeyValueColumnFormatter(key_style="", value_style="", reset_style="",
                                           value_repr=_text_value)),
    ]
    return ConsoleRenderer(columns=columns, exception_formatter=plain_traceback)


def make_formatter(fmt: str) -> structlog.stdlib.ProcessorFormatter:
    """The formatter that renders every record in ``fmt`` ("text" or "json")."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "json":
        final: list[Processor] = [
            structlog.processors.format_exc_info,
            _head_first,
            structlog.processors.JSONRenderer(ensure_ascii=False, default=str),
        ]
    else:
        final = [_text_renderer()]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )


def _configure_structlog() -> None:
    """Route structlog loggers into the stdlib handler (identical for every format and level)."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Send every log line to stderr in ``fmt`` ("text" or "json"); the project logs at ``level``.

    Safe to call again (a reload, a test): it replaces the handler it installed.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    _configure_structlog()
    handler = _StderrHandler()
    handler.setFormatter(make_formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("reconciler").setLevel(numeric)
    for name, floor in _LIBRARY_FLOORS.items():
        logging.getLogger(name).setLevel(max(floor, numeric))
    # Python warnings (a library's DeprecationWarning...) become log lines in the same format.
    logging.captureWarnings(True)
    for name, fragment in _DEMOTED:
        logger = logging.getLogger(name)
        logger.filters[:] = [f for f in logger.filters if not isinstance(f, _Demote)]
        logger.addFilter(_Demote(fragment))


def get_logger(name: str) -> Any:
    """A structlog logger named ``name``: ``log.info("event", calendar=..., created=...)``."""
    return structlog.stdlib.get_logger(name)


def _name_of(logger: logging.Logger | str) -> str:
    return logger if isinstance(logger, str) else logger.name


def log_pass(logger: logging.Logger | str, *, calendar: str, account: str | None, mode: str,
             created: int, updated: int, deleted: int, requests: int, seconds: float,
             **fields: Any) -> None:
    """Log one finished pass: DEBUG when it changed nothing, INFO otherwise.

    The event is ``synced``; the counts are fields (``created`` clashes with a
    LogRecord attribute, so this goes through structlog).
    """
    changed = created + updated + deleted
    level = logging.INFO if changed else logging.DEBUG
    get_logger(_name_of(logger)).log(
        level, "synced", calendar=calendar, account=account, mode=mode, created=created,
        updated=updated, deleted=deleted, requests=requests, seconds=round(seconds, 3), **fields)


def log_failure(logger: logging.Logger | str, message: str, *, error: BaseException | str,
                level: int = logging.WARNING, calendar: str | None = None,
                account: str | None = None, **fields: Any) -> None:
    """Log a failure as one line: ``message`` plus ``error`` (its one-line text) and ``error_kind``.

    ``error`` may be an exception (its class name becomes ``error_kind``) or a kind name.
    """
    if isinstance(error, BaseException):
        kind, text = type(error).__name__, " ".join(str(error).split())
    else:
        kind, text = error, None
    context: dict[str, Any] = {"error_kind": kind}
    if calendar is not None:
        context["calendar"] = calendar
    if account is not None:
        context["account"] = account
    if text:
        context["error"] = text
    get_logger(_name_of(logger)).log(level, message, **context, **fields)


def log_fields(logger: logging.Logger | str, level: int, event: str,
               fields: Mapping[str, Any]) -> None:
    """Log ``event`` with arbitrary ``fields`` (any key, ``created`` included)."""
    get_logger(_name_of(logger)).log(level, event, **dict(fields))


__all__ = ["FORMATS", "RateLimitedLog", "configure_logging", "get_logger", "log_failure",
           "log_fields", "log_pass", "make_formatter"]


class RateLimitedLog:
    """At most one log line per ``key`` every ``every`` seconds; the rest are counted.

    Forged or stale notifications are cheap to send, and a WARNING per request
    would let anyone fill the disk. The first occurrence is logged at once; later
    ones within ``every`` seconds are only counted, and the next line that is
    written says how many were suppressed. Thread-safe (waitress has several
    worker threads).
    """

    def __init__(self, logger: logging.Logger, every: float = 60.0, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self.every = every
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, key: str, level: int, message: str, *args: object) -> bool:
        """Log ``message % args`` unless ``key`` was logged less than ``every`` s ago.

        Returns True when a line was written.
        """
        with self._lock:
            now = self._monotonic()
            if now < self._next.get(key, float("-inf")):
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._next[key] = now + self.every
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message += " (%d more like this in the last %.0fs not logged)"
            args = (*args, suppressed, self.every)
        self._log.log(level, message, *args)
        return True

    def suppressed(self, key: str) -> int:
        """How many lines for ``key`` are waiting to be counted in the next one."""
        with self._lock:
            return self._suppressed.get(key, 0)
