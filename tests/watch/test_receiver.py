"""The receiver over real HTTP (waitress): what it accepts, what it rejects, what it changes.

Every rejection is checked for its status and for leaving the database (message
number, sync request) and the Calendar API (request log) untouched.
"""

from __future__ import annotations

import io
import socket
from typing import Any

from playhouse.test_utils import count_queries

from reconciler.store.models import Calendar, Channel
from reconciler.watch.receiver import MAX_MESSAGE_JUMP, MAX_MESSAGE_NUMBER
from reconciler.watch.tokens import channel_token, new_channel_id, token_matches
from tests.helpers import wait_for
from tests.watch.conftest import Watched
from tests.watch.watch_helpers import HOOK_PATH, SECRET, TEAM, notification, post


def snapshot(w: Watched) -> tuple[object, ...]:
    channel = Channel.get(Channel.calendar == w.calendar.id)
    requested = Calendar.get_by_id(w.calendar.id).sync_requested_at
    return channel.last_message_number, requested, len(w.emu.request_log)


def test_token_is_an_hmac_of_the_channel_id_only() -> None:
    channel_id = new_channel_id()
    assert len(channel_id) <= 64 and channel_id != new_channel_id()
    token = channel_token(SECRET, channel_id)
    assert len(token) == 64 and int(token, 16) >= 0  # hex HMAC-SHA256
    assert token_matches(SECRET, channel_id, token)
    assert not token_matches(SECRET, channel_id, token[:-1] + ("0" if token[-1] != "0" else "1"))
    assert not token_matches(SECRET + "x", channel_id, token)
    assert not token_matches(SECRET, new_channel_id(), token)
    assert not token_matches(SECRET, channel_id, None)


def test_sync_message_is_accepted_and_triggers_nothing(watched: Watched) -> None:
    [sync] = [d for d in watched.emu.deliveries() if d["state"] == "sync"]
    assert sync["status"] == 200 and sync["message_number"] == 1
    assert Channel.get().last_message_number == 1
    assert Calendar.get_by_id(watched.calendar.id).sync_requested_at is None


def test_valid_exists_message_requests_a_sync(watched: Watched) -> None:
    [channel] = watched.emu.channels()
    assert channel["token"] != "" and "team" not in channel["token"]
    assert post(watched.port, notification(channel, 2)) == 200
    assert Calendar.get_by_id(watched.calendar.id).sync_requested_at is not None
    assert Channel.get().last_message_number == 2
    # also on "/" (the receiver mounted under a prefix sees its root)
    Calendar.update(sync_requested_at=None).execute()
    watched.runtime.app.throttle.window = 0  # type: ignore[union-attr]
    assert post(watched.port, notification(channel, 3), path="/") == 200
    assert Calendar.get_by_id(watched.calendar.id).sync_requested_at is not None


def test_forged_tokens_are_rejected_with_403_and_change_nothing(watched: Watched) -> None:
    [channel] = watched.emu.channels()
    before = snapshot(watched)
    forged = [channel_token("another-secret-0123456789", channel["id"]),  # wrong secret
              channel_token(SECRET, new_channel_id()),  # a token of another channel
              channel["token"].upper(), "", "x" * 300]
    for token in forged:
        headers = notification(channel, 50, token=token)
        if not token:
            del headers["X-Goog-Channel-Token"]
        assert post(watched.port, headers) == 403, token
    wrong_resource = dict(notification(channel, 51), **{"X-Goog-Resource-ID": "someone-else"})
    assert post(watched.port, wrong_resource) == 403
    assert snapshot(watched) == before


def test_unknown_channels_answer_404_only_to_a_valid_token(watched: Watched) -> None:
    """A forger (no secret) gets 403 whatever channel it names; only a valid token of a
    channel we do not have (a stopped one of ours) learns 404, as the contract says."""
    [channel] = watched.emu.channels()
    before = snapshot(watched)
    stranger = new_channel_id()
    for token in (channel["token"], "whatever"):
        headers = dict(notification(channel, 7, token=token), **{"X-Goog-Channel-ID": stranger})
        assert post(watched.port, headers) == 403
    headers = dict(notification(channel, 7, token=channel_token(SECRET, stranger)),
                   **{"X-Goog-Channel-ID": stranger})
    assert post(watched.port, headers) == 404
    assert snapshot(watched) == before


def wsgi(app: Any, headers: dict[str, str]) -> tuple[str, bytes]:
    """Call the receiver's WSGI app in this thread: (status, body)."""
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": HOOK_PATH, "CONTENT_LENGTH": "0",
               "wsgi.input": io.BytesIO(b"")}
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()
                    if k != "Content-Length"})
    answer: list[str] = []
    body = b"".join(app(environ, lambda status, _headers: answer.append(status)))
    return answer[0], body


def test_forged_requests_cost_no_database_statement_and_get_one_answer(
        watched: Watched) -> None:
    [channel] = watched.emu.channels()
    app = watched.runtime.app
    stranger = new_channel_id()
    forged = [notification(channel, 60, token="forged"),
              notification(channel, 61, token=channel_token("another-secret-0123456789",
                                                            channel["id"])),
              dict(notification(channel, 62), **{"X-Goog-Channel-ID": stranger})]
    with count_queries() as counter:
        answers = {wsgi(app, headers) for headers in forged}
    assert counter.count == 0
    unknown = dict(notification(channel, 63, token=channel_token(SECRET, stranger)),
                   **{"X-Goog-Channel-ID": stranger})  # a valid token of a channel we do not have
    with count_queries() as counter:
        answers.add(wsgi(app, unknown))
    assert counter.count == 1  # the one lookup that finds no channel
    # Forgers get one answer, live channel or not; a valid token of a channel we do not
    # have (only the secret's holder can make one) is the contract's 404.
    assert answers == {("403 Forbidden", b"bad token\n"), ("404 Not Found", b"unknown channel\n")}
    assert wsgi(app, unknown) == ("404 Not Found", b"unknown channel\n")
    assert {wsgi(app, headers) for headers in forged} == {("403 Forbidden", b"bad token\n")}


def test_a_message_number_may_not_jump_past_the_bound(watched: Watched) -> None:
    [channel] = watched.emu.channels()
    watched.runtime.app.throttle.window = 0  # type: ignore[union-attr]
    assert post(watched.port, notification(channel, 5)) == 200
    Calendar.update(sync_requested_at=None).execute()
    before = snapshot(watched)
    for number in (MAX_MESSAGE_NUMBER, 5 + MAX_MESSAGE_JUMP + 1):  # poisoning attempts
        assert post(watched.port, notification(channel, number)) == 200
    assert snapshot(watched) == before and Channel.get().last_message_number == 5
    assert post(watched.port, notification(channel, 6)) == 200  # real ones still count
    assert Channel.get().last_message_number == 6
    assert post(watched.port, notification(channel, 6 + MAX_MESSAGE_JUMP)) == 200  # at the bound
    assert Channel.get().last_message_number == 6 + MAX_MESSAGE_JUMP


def test_duplicate_and_out_of_order_messages_are_200_and_ignored(watched: Watched) -> None:
    [channel] = watched.emu.channels()
    assert post(watched.port, notification(channel, 10)) == 200
    Calendar.update(sync_requested_at=None).execute()
    watched.runtime.app.throttle.window = 0  # type: ignore[union-attr]
    before = snapshot(watched)
    for number in (10, 9, 2, 1):  # a replay of the last one, older ones
        assert post(watched.port, notification(channel, number)) == 200
    assert snapshot(watched) == before
    assert Channel.get().last_message_number == 10
    assert post(watched.port, notification(channel, 12)) == 200  # a gap (lost message) is fine
    assert Calendar.get_by_id(watched.calendar.id).sync_requested_at is not None


def test_oversized_and_malformed_requests_are_rejected(watched: Watched) -> None:
    [channel] = watched.emu.channels()
    before = snapshot(watched)
    big = dict(notification(channel, 20), **{"Content-Length": str(64 * 1024)})
    assert post(watched.port, big, body=b"x" * 64 * 1024) == 413
    small_but_too_much = dict(notification(channel, 21), **{"Content-Length": "5000"})
    assert post(watched.port, small_but_too_much, body=b"y" * 5000) == 413
    huge_header = dict(notification(channel, 22), **{"X-Padding": "z" * 20_000})
    assert post(watched.port, huge_header) == 431
    assert post(watched.port, dict(notification(channel, 23),
                                   **{"X-Goog-Message-Number": "abc"})) == 400
    assert post(watched.port, {"Content-Length": "0"}) == 400
    assert post(watched.port, notification(channel, 24), method="GET") == 405
    assert post(watched.port, notification(channel, 25), method="PUT") == 405
    assert post(watched.port, notification(channel, 26), path="/elsewhere") == 404
    assert snapshot(watched) == before
    assert post(watched.port, {}, path="/healthz", method="GET") == 200


def test_a_body_sent_without_content_length_is_bounded(watched: Watched) -> None:
    [channel] = watched.emu.channels()
    before = snapshot(watched)
    lines = [f"POST {HOOK_PATH} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked"]
    lines += [f"{k}: {v}" for k, v in notification(channel, 30).items() if k != "Content-Length"]
    chunk = b"q" * 8000
    payload = ("\r\n".join(lines) + "\r\n\r\n").encode() + b"%x\r\n" % len(chunk) + chunk + \
        b"\r\n0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", watched.port), timeout=5) as sock:
        sock.sendall(payload)
        answer = sock.recv(200)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert snapshot(watched) == before


def test_a_burst_of_hints_is_coalesced_per_calendar(watched: Watched) -> None:
    [channel] = watched.emu.channels()
    throttle = watched.runtime.app.throttle  # type: ignore[union-attr]
    throttle.window = 0.5
    requests: list[object] = []
    for number in range(100, 300):
        assert post(watched.port, notification(channel, number)) == 200
        requests.append(Calendar.get_by_id(watched.calendar.id).sync_requested_at)
    assert throttle.coalesced >= 150
    first = throttle.fired
    wait_for(lambda: throttle.fired > first, timeout=3)  # the trailing request arrives
    assert throttle.fired <= first + 1


def test_renewal_rotates_the_token_and_the_old_one_stops_working(watched: Watched) -> None:
    [old] = watched.emu.channels()
    watched.clock.advance(watched.emu, 604800 - 3000)  # inside renew_margin (1 h)
    assert watched.runtime.tick().renewed == [TEAM]
    [new] = watched.emu.channels()
    assert new["token"] != old["token"]  # a new random channel id, so a new HMAC
    assert post(watched.port, notification(old, 40)) == 404  # a captured token dies with its channel
    assert post(watched.port, notification(dict(new, id=old["id"]), 41)) == 403
    assert post(watched.port, notification(new, 2)) == 200
