"""Config as a model: bounds, nesting, paths, the JSON Schema, one line per problem."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import dburl
from reconciler.config import MAX_DEPTH, load_config, parse_config
from reconciler.config.__main__ import render_schema
from reconciler.config.models import ConfigFile, json_schema
from reconciler.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"
SCHEMA = ROOT / "config.schema.json"
ACCOUNT = '\n[[accounts]]\nname = "ops"\ncalendars = ["primary"]\n'
EMULATOR = {"GOOGLE_CALENDAR_EMULATOR_HOST": "127.0.0.1:8085"}


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, path="/etc/r.toml", env=EMULATOR if env is None else env)
    assert info.value.exit_code == 2
    assert all("\n" not in p for p in info.value.problems)
    return info.value.problems


# ----------------------------------------------------------------------- bounds


@pytest.mark.parametrize("value", ["1000000000000", str(10**30), "-" + str(10**30), "1e300"])
@pytest.mark.parametrize(
    "key",
    ["sync.interval", "sync.lease_time", "sync.audit_interval", "sync.backoff_max",
     "sync.concurrency", "sync.page_size", "watch.ttl", "google.timeout", "google.retries",
     "quota.requests_per_minute", "metrics.port"],
)
def test_huge_numbers_are_one_line(key: str, value: str) -> None:
    section, name = key.split(".")
    (problem,) = problems(f"[{section}]\n{name} = {value}\n{ACCOUNT}")
    assert problem.startswith(f"/etc/r.toml: {key}: must be ")
    assert len(problem) < 200, problem  # a 31-digit number is shortened, not echoed


@settings(max_examples=60, deadline=None)
@given(value=st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True)))
def test_any_number_loads_or_is_one_problem(value: int | float) -> None:
    """Property: whatever number a user writes, the result is a config whose value
    is inside the declared bounds, or exactly one one-line problem naming the key."""
    literal = {float("inf"): "inf", float("-inf"): "-inf"}.get(value, repr(value))
    if isinstance(value, float) and value != value:
        literal = "nan"
    for key in ("interval", "lease_time", "jitter"):
        text = f"[sync]\n{key} = {literal}\n{ACCOUNT}"
        try:
            config = parse_config(text, path="/etc/r.toml", env=EMULATOR)
        except ConfigError as exc:
            assert len(exc.problems) == 1 and exc.problems[0].startswith(f"/etc/r.toml: sync.{key}:")
            continue
        loaded = getattr(config.sync, key)
        schema = json_schema()["$defs"]["SyncConfig"]["properties"][key]
        assert schema["minimum"] <= loaded <= schema["maximum"]


def test_bounds_reach_the_schema() -> None:
    sync = json_schema()["$defs"]["SyncConfig"]["properties"]
    assert (sync["page_size"]["minimum"], sync["page_size"]["maximum"]) == (1, 2500)
    assert sync["interval"]["maximum"] == 7 * 86400


# ----------------------------------------------------------------------- nesting


@pytest.mark.parametrize(
    "body",
    [
        "[[accounts]]\nname = 'a'\ncalendars = " + "[" * 20 + "]" * 20,
        "[sync]\nx = " + "{a = " * 20 + "1" + "}" * 20,
    ],
)
def test_deep_nesting_is_one_line(body: str) -> None:
    (problem,) = problems(body)
    assert f"nested deeper than {MAX_DEPTH} levels" in problem


def test_nesting_at_the_limit_is_validated_normally() -> None:
    depth = MAX_DEPTH - 2  # accounts array and its table count too
    body = "[[accounts]]\nname = 'a'\ncalendars = " + "[" * depth + "]" * depth
    (problem,) = problems(body)
    assert "accounts[0].calendars[0]: must be a calendar id string or a table" in problem


@pytest.mark.parametrize("opener", ["[", "{a = "])
def test_nesting_that_breaks_tomllib_is_one_line(opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    text = "x = " + opener * 3000 + "1" + closer * 3000 + "\n"
    with pytest.raises(RecursionError):
        tomllib.loads(text)  # the reason for the guard
    (problem,) = problems(text)
    assert problem.startswith("/etc/r.toml: invalid TOML: arrays or tables nested too deeply")


# ----------------------------------------------------------------------- paths


def test_relative_sqlite_path_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "r.toml").write_text(f'[database]\nurl = "sqlite:///data/m.db"\n{ACCOUNT}')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for named in (conf / "r.toml", Path("../etc/r.toml")):
        config = load_config(named, EMULATOR)
        assert config.database.url == f"sqlite:///{conf}/data/m.db"
        assert config.database.sqlite_path == str(conf / "data" / "m.db")
    (conf / "r.toml").write_text(ACCOUNT)  # the default file name too
    assert load_config(conf / "r.toml", EMULATOR).database.sqlite_path == str(conf / "reconciler.db")


def test_env_and_default_sqlite_paths_are_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "r.toml").write_text(ACCOUNT)
    sub = tmp_path / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    env = {**EMULATOR, "RECONCILER_DATABASE_URL": "sqlite:///x.db"}
    assert load_config(tmp_path / "r.toml", env).database.sqlite_path == str(sub / "x.db")
    assert load_config(None, {}, allow_missing=True).database.sqlite_path == str(
        sub / "reconciler.db")


def test_absolute_memory_and_server_urls_are_unchanged(tmp_path: Path) -> None:
    for url in ("sqlite:////abs/m.db", "sqlite:///:memory:", "mysql://u:p@h:3306/n",
                "postgres://u@h/n"):
        config = parse_config(f'[database]\nurl = "{url}"\n{ACCOUNT}', path=tmp_path / "r.toml",
                              env=EMULATOR)
        assert config.database.url == url


def test_missing_database_directory_names_the_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = tmp_path / "r.toml"
    config_path.write_text(f'[database]\nurl = "sqlite:///nodir/m.db"\n{ACCOUNT}')
    monkeypatch.chdir("/")
    result = subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "-c", str(config_path), "once"],
        capture_output=True, text=True, env={**os.environ, **EMULATOR}, timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert str(tmp_path / "nodir") in result.stderr
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------------------- one line per problem


def test_cli_prints_one_line_per_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[sync]\ninterval = 1000000000000\nintervall = 5\n[watch]\nttl = 0\n"
                   f"{ACCOUNT}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILER_", "GOOGLE_"))}
    result = subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "-c", str(bad), "once"],
        capture_output=True, text=True, env={**env, **EMULATOR}, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert [line.split(": ")[3] for line in lines] == [
        "sync.intervall", "sync.interval", "watch.ttl"], lines
    assert all(line.startswith(f"reconciler: error: {bad}: ") for line in lines)
    assert "Traceback" not in result.stderr and "; " not in result.stderr


# ----------------------------------------------------------------------- schema


def test_committed_schema_matches_the_models() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == render_schema(), (
        "config.schema.json is stale: run `python -m reconciler.config --schema "
        "> config.schema.json`")


def test_schema_command_prints_it() -> None:
    result = subprocess.run([sys.executable, "-m", "reconciler.config", "--schema"],
                            capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(result.stdout) == json_schema()


def test_example_points_to_the_schema_and_uses_only_its_keys() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "#:schema ./config.schema.json"
    schema = json_schema()
    data = tomllib.loads(text)
    assert set(data) <= set(schema["properties"])
    for section, table in data.items():
        if section == "accounts":
            props = schema["$defs"]["AccountConfig"]["properties"]
            assert all(set(account) <= set(props) for account in table)
        else:
            ref = schema["properties"][section]["$ref"].rsplit("/", 1)[1]
            assert set(table) <= set(schema["$defs"][ref]["properties"]), section
    assert set(schema["properties"]) == {f for f in ConfigFile.__dataclass_fields__}


# ----------------------------------------------------------------------- dburl


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("mysql://u:hunter2@h:3306/n", "mysql://u:***@h:3306/n"),
        ("postgresql://u:p%40ss@h/n", "postgresql://u:***@h/n"),
        ("mysql://u:a@b@h/n", "mysql://u:***@h/n"),
        ("mysql://u@h/n", "mysql://u@h/n"),
        ("sqlite:////abs/m.db", "sqlite:////abs/m.db"),
        ("not a url", "(a value without '://', not shown: it may hold a password)"),
        ("hunter2", "(a value without '://', not shown: it may hold a password)"),
        ("mysql://app:123/s3cret@host/db", "mysql://app:***@host/db"),
        ("mysql://app:pa?ss@host/db", "mysql://app:***@host/db"),
        ("mysql://app:pa#ss@host/db", "mysql://app:***@host/db"),
        ("mysql://u@h/n?password=hunter2", "mysql://u@h/n?password=***"),
        ("mysql://h/n?charset=utf8mb4&passwd=hunter2&PWD=x",
         "mysql://h/n?charset=utf8mb4&passwd=***&PWD=***"),
        ("postgresql://h/n?sslpassword=hunter2&user=a@b&auth_token=t&api-key=k&secret=s",
         "postgresql://h/n?sslpassword=***&user=a@b&auth_token=***&api-key=***&secret=***"),
        ("postgresql://u:p@h/n#frag", "postgresql://u:***@h/n"),
        ("sqlite:////abs/a@b/m.db?key=x", "sqlite:////abs/a@b/m.db?key=***"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert dburl.redact_url(url) == redacted


@pytest.mark.parametrize(
    ("url", "backend", "driver"),
    [
        ("postgres://u@h/n", "postgresql", "postgresql://u@h/n"),
        ("POSTGRESQL://u@h/n", "postgresql", "postgresql://u@h/n"),
        ("mysql+pymysql://u@h/n", "mysql", "mysql://u@h/n"),
        ("mariadb://u@h/n", "mysql", "mysql://u@h/n"),
        ("sqlite:///m.db", "sqlite", "sqlite:///m.db"),
        ("oracle://u@h/n", None, "oracle://u@h/n"),
    ],
)
def test_one_scheme_table(url: str, backend: str | None, driver: str) -> None:
    assert dburl.backend_of(url) == backend
    assert dburl.driver_url(url) == driver


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("127.0.0.1:8086", ("127.0.0.1", 8086)),
        ("[::1]:80", ("::1", 80)),
        ("localhost:65535", ("localhost", 65535)),
        ("host:0", None),
        ("host:65536", None),
        ("host:99999999999999999999", None),
        ("::1:80", None),
        ("host", None),
        (":80", None),
        ("host:\uff18\uff10", None),  # fullwidth (non-ASCII) digits
    ],
)
def test_parse_host_port(value: str, parsed: tuple[str, int] | None) -> None:
    assert dburl.parse_host_port(value) == parsed


def test_parse_host_port_zero_when_allowed() -> None:
    assert dburl.parse_host_port("127.0.0.1:0", allow_zero=True) == ("127.0.0.1", 0)


def test_absolute_sqlite_url_keeps_query() -> None:
    assert dburl.absolute_sqlite_url("sqlite:///a/../m.db?x=1", "/base") == "sqlite:////base/m.db?x=1"


# ----------------------------------------------------------------------- arrays and files

EVENT_TYPES = "'birthday', 'default', 'focusTime', 'fromGmail', 'outOfOffice' or 'workingLocation'"


@pytest.mark.parametrize(("value", "expected"), [
    ('"default"', f"/etc/r.toml: sync.event_types: must be an array of {EVENT_TYPES}, got 'default'"),
    ('["default", "x"]', f"/etc/r.toml: sync.event_types[1]: must be {EVENT_TYPES}, got 'x'"),
    ("[]", "/etc/r.toml: sync.event_types: must not be empty (leave the key out instead)"),
])
def test_event_types_problems_say_what_the_array_holds(value: str, expected: str) -> None:
    assert problems(f"[sync]\nevent_types = {value}\n{ACCOUNT}") == [expected]


def test_thousands_of_bad_calendars_are_fifty_lines_and_a_count() -> None:
    text = "[[accounts]]\nname = \"ops\"\ncalendars = [" + ", ".join(map(str, range(5000))) + "]\n"
    lines = problems(text)
    assert len(lines) == 51
    assert lines[0].startswith("/etc/r.toml: accounts[0].calendars[0]: must be a calendar id")
    assert lines[-1] == "... and 4950 more problems like these"


@pytest.mark.parametrize(("credentials", "reason"), [
    ("/tmp/" + "a" * 5000 + ".json", "File name too long"),
    ("~nosuchuser-reconciler/key.json", "home directory"),
])
def test_a_credentials_path_the_system_refuses_is_one_problem(credentials: str,
                                                              reason: str) -> None:
    text = f'[[accounts]]\nname = "ops"\ncalendars = ["primary"]\ncredentials = "{credentials}"\n'
    [line] = problems(text, env={})
    assert line.startswith("/etc/r.toml: accounts[0].credentials: cannot use '")
    assert reason in line and len(line) < 200
