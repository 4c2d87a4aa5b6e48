"""Logging for every command: readable text for people, JSON lines of fields for machines.

Why: an operator filters a fleet's logs by calendar, account or error kind, so a
line must carry those as fields, not inside prose. Every line goes through ONE
stdlib handler on stderr: the project's field loggers (:func:`get_logger`, which
carry their keyword fields inside one ``extra`` key, so any key is allowed) and
every stdlib ``logging`` call (the project's modules, googleapiclient,
APScheduler, waitress) alike, so every line on stderr follows ``--log-format``.
``json`` is rendered by structlog's ``ProcessorFormatter``; ``text`` by a plain
``logging.Formatter`` with the same output as structlog's console renderer
without colours. structlog (which pulls in ``rich`` for tracebacks, ~50 ms of
imports) is imported only when JSON is asked for: ``once`` in text mode never
pays it.

Invariants:

- JSON lines always carry ``event``, ``level`` (upper case), ``time`` (ISO 8601
  UTC ending in ``Z``) and ``logger``, plus the context a call passes
  (``extra={...}`` on stdlib calls, keyword arguments on :func:`get_logger` calls).
- Text lines are ``time level logger: event key=value ...`` with the keys sorted
  and values JSON-quoted when they hold spaces or quotes; a traceback follows on
  its own lines.
- Context keys that clash with ``logging.LogRecord`` attributes (``created``,
  ``name``, ``module``...) cannot travel in stdlib ``extra=``: log them through
  :func:`get_logger`, as :func:`log_pass` does.
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
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from structlog.typing import EventDict, Processor, WrappedLogger

    from reconciler.outcome import PassOutcome

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


# The one ``extra`` key under which a field logger's keyword fields travel.
_FIELDS = "reconciler_fields"
# Attributes every LogRecord has: anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The context of one record: its ``extra=`` keys, then a field logger's fields."""
    fields = {key: value for key, value in vars(record).items()
              if key not in _RECORD_ATTRS and key != _FIELDS}
    fields.update(getattr(record, _FIELDS, None) or {})
    return fields


def _unpack_fields(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """Lift a field logger's fields (one ``extra`` key) into the JSON line itself."""
    fields = event_dict.pop(_FIELDS, None)
    if fields:
        event_dict.update(fields)
    return event_dict


def _shared_processors() -> list[Processor]:
    """Processors every JSON line passes (structlog is imported here, for JSON only)."""
    import structlog

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


class _TextFormatter(logging.Formatter):
    """``2025-01-01T12:00:00.000000Z INFO reconciler.service: event key=value ...``, no colours."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC)
        parts = [stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), record.levelname,
                 f"{record.name}:", record.getMessage()]
        fields = _record_fields(record)
        parts.extend(f"{key}={_text_value(fields[key])}" for key in sorted(fields))
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def make_formatter(fmt: str) -> logging.Formatter:
    """The formatter that renders every record in ``fmt`` ("text" or "json")."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "text":
        return _TextFormatter()
    import structlog

    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder(), _unpack_fields],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, _head_first,
                    structlog.processors.JSONRenderer(ensure_ascii=False, default=str)],
    )


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Send every log line to stderr in ``fmt`` ("text" or "json"); the project logs at ``level``.

    Safe to call again (a reload, a test): it replaces the handler it installed.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
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


class FieldLogger:
    """A stdlib logger that takes its context as keyword fields: ``log.info("event", n=1)``.

    The fields travel in one ``extra`` key, so names that clash with LogRecord
    attributes (``created``, ``name``...) are fine; both formats lift them out.
    """

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)

    def log(self, level: int, event: str, **fields: Any) -> None:
        """Log ``event`` at ``level`` with ``fields``."""
        if self.logger.isEnabledFor(level):
            self.logger.log(level, event, extra={_FIELDS: fields}, stacklevel=2)

    def debug(self, event: str, **fields: Any) -> None:
        """``log(DEBUG, ...)``."""
        self.log(logging.DEBUG, event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        """``log(INFO, ...)``."""
        self.log(logging.INFO, event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        """``log(WARNING, ...)``."""
        self.log(logging.WARNING, event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        """``log(ERROR, ...)``."""
        self.log(logging.ERROR, event, **fields)


def get_logger(name: str) -> FieldLogger:
    """A field logger named ``name``: ``log.info("event", calendar=..., created=...)``."""
    return FieldLogger(name)


def _name_of(logger: logging.Logger | str) -> str:
    return logger if isinstance(logger, str) else logger.name


def log_pass(logger: logging.Logger | str, outcome: PassOutcome) -> None:
    """Log one finished pass: DEBUG when it changed nothing, INFO otherwise.

    The event is ``synced``; the counts are fields folded from ``outcome.counts``
    (``created`` clashes with a LogRecord attribute, so this goes through a field
    logger). ``full_reason`` and ``bad_events`` appear only when there is one.
    """
    counts = outcome.counts
    level = logging.INFO if counts.changed else logging.DEBUG
    extra: dict[str, Any] = {}
    if outcome.full_reason:
        extra["full_reason"] = outcome.full_reason
    if counts.bad_events:
        extra["bad_events"] = counts.bad_events
    get_logger(_name_of(logger)).log(
        level, "synced", calendar=outcome.calendar_id, account=outcome.account,
        mode=outcome.mode, **counts.changes, requests=outcome.requests,
        seconds=round(outcome.seconds, 3), pages=outcome.pages, **extra)


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


__all__ = ["FORMATS", "FieldLogger", "RateLimitedLog", "configure_logging", "get_logger",
           "log_failure", "log_fields", "log_pass", "make_formatter"]



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
