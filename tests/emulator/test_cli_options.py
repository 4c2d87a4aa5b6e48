"""``reconciler emulator`` driven as a process: a registered OAuth client and its
client-secrets file (``auth login`` rehearsed from the shell), generated calendars and
events, seed-file mistakes as one line (exit 2), and the control API's list of operations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.auth_support import consent
from tests.helpers import REPO


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("GOOGLE_CALENDAR_EMULATOR_HOST", None)
    return env


def _cli(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=cwd,
                          env=env or _env(), capture_output=True, text=True, timeout=timeout)


@contextmanager
def emulator_process(*args: str) -> Iterator[tuple[str, list[str]]]:
    """``reconciler emulator --port 0 ARGS``: yields its host:port and its first stdout lines."""
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "emulator", "--port", "0",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), cwd=REPO)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "GOOGLE_CALENDAR_EMULATOR_HOST=" in first, (first, proc.stderr and proc.stderr.read())
        host = first.rsplit("GOOGLE_CALENDAR_EMULATOR_HOST=", 1)[1].strip()
        lines = [first]
        extra = sum(1 for a in args if a in ("--calendars", "--client-secrets"))
        lines += [proc.stdout.readline() for _ in range(extra)]
        yield host, lines
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


def _control(host: str, op: str, body: dict[str, object] | None = None) -> tuple[int, object]:
    request = urllib.request.Request(f"http://{host}/_emulator/{op}",
                                     data=json.dumps(body or {}).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_client_secrets_let_auth_login_run_from_the_shell(tmp_path: Path) -> None:
    secrets = tmp_path / "client.json"
    with emulator_process("--seed", "demo", "--client-secrets", str(secrets)) as (host, lines):
        assert f"client secrets in {secrets}" in lines[1]
        installed = json.loads(secrets.read_text())["installed"]
        assert installed["auth_uri"] == f"http://{host}/o/oauth2/auth"
        assert installed["token_uri"] == f"http://{host}/token"
        assert (secrets.stat().st_mode & 0o777) == 0o600
        token = tmp_path / "token.json"
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler.cli", "auth", "login", "--client-secrets",
             str(secrets), "--output", str(token), "--no-browser"], cwd=tmp_path, env=_env(),
            text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        url = next(line.strip() for line in proc.stdout if line.startswith("http"))
        _out, err = proc.communicate(consent(url) + "\n", timeout=60)  # not 401 invalid_client
        assert proc.returncode == 0, err
        assert json.loads(token.read_text())["refresh_token"]
        config = tmp_path / "reconciler.toml"
        config.write_text(f'[database]\nurl = "sqlite:///m.db"\n[google]\n'
                          f'api_endpoint = "http://{host}/calendar/v3/"\n'
                          '[[accounts]]\nname = "me"\ncredentials = "token.json"\n'
                          'calendars = ["primary"]\n')
        synced = _cli("-c", str(config), "once", cwd=tmp_path)
        assert synced.returncode == 0, synced.stderr
        assert _cli("-c", str(config), "export", cwd=tmp_path).stdout.count("\n") >= 3


def test_generated_calendars_and_events_are_synced_and_repeatable(tmp_path: Path) -> None:
    summaries = []
    for _ in range(2):
        with emulator_process("--calendars", "3", "--events", "40", "--generate-seed",
                              "7") as (host, lines):
            assert "generated 3 calendar(s) of 40 event(s) each (seed 7)" in lines[1]
            status, events = _control(host, "events",
                                      {"calendar_id": "generated-0002@group.calendar.google.com"})
            assert status == 200 and isinstance(events, list)
            summaries.append(sorted((e["id"], e["summary"]) for e in events))
            if len(summaries) == 1:
                config = tmp_path / "reconciler.toml"
                config.write_text('[database]\nurl = "sqlite:///m.db"\n'
                                  '[[accounts]]\nname = "me"\ndiscover = true\n')
                env = dict(_env(), GOOGLE_CALENDAR_EMULATOR_HOST=host)
                synced = _cli("-c", str(config), "once", cwd=tmp_path, env=env)
                assert synced.returncode == 0, synced.stderr
                exported = _cli("-c", str(config), "export", cwd=tmp_path,
                                    env=env).stdout.splitlines()
                assert len(exported) == 120
                assert {json.loads(x)["calendar"] for x in exported} == {
                    f"generated-000{k}@group.calendar.google.com" for k in (1, 2, 3)}
    assert len(summaries[0]) == 40 and summaries[0] == summaries[1]  # the same seed, the same events


@pytest.mark.parametrize("content, expected", [
    (None, "not found"),
    ('{"calendars": [{"id": "team@x", "events": [{"summary": "Retro"}]}]}',
     "calendar 'team@x': event #1 ('Retro') in \"events\" has no string \"id\""),
    ('{"calendars": [{"id": "team@x",\n "events": [}', "line 2 column"),
    ('{"calendars": [{"id": "team@x", "insert": [{"id": "e1", "summary": "No start"}]}]}',
     "calendar 'team@x': event 'e1' in \"insert\": 400"),
])
def test_seed_file_mistakes_are_one_line_naming_the_file(tmp_path: Path, content: str | None,
                                                         expected: str) -> None:
    seed = tmp_path / "seed.json"
    if content is not None:
        seed.write_text(content)
    result = _cli("emulator", "--port", "0", "--seed", str(seed), timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"reconciler: error: seed file {seed}: "), lines
    assert expected in lines[0] and "internal error" not in lines[0]


def test_python_m_emulator_reports_seed_mistakes_the_same_way(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "reconciler.emulator", "--port", "0",
                             "--seed", str(tmp_path / "missing.json")], capture_output=True,
                            text=True, timeout=60, env=_env(), cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"reconciler: error: seed file {tmp_path / 'missing.json'}: not found"]


def test_events_without_calendars_is_a_usage_error() -> None:
    result = _cli("emulator", "--port", "0", "--events", "5", timeout=60)
    assert result.returncode == 2 and "--calendars" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_control_404_lists_every_operation_it_answers() -> None:
    with emulator_process() as (host, _):
        status, body = _control(host, "no_such_thing")
        assert status == 404 and isinstance(body, dict)
        assert {"clock", "requests", "dump", "inject_fault"} <= set(body["operations"])
        assert _control(host, "clock")[0] == 200  # what the list names really answers


def test_generated_calendars_restored_from_state_are_kept(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    args = ("--calendars", "2", "--events", "5", "--state", str(state))
    with emulator_process(*args) as (host, lines):
        assert "generated 2 calendar(s) of 5 event(s) each (seed 0)" in lines[1]
        first = _control(host, "events", {"calendar_id": "generated-0001@group.calendar.google.com"})
    with emulator_process(*args) as (host, lines):  # a restart: the state, not a duplicate
        assert "generated 0 calendar(s) of 5 event(s) each (seed 0); 2 already in the state" in lines[1]
        again = _control(host, "events", {"calendar_id": "generated-0001@group.calendar.google.com"})
    assert first == again and len(again[1]) == 5  # type: ignore[arg-type]
