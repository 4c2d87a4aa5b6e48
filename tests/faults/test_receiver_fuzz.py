"""Receiver fuzzing: malformed numbers, huge headers, slow sockets, forged floods.

Each test talks real HTTP to the waitress server of a started WatchRuntime
and checks that hostile input costs a cheap answer only: the right 4xx, no
500, no traceback, nothing stored, and good requests still served.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time

import pytest

from reconciler.store.models import Channel
from reconciler.watch.receiver import parse_message_number
from reconciler.watch.server import REQUEST_DEADLINE
from tests.watch.conftest import Watched, team, watched  # noqa: F401  (fixtures)
from tests.watch.watch_helpers import HOOK_PATH, notification, post

pytestmark = pytest.mark.slow

MALFORMED = ["²", "١٢", str(2**64), str(2**63), "1" + "0" * 30, "-5", "+5", "0x10", "1e3",
             "abc", " ", "12 34", "9" * 400]


def raw_request(port: int, head: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes (headers may be non-ASCII); the status line of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0]


def notification_bytes(channel: dict[str, str], number: bytes, port: int) -> bytes:
    lines = [f"POST {HOOK_PATH} HTTP/1.1".encode(), f"Host: 127.0.0.1:{port}".encode(),
             f"X-Goog-Channel-ID: {channel['id']}".encode(),
             f"X-Goog-Channel-Token: {channel['token']}".encode(),
             f"X-Goog-Resource-ID: {channel['resourceId']}".encode(),
             b"X-Goog-Resource-State: exists", b"X-Goog-Message-Number: " + number,
             b"Content-Length: 0", b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert "Traceback" not in caplog.text


def test_parse_message_number_accepts_only_ascii_digits_below_2_63() -> None:
    assert parse_message_number("1") == 1
    assert parse_message_number(str(2**63 - 1)) == 2**63 - 1
    for text in [*MALFORMED, "", "²3"]:
        assert parse_message_number(text) is None, text


def test_malformed_message_numbers_answer_400_and_change_nothing(
        watched: Watched, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    caplog.set_level(logging.DEBUG)
    [channel] = watched.emu.channels()
    before = Channel.get().last_message_number
    for text in MALFORMED:
        status = raw_request(watched.port, notification_bytes(channel, text.encode("utf-8"),
                                                              watched.port))
        assert status.split(b" ")[1] == b"400", (text, status)
    # Latin-1 bytes in a header (what http.client sends for "²"), and an empty number
    assert raw_request(watched.port, notification_bytes(channel, b"\xb2", watched.port)
                       ).split(b" ")[1] == b"400"
    assert post(watched.port, {**notification(channel, 2), "X-Goog-Message-Number": ""}) == 400
    # Channel ids that are not ours: control characters, non-ASCII, too long
    for bad_id in ["rc-\x01abc", "rc-é", "x" * 65]:
        headers = {**notification(channel, 5), "X-Goog-Channel-ID": bad_id}
        assert post(watched.port, headers) == 400
    assert Channel.get().last_message_number == before
    assert post(watched.port, notification(channel, 2)) == 200  # good requests still work
    no_tracebacks(caplog)


def test_huge_headers_are_refused_and_good_requests_go_on(
        watched: Watched, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    [channel] = watched.emu.channels()
    head = notification_bytes(channel, b"2", watched.port)
    huge = head.replace(b"Connection: close", b"X-Filler: " + b"a" * 200_000 + b"\r\nConnection: close")
    try:
        status = raw_request(watched.port, huge)
        assert status.split(b" ")[1] in (b"400", b"431"), status
    except ConnectionResetError:
        pass  # waitress may drop the connection before reading it all: also fine
    many = head.replace(b"Connection: close",
                        b"\r\n".join(b"X-H%d: v" % i for i in range(2000)) + b"\r\nConnection: close")
    with contextlib.suppress(ConnectionResetError):
        assert raw_request(watched.port, many).split(b" ")[1] in (b"400", b"431")
    assert post(watched.port, notification(channel, 2)) == 200
    no_tracebacks(caplog)


def test_good_requests_are_served_while_200_slow_sockets_are_open(
        watched: Watched, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    [channel] = watched.emu.channels()
    slow: list[socket.socket] = []
    try:
        for i in range(200):
            sock = socket.create_connection(("127.0.0.1", watched.port), timeout=5)
            sock.sendall(f"POST {HOOK_PATH} HTTP/1.1\r\nHost: x\r\nX-Slow-{i}: ".encode())
            slow.append(sock)
        # Every good request is answered (the client's own 5 s timeout is the bound).
        for number in range(2, 7):
            assert post(watched.port, notification(channel, number)) == 200
        # A client trickling one byte at a time is cut off after the request deadline.
        trickler = slow[0]
        deadline = time.monotonic() + REQUEST_DEADLINE + 20
        closed = False
        while time.monotonic() < deadline and not closed:
            try:
                trickler.sendall(b"a")
                trickler.settimeout(1.0)
                closed = trickler.recv(1) == b""
            except TimeoutError:
                continue
            except OSError:
                closed = True
        assert closed, "a trickling client was never cut off"
    finally:
        for sock in slow:
            sock.close()
    assert post(watched.port, notification(channel, 10)) == 200
    no_tracebacks(caplog)


def test_a_flood_of_forged_notifications_writes_a_few_log_lines(
        watched: Watched, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    caplog.set_level(logging.INFO, logger="reconciler.watch")
    [channel] = watched.emu.channels()
    requests_before = len(watched.emu.request_log)
    for number in range(2, 402):
        assert post(watched.port, notification(channel, number, token="forged")) == 403
        headers = {**notification(channel, number), "X-Goog-Channel-ID": f"rc-unknown{number}"}
        assert post(watched.port, headers) == 403  # the same answer as a forged token
    lines = [r for r in caplog.records if r.name == "reconciler.watch"
             and "403" in r.getMessage()]
    assert 1 <= len(lines) <= 4, [r.getMessage() for r in lines]
    assert len(watched.emu.request_log) == requests_before  # no API call for forgeries
    no_tracebacks(caplog)


def test_rate_limited_log_counts_what_it_does_not_write(caplog: pytest.LogCaptureFixture) -> None:
    from reconciler.watch.throttle import RateLimitedLog

    now = [0.0]
    limited = RateLimitedLog(logging.getLogger("test.ratelimit"), 60, monotonic=lambda: now[0])
    caplog.set_level(logging.INFO, logger="test.ratelimit")
    assert limited.log("k", logging.WARNING, "bad %s", "one")
    for _ in range(99):
        assert not limited.log("k", logging.WARNING, "bad %s", "more")
    assert limited.log("other", logging.WARNING, "another kind")  # kinds are apart
    now[0] = 61.0
    assert limited.log("k", logging.WARNING, "bad %s", "again")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["bad one", "another kind",
                     "bad again (99 more like this in the last 60s not logged)"]
