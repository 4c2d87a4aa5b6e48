"""The run heartbeat: one line per minute with polls, changes and failing calendars."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.daemon.heartbeat import Heartbeat
from reconciler.logsetup import configure_logging


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_no_beat_before_a_minute_then_one_beat_with_the_window() -> None:
    clock = FakeClock()
    beat = Heartbeat(clock)
    for i in range(62):
        beat.poll_succeeded(f"c{i}", changes=1 if i < 3 else 0)
    clock.now += 59.9
    assert beat.due() is None
    clock.now += 0.1
    first = beat.due()
    assert first is not None
    assert first.message == "62 calendars polled, 3 changes, 0 failing"
    assert first.fields == {"calendars": 62, "polls": 62, "changes": 3, "failing": 0,
                            "failing_kinds": {}, "seconds": 60.0}
    assert beat.due() is None  # at most one per period
    clock.now += 60
    quiet = beat.due()
    assert quiet is not None and quiet.message == "0 calendars polled, 0 changes, 0 failing"


def test_failing_is_the_current_state_not_the_window() -> None:
    clock = FakeClock()
    beat = Heartbeat(clock, period=60)
    beat.poll_failed("a", "AccessDenied")
    beat.poll_failed("b", "RateLimited")
    beat.poll_failed("a", "AccessDenied")
    beat.poll_succeeded("c", changes=1)
    clock.now += 60
    first = beat.due()
    assert first is not None
    assert first.message == "3 calendars polled, 1 change, 2 failing"
    assert first.polls == 4 and first.failing_kinds == {"AccessDenied": 1, "RateLimited": 1}
    clock.now += 60
    second = beat.due()
    assert second is not None and second.failing == 2 and second.polls == 0  # still failing
    beat.poll_succeeded("a", changes=0)
    beat.forget("b")
    clock.now += 60
    third = beat.due()
    assert third is not None and third.message == "1 calendar polled, 0 changes, 0 failing"


def test_reports_from_many_threads_are_all_counted() -> None:
    clock = FakeClock()
    beat = Heartbeat(clock)

    def worker(n: int) -> None:
        for i in range(500):
            beat.poll_succeeded(f"w{n}-{i % 10}", changes=1)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    clock.now += 60
    result = beat.due()
    assert result is not None and result.polls == 4000 and result.changes == 4000
    assert result.calendars == 80


@given(st.lists(st.tuples(st.sampled_from("abcde"), st.integers(0, 5), st.booleans()), max_size=60))
def test_counts_add_up(polls: list[tuple[str, int, bool]]) -> None:
    clock = FakeClock()
    beat = Heartbeat(clock)
    for calendar, changes, failed in polls:
        if failed:
            beat.poll_failed(calendar, "TransientGoogleError")
        else:
            beat.poll_succeeded(calendar, changes)
    clock.now += 60
    result = beat.due()
    assert result is not None
    assert result.polls == len(polls)
    assert result.calendars == len({c for c, _, _ in polls})
    assert result.changes == sum(ch for _, ch, failed in polls if not failed)
    last: dict[str, bool] = {}
    for calendar, _, failed in polls:
        last[calendar] = failed
    assert result.failing == sum(last.values())


def test_period_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Heartbeat(FakeClock(), period=0)


@pytest.fixture
def json_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("reconciler").level
    configure_logging("INFO", "json")
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    logging.getLogger("reconciler").setLevel(saved[2])


def test_a_beat_logs_as_one_json_line_with_fields(json_logging: None,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock()
    beat = Heartbeat(clock)
    beat.poll_succeeded("a", 2)
    clock.now += 61
    result = beat.due()
    assert result is not None
    logging.getLogger("reconciler.daemon").info(result.message, extra=result.fields)
    (line,) = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert line["event"] == "1 calendar polled, 2 changes, 0 failing"
    assert (line["calendars"], line["changes"], line["failing"]) == (1, 2, 0)
