"""Logs a machine can read: one structlog pipeline for stdlib and structlog lines, both formats."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import Emulator
from reconciler.logsetup import configure_logging, get_logger, log_failure, log_pass
from reconciler.outcome import Counts, Cursor, PassOutcome
from tests.helpers import REPO, run_cli, write_config

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
TEAM = "team@group.calendar.google.com"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back after each test."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    names = ["reconciler", "googleapiclient", "googleapiclient.http", "waitress", "waitress.queue",
             "apscheduler", "apscheduler.scheduler", "apscheduler.executors.default"]
    saved = {name: (logging.getLogger(name).level, logging.getLogger(name).filters[:])
             for name in names}
    yield
    logging.captureWarnings(False)
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    for name, (level, filters) in saved.items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).filters[:] = filters


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def pass_outcome(created: int = 3, updated: int = 1, deleted: int = 0,
                 full_reason: str | None = None) -> PassOutcome:
    return PassOutcome("work@example.com", "ops", "incremental", Cursor(), full_reason=full_reason,
                       counts=Counts(created, updated, deleted), requests=2, seconds=0.4567)


def test_json_lines_carry_fields_from_stdlib_extra_and_structlog(
        capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    logging.getLogger("reconciler.service").info(
        "calendar %s: now synced by account %s", TEAM, "ops",
        extra={"calendar": TEAM, "account": "ops"})
    log_pass(logging.getLogger("reconciler.service"), pass_outcome())
    lines = json_lines(capsys.readouterr().err)
    assert len(lines) == 2
    first, second = lines
    assert first["event"] == f"calendar {TEAM}: now synced by account ops"
    assert (first["calendar"], first["account"]) == (TEAM, "ops")
    assert second == {**second, "event": "synced", "calendar": "work@example.com", "account": "ops",
                      "mode": "incremental", "created": 3, "updated": 1, "deleted": 0,
                      "requests": 2, "seconds": 0.457}
    for line in lines:
        assert line["level"] == "INFO" and line["logger"] == "reconciler.service"
        assert ISO_Z.match(line["time"]), line["time"]
        assert list(line)[:4] == ["time", "level", "logger", "event"]


def test_a_pass_that_changed_nothing_logs_at_debug(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    quiet = pass_outcome(created=0, updated=0, deleted=0)
    log_pass("reconciler.service", quiet)
    assert capsys.readouterr().err == ""
    configure_logging("DEBUG", "json")
    log_pass("reconciler.service", quiet)
    (line,) = json_lines(capsys.readouterr().err)
    assert line["level"] == "DEBUG" and line["created"] == 0


def test_failures_carry_error_kind_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    log_failure("reconciler.once", f"calendar {TEAM}: sync failed",
                error=PermissionError("access denied\nsecond line"), calendar=TEAM, account="ops")
    (line,) = json_lines(capsys.readouterr().err)
    assert line["error_kind"] == "PermissionError" and line["error"] == "access denied second line"
    assert line["level"] == "WARNING" and line["calendar"] == TEAM


def test_an_exception_stays_inside_its_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    try:
        raise RuntimeError("unexpected")
    except RuntimeError:
        logging.getLogger("reconciler.watch").exception("watch: events.watch failed unexpectedly")
    (line,) = json_lines(capsys.readouterr().err)
    assert "RuntimeError: unexpected" in line["exception"]


def test_text_format_is_one_readable_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "text")
    log_pass("reconciler.service", pass_outcome())
    log_pass("reconciler.service", pass_outcome(full_reason="first sync"))
    get_logger("reconciler.cli").warning("config reload failed", error="bad key in x.toml")
    first, full, second = capsys.readouterr().err.splitlines()
    assert re.match(r"^\S+Z INFO reconciler\.service: synced ", first), first
    assert "calendar=work@example.com" in first and "created=3" in first and "seconds=0.457" in first
    assert "full_reason" not in first and "None" not in first  # no field for what did not happen
    assert 'full_reason="first sync"' in full, full
    assert second.endswith('config reload failed error="bad key in x.toml"'), second
    assert "{" not in first


def test_library_loggers_do_not_repeat_what_the_project_reports(
        capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    logging.getLogger("googleapiclient.http").warning('Encountered 403 Forbidden with reason "x"')
    logging.getLogger("waitress.queue").warning("Task queue depth is 5")
    skipped = ('Execution of job "poll (trigger: interval)" skipped: maximum number of running '
               'instances reached (1)')
    logging.getLogger("apscheduler.scheduler").warning(skipped)
    logging.getLogger("apscheduler.scheduler").warning("Scheduler has been shut down abruptly")
    logging.getLogger("urllib3").info("Starting new connection")
    lines = json_lines(capsys.readouterr().err)
    assert [line["event"] for line in lines] == ["Scheduler has been shut down abruptly"]

    configure_logging("DEBUG", "json")
    logging.getLogger("apscheduler.scheduler").warning(skipped)
    (line,) = json_lines(capsys.readouterr().err)
    assert line["level"] == "DEBUG" and "maximum number of running instances" in line["event"]


def test_python_warnings_follow_the_format_too() -> None:
    code = ("import warnings; from reconciler.logsetup import configure_logging; "
            "configure_logging('INFO', 'json'); "
            "warnings.warn('old API', DeprecationWarning, stacklevel=1); "
            "warnings.warn('odd value', UserWarning, stacklevel=1)")
    result = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True,
                            text=True, timeout=60, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stderr)
    assert [line["logger"] for line in lines] == ["py.warnings", "py.warnings"]
    assert "DeprecationWarning: old API" in lines[0]["event"]


def test_reconfiguring_keeps_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "text")
    configure_logging("INFO", "json")
    logging.getLogger("reconciler").warning("once")
    assert len(json_lines(capsys.readouterr().err)) == 1


def test_unknown_format_or_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging("INFO", "xml")
    with pytest.raises(ValueError, match="log level"):
        configure_logging("LOUD", "json")


def test_cli_json_stderr_is_only_json_and_the_google_retry_warning_is_silent(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    calendar_emulator.add_calendar(TEAM, summary="Team", owners=["user@example.com"])
    calendar_emulator.insert_event(TEAM, {"summary": "x", "start": {"dateTime": "2030-01-01T10:00:00Z"},
                                          "end": {"dateTime": "2030-01-01T11:00:00Z"}})
    calendar_emulator.inject_fault(TEAM, status=403, reason="rateLimitExceeded", count=1,
                                   retry_after=0.2)
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'mirror.db'}")
    result = run_cli(calendar_emulator, "--log-format", "json", "-c", str(path), "once")
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stderr)
    assert lines, "a pass that created an event logs at INFO"
    for line in lines:
        assert {"time", "level", "logger", "event"} <= set(line)
        assert ISO_Z.match(line["time"])
    assert "Encountered 403" not in result.stderr
    assert next(r.status for r in calendar_emulator.request_log if r.method == "events.list") == 403
