"""Tests for reconciler.config: path precedence, overrides and every validation rule."""

from __future__ import annotations

import dataclasses
import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from reconciler.config import (
    AccountConfig,
    CalendarConfig,
    Config,
    DatabaseConfig,
    GoogleConfig,
    MetricsConfig,
    QuotaConfig,
    StoreConfig,
    SyncConfig,
    WatchConfig,
    load_config,
    parse_config,
    resolve_config_path,
)
from reconciler.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"
EMULATOR = {"GOOGLE_CALENDAR_EMULATOR_HOST": "127.0.0.1:8085"}
SECRET = "s3cr3t-TOKEN-value-42"

ACCOUNT = """
[[accounts]]
name = "ops"
credentials = "sa.json"
calendars = ["primary"]
"""


def write(tmp_path: Path, body: str, *, name: str = "reconciler.toml", creds: bool = True) -> Path:
    """Write a config (dedented) and, by default, the sa.json it names."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    if creds:
        (tmp_path / "sa.json").write_text("{}", encoding="utf-8")
    return path


def problems_of(tmp_path: Path, body: str, env: dict[str, str] | None = None) -> list[str]:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(path, env or {})
    return info.value.problems


def one_problem(tmp_path: Path, body: str, env: dict[str, str] | None = None) -> str:
    problems = problems_of(tmp_path, body, env)
    assert len(problems) == 1, problems
    return problems[0]


# ----------------------------------------------------------------------- path resolution


def test_resolve_explicit_beats_env_and_default() -> None:
    env = {"RECONCILER_CONFIG": "/env/r.toml"}
    assert resolve_config_path("/cli/r.toml", env) == Path("/cli/r.toml")


def test_resolve_env_beats_default() -> None:
    assert resolve_config_path(None, {"RECONCILER_CONFIG": "/env/r.toml"}) == Path("/env/r.toml")


def test_resolve_default_and_empty_values_count_as_unset() -> None:
    assert resolve_config_path(None, {}) == Path("reconciler.toml")
    assert resolve_config_path("", {"RECONCILER_CONFIG": ""}) == Path("reconciler.toml")


def test_load_uses_explicit_then_env_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sa.json").write_text("{}")
    for name, interval in (("cli.toml", 1), ("env.toml", 2), ("reconciler.toml", 3)):
        write(tmp_path, f"[sync]\ninterval = {interval}\n{ACCOUNT}", name=name)
    env = {"RECONCILER_CONFIG": str(tmp_path / "env.toml")}
    assert load_config(tmp_path / "cli.toml", env).sync.interval == 1
    assert load_config(None, env).sync.interval == 2
    assert load_config(None, {}).sync.interval == 3
    assert load_config(None, {}).path == Path("reconciler.toml")


@pytest.mark.parametrize(
    ("explicit", "env", "expected"),
    [
        ("nope.toml", {}, "config file nope.toml not found (given by -c/--config)"),
        (None, {"RECONCILER_CONFIG": "env.toml"}, "config file env.toml not found "
         "(from $RECONCILER_CONFIG)"),
        (None, {}, "config file ./reconciler.toml not found "
         "(set -c/--config or $RECONCILER_CONFIG)"),
    ],
)
def test_missing_file_names_path_and_how_it_was_chosen(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    explicit: str | None,
    env: dict[str, str],
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(explicit, env)
    assert str(info.value) == expected
    assert info.value.problems == [expected]
    assert info.value.exit_code == 2


def test_allow_missing_default_gives_defaults_with_env_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None, {}, allow_missing=True)
    # the default relative SQLite path means the working directory, made absolute
    assert config == Config(database=DatabaseConfig(f"sqlite:///{tmp_path}/reconciler.db"))
    assert config.path is None and config.accounts == ()
    env = {**EMULATOR, "RECONCILER_DATABASE_URL": "sqlite:///other.db"}
    config = load_config(None, env, allow_missing=True)
    assert config.database.url == f"sqlite:///{tmp_path}/other.db"
    assert config.google.emulator


def test_allow_missing_does_not_excuse_a_named_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="given by -c"):
        load_config("missing.toml", {}, allow_missing=True)
    with pytest.raises(ConfigError, match=r"\$RECONCILER_CONFIG"):
        load_config(None, {"RECONCILER_CONFIG": "missing.toml"}, allow_missing=True)


def test_allow_missing_still_validates_an_existing_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "[sync]\ninterval = 0\n")
    with pytest.raises(ConfigError, match=r"sync\.interval"):
        load_config(None, {}, allow_missing=True)


def test_directory_as_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path, {})


def test_non_utf8_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b"[sync]\nmode = \"\xff\"\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path, {})


# ----------------------------------------------------------------------- defaults and shape


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ACCOUNT), {})
    # the default relative SQLite path is relative to the config file's folder
    assert config.database == DatabaseConfig(url=f"sqlite:///{tmp_path}/reconciler.db")
    assert config.google == GoogleConfig(None, 60.0, 120.0, 6) and not config.google.emulator
    assert config.sync == SyncConfig(
        mode="sync_token", interval=300, page_size=2500, concurrency=32, lease_time=60,
        updated_min_overlap=60, updated_min_full_after=21 * 86400, audit_interval=604800,
        jitter=0.1, backoff_max=3600, purge_removed=False,
    )
    assert config.quota == QuotaConfig(6000, 500)
    assert config.watch == WatchConfig()
    assert config.watch.listen == "127.0.0.1:8086" and config.watch.ttl == 604800
    assert config.metrics == MetricsConfig(port=None, host="127.0.0.1")
    assert config.accounts == (
        AccountConfig(
            name="ops", credentials=tmp_path / "sa.json", subject=None,
            calendars=(CalendarConfig("primary"),), discover=False, interval=None,
        ),
    )


def test_dataclasses_are_frozen(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ACCOUNT), {})
    with pytest.raises(AttributeError):
        config.sync.interval = 5  # type: ignore[misc]


def test_all_values_read(tmp_path: Path) -> None:
    body = f"""
    [database]
    url = "postgresql://u:p@db.example.com:5432/cal"
    [google]
    timeout = 5.5
    max_retry_seconds = 0
    retries = 0
    [sync]
    mode = "updated_min"
    interval = 30
    page_size = 1
    concurrency = 1
    lease_time = 5
    updated_min_overlap = 0
    updated_min_full_after = 100
    audit_interval = 0
    jitter = 1
    backoff_max = 10
    purge_removed = true
    [quota]
    requests_per_minute = 1
    per_user_requests_per_minute = 2
    [watch]
    enabled = true
    address = "https://hooks.example.com/x"
    listen = "0.0.0.0:9000"
    secret = "{SECRET}"
    ttl = 7200
    renew_margin = 0
    [metrics]
    port = 9108
    host = "0.0.0.0"
    {ACCOUNT}
    subject = "a@example.com"
    discover = true
    interval = 45
    """
    config = load_config(write(tmp_path, body), {})
    assert config.database.backend == "postgresql"
    assert config.google.timeout == 5.5 and config.google.retries == 0
    assert config.sync == SyncConfig("updated_min", 30, 1, 1, 5, 0, 100, 0, 1.0, 10, True)
    assert config.quota == QuotaConfig(1, 2)
    assert config.watch.enabled and config.watch.secret == SECRET
    assert config.watch.listen == "0.0.0.0:9000" and config.watch.ttl == 7200
    assert config.metrics == MetricsConfig(9108, "0.0.0.0")
    account = config.account("ops")
    assert account.subject == "a@example.com" and account.discover and account.interval == 45


# ----------------------------------------------------------------------- accounts & targets


def test_calendar_entries_strings_and_tables_and_intervals(tmp_path: Path) -> None:
    body = """
    [sync]
    interval = 100
    [[accounts]]
    name = "a"
    credentials = "sa.json"
    calendars = ["primary", {id = "x@group.calendar.google.com", interval = 60}, {id = "y"}]
    [[accounts]]
    name = "b"
    credentials = "sa.json"
    interval = 200
    calendars = ["primary", "x@group.calendar.google.com", "z"]
    [[accounts]]
    name = "c"
    credentials = "sa.json"
    discover = true
    """
    config = load_config(write(tmp_path, body), {})
    assert config.sync.interval == 100
    assert config.account("a").calendars == (
        CalendarConfig("primary"),
        CalendarConfig("x@group.calendar.google.com", 60),
        CalendarConfig("y"),
    )
    assert config.account("b").interval == 200
    assert config.account("b").calendars == (
        CalendarConfig("primary"), CalendarConfig("x@group.calendar.google.com"),
        CalendarConfig("z"),
    )
    assert config.account("c").calendars == () and config.account("c").discover
    with pytest.raises(KeyError):
        config.account("nobody")


def test_credentials_relative_to_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    (sub / "keys").mkdir()
    (sub / "keys" / "sa.json").write_text("{}")
    path = write(sub, ACCOUNT.replace("sa.json", "keys/sa.json"), creds=False)
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("conf") / "reconciler.toml", {})
    assert config.accounts[0].credentials == sub / "keys" / "sa.json"
    assert config.accounts[0].credentials.is_absolute()
    assert path.exists()


def test_missing_credentials_file_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, ACCOUNT, creds=False)
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}: accounts[0].credentials: file ")
    assert str(tmp_path / "sa.json") in problem


def test_credentials_required_without_emulator(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, '[[accounts]]\nname = "a"\ncalendars = ["primary"]\n')
    assert "accounts[0].credentials: is required" in problem


def test_api_endpoint_in_file_allows_anonymous_accounts(tmp_path: Path) -> None:
    body = """
    [google]
    api_endpoint = "http://127.0.0.1:8085/calendar/v3"
    [[accounts]]
    name = "anon"
    calendars = ["primary"]
    [[accounts]]
    name = "keyed"
    credentials = "sa.json"
    calendars = ["primary"]
    """
    config = load_config(write(tmp_path, body), {})
    assert config.google.api_endpoint == "http://127.0.0.1:8085/calendar/v3/"
    assert config.google.emulator
    assert config.account("anon").credentials is None
    assert config.account("keyed").credentials == tmp_path / "sa.json"


def test_api_endpoint_still_checks_named_credentials(tmp_path: Path) -> None:
    body = '[google]\napi_endpoint = "http://localhost:1/calendar/v3/"\n' + ACCOUNT
    path = write(tmp_path, body, creds=False)
    with pytest.raises(ConfigError, match="credentials: file"):
        load_config(path, {})


ANONYMOUS = """
[[accounts]]
name = "ops"
calendars = ["primary"]
"""


def test_emulator_env_sets_endpoint_for_anonymous_accounts(tmp_path: Path) -> None:
    path = write(tmp_path, ANONYMOUS + '\n[[accounts]]\nname = "b"\ndiscover = true\n',
                 creds=False)
    config = load_config(path, {"GOOGLE_CALENDAR_EMULATOR_HOST": "localhost:9999"})
    assert config.google.api_endpoint == "http://localhost:9999/calendar/v3/"
    assert config.google.emulator
    assert config.emulator_endpoint == "http://localhost:9999/calendar/v3/"
    assert all(a.credentials is None for a in config.accounts)


def test_emulator_env_is_refused_with_configured_credentials(tmp_path: Path) -> None:
    path = write(tmp_path, ACCOUNT + ACCOUNT.replace('"ops"', '"two"'))
    with pytest.raises(ConfigError) as info:
        load_config(path, {"GOOGLE_CALENDAR_EMULATOR_HOST": "127.0.0.1:8085"})
    assert info.value.problems == [
        "$GOOGLE_CALENDAR_EMULATOR_HOST: refused: accounts[0] (and 1 more) names a credentials "
        "file; the emulator switch is for tests: unset it, or point [google] api_endpoint at a "
        "private endpoint instead"]


def test_emulator_env_is_refused_with_purge_removed(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, "[sync]\npurge_removed = true\n" + ANONYMOUS,
                          {"GOOGLE_CALENDAR_EMULATOR_HOST": "[::1]:8085"})
    assert problem.startswith("$GOOGLE_CALENDAR_EMULATOR_HOST: refused: sync.purge_removed = true;")


@pytest.mark.parametrize("host", ["198.51.100.9:8085", "example.com:8085", "[2001:db8::1]:80"])
def test_emulator_env_refuses_a_host_that_is_not_loopback(tmp_path: Path, host: str) -> None:
    problem = one_problem(tmp_path, ANONYMOUS, {"GOOGLE_CALENDAR_EMULATOR_HOST": host})
    assert problem.startswith("$GOOGLE_CALENDAR_EMULATOR_HOST: refused: its host ")
    assert "is not loopback (set $RECONCILER_ALLOW_REMOTE_EMULATOR=1" in problem


def test_remote_emulator_needs_the_explicit_opt_in(tmp_path: Path) -> None:
    path = write(tmp_path, ANONYMOUS)
    env = {"GOOGLE_CALENDAR_EMULATOR_HOST": "198.51.100.9:8085"}
    for no in ("", "0", "yes", "true"):
        with pytest.raises(ConfigError):
            load_config(path, {**env, "RECONCILER_ALLOW_REMOTE_EMULATOR": no})
    config = load_config(path, {**env, "RECONCILER_ALLOW_REMOTE_EMULATOR": "1"})
    assert config.google.api_endpoint == "http://198.51.100.9:8085/calendar/v3/"


@pytest.mark.parametrize(("endpoint", "allowed"), [
    ("https://calendar.internal.example/calendar/v3/", True),
    ("http://127.0.0.1:8085/calendar/v3/", True),
    ("http://localhost:8085/calendar/v3/", True),
    ("http://[::1]:8085/calendar/v3/", True),
    ("http://calendar.internal.example/calendar/v3/", False),
    ("http://10.0.0.7:8085/calendar/v3/", False),
])
def test_api_endpoint_is_https_unless_loopback(tmp_path: Path, endpoint: str,
                                               allowed: bool) -> None:
    path = write(tmp_path, f'[google]\napi_endpoint = "{endpoint}"\n' + ACCOUNT)
    if allowed:
        assert load_config(path, {}).google.api_endpoint == endpoint
        return
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.problems == [
        f"{path}: google.api_endpoint: must be an https URL (plain http only to a loopback host, "
        "or with $RECONCILER_ALLOW_REMOTE_EMULATOR=1)"]
    opted_in = load_config(path, {"RECONCILER_ALLOW_REMOTE_EMULATOR": "1"})
    assert opted_in.google.api_endpoint == endpoint


def test_emulator_env_overrides_file_endpoint_and_accepts_ipv6(tmp_path: Path) -> None:
    body = '[google]\napi_endpoint = "https://example.com/x/"\n' + ANONYMOUS
    config = load_config(write(tmp_path, body), {"GOOGLE_CALENDAR_EMULATOR_HOST": "[::1]:8085"})
    assert config.google.api_endpoint == "http://[::1]:8085/calendar/v3/"


@pytest.mark.parametrize("value", ["localhost", "http://localhost:8085", "host:0", "host:abc"])
def test_bad_emulator_env_names_the_variable(tmp_path: Path, value: str) -> None:
    problem = one_problem(tmp_path, ACCOUNT, {"GOOGLE_CALENDAR_EMULATOR_HOST": value})
    assert problem.startswith(
        "$GOOGLE_CALENDAR_EMULATOR_HOST: google.api_endpoint: must be host:port"
    )


def test_empty_emulator_env_is_ignored(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ACCOUNT), {"GOOGLE_CALENDAR_EMULATOR_HOST": ""})
    assert not config.google.emulator and config.google.api_endpoint is None


def test_database_env_override(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "sqlite:///file.db"\n' + ACCOUNT)
    env = {"RECONCILER_DATABASE_URL": "mysql://u:pw@db:3306/cal"}
    config = load_config(path, env)
    assert config.database.url == "mysql://u:pw@db:3306/cal"
    assert config.database.backend == "mysql"


def test_bad_database_env_names_the_variable(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, ACCOUNT, {"RECONCILER_DATABASE_URL": "oracle://x/y"})
    assert problem.startswith("$RECONCILER_DATABASE_URL: database.url: unsupported scheme 'oracle'")


# ----------------------------------------------------------------------- database URLs


@pytest.mark.parametrize(
    ("url", "backend", "sqlite_path"),
    [
        ("sqlite:///reconciler.db", "sqlite", "{tmp}/reconciler.db"),
        ("sqlite:///sub/../x.db", "sqlite", "{tmp}/x.db"),
        ("sqlite:////abs/path.db", "sqlite", "/abs/path.db"),
        ("sqlite:///:memory:", "sqlite", ":memory:"),
        ("mysql://u:p@h:3306/n", "mysql", None),
        ("mysql+pymysql://u:p@h/n", "mysql", None),
        ("mariadb://u:p@h/n", "mysql", None),
        ("MySQL://u:p@h/n", "mysql", None),
        ("postgres://u@h/n", "postgresql", None),
        ("postgresql://u:p@h:5432/n", "postgresql", None),
    ],
)
def test_valid_database_urls(
    tmp_path: Path, url: str, backend: str, sqlite_path: str | None
) -> None:
    config = load_config(write(tmp_path, f'[database]\nurl = "{url}"\n{ACCOUNT}'), {})
    assert config.database.backend == backend
    expected = None if sqlite_path is None else sqlite_path.format(tmp=tmp_path)
    assert config.database.sqlite_path == expected


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("reconciler.db", "must be a URL"),
        ("oracle://u:p@h/n", "unsupported scheme 'oracle'"),
        ("sqlite://reconciler.db", "a sqlite URL has no host"),
        ("sqlite:///", "names no database file"),
        ("mysql:///name", "names no host"),
        ("mysql://u:p@h:99999/n", "invalid port"),
        ("postgresql://u:p@h", "names no database"),
        ("", "must not be empty"),
    ],
)
def test_invalid_database_urls(tmp_path: Path, url: str, fragment: str) -> None:
    problem = one_problem(tmp_path, f'[database]\nurl = "{url}"\n{ACCOUNT}')
    assert problem.startswith(f"{tmp_path / 'reconciler.toml'}: database.url: ")
    assert fragment in problem


def test_database_password_hidden(tmp_path: Path) -> None:
    database = DatabaseConfig("mysql://user:hunter2@h/n")
    assert "hunter2" not in repr(database) and "hunter2" not in repr(Config(database=database))
    assert database.redacted_url == "mysql://user:***@h/n"
    problem = one_problem(tmp_path, f'[database]\nurl = "hunter2:pw@nowhere"\n{ACCOUNT}')
    assert "must be a URL" in problem
    problem = one_problem(tmp_path, f'[database]\nurl = "mysql://u:hunter2@h:0x/n"\n{ACCOUNT}')
    assert "hunter2" not in problem


# ----------------------------------------------------------------------- scalar validation


@pytest.mark.parametrize(
    ("section", "key", "value", "fragment"),
    [
        ("sync", "interval", "'abc'",
         "must be an integer number of seconds from 1 to 604800, got 'abc'"),
        ("sync", "interval", "0", "got 0"),
        ("sync", "interval", "2.5", "got 2.5"),
        ("sync", "interval", "true", "got true"),
        ("sync", "mode", "'tokens'", "must be 'sync_token' or 'updated_min', got 'tokens'"),
        ("sync", "page_size", "0", "from 1 to 2500"),
        ("sync", "page_size", "2501", "from 1 to 2500"),
        ("sync", "concurrency", "0", "an integer from 1 to 256, got 0"),
        ("sync", "lease_time", "4", "from 5 to 3600, got 4"),
        ("sync", "updated_min_overlap", "-1", "from 0 to 86400"),
        ("sync", "updated_min_full_after", "0", "from 1 to 31622400"),
        ("sync", "audit_interval", "-1", "0 disables"),
        ("sync", "jitter", "1.5", "from 0 to 1"),
        ("sync", "jitter", "-0.1", "from 0 to 1"),
        ("sync", "jitter", "nan", "got nan"),
        ("sync", "backoff_max", "0", "from 1 to 604800"),
        ("sync", "purge_removed", "'yes'", "must be true or false, got 'yes'"),
        ("google", "timeout", "0", "a number of seconds above 0 and at most 3600, got 0"),
        ("google", "timeout", "inf", "got inf"),
        ("google", "max_retry_seconds", "-1", "from 0 to 86400"),
        ("google", "retries", "-1", "an integer from 0 to 100"),
        ("google", "api_endpoint", "'ftp://x/'", "must be an http(s) URL"),
        ("google", "api_endpoint", "5", "must be a string, got 5"),
        ("quota", "requests_per_minute", "0", "requests per minute"),
        ("quota", "per_user_requests_per_minute", "'many'", "requests per minute"),
        ("watch", "enabled", "1", "must be true or false"),
        ("watch", "allow_insecure", "'no'", "must be true or false"),
        ("watch", "listen", "'8086'", "must be host:port"),
        ("watch", "listen", "'127.0.0.1:70000'", "must be host:port"),
        ("watch", "ttl", "0", "from 1 to 2592000"),
        ("watch", "renew_margin", "604800", "must be less than watch.ttl (604800)"),
        ("metrics", "port", "0", "from 1 to 65535"),
        ("metrics", "port", "65536", "from 1 to 65535"),
        ("metrics", "host", "''", "must not be empty"),
        ("database", "url", "[1]", "must be a string, got an array"),
    ],
)
def test_invalid_values(tmp_path: Path, section: str, key: str, value: str, fragment: str) -> None:
    problem = one_problem(tmp_path, f"[{section}]\n{key} = {value}\n{ACCOUNT}")
    assert problem.startswith(f"{tmp_path / 'reconciler.toml'}: {section}.{key}: "), problem
    assert fragment in problem, problem


def test_example_message_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, f"[sync]\ninterval = 'abc'\n{ACCOUNT}")
    with pytest.raises(ConfigError) as info:
        load_config(None, {})
    assert str(info.value) == (
        "reconciler.toml: sync.interval: must be an integer number of seconds from 1 to 604800, "
        "got 'abc'"
    )


def test_section_must_be_a_table(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, f"sync = 5\n{ACCOUNT}")
    assert "sync: must be a table ([sync]), got 5" in problem


# ----------------------------------------------------------------------- watch rules


def watch_body(**keys: Any) -> str:
    lines = ["[watch]", "enabled = true"]
    lines += [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {str(v).lower()}"
              for k, v in keys.items()]
    return "\n".join(lines) + "\n" + ACCOUNT


def test_watch_enabled_requires_address_and_secret(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, watch_body())
    assert [p.split(": ", 1)[1] for p in problems] == [
        "watch.address: is required when watch.enabled = true",
        "watch.secret: is required when watch.enabled = true",
    ]


def test_watch_disabled_needs_nothing(tmp_path: Path) -> None:
    body = f'[watch]\naddress = "http://example.com/"\nsecret = "change-me"\n{ACCOUNT}'
    config = load_config(write(tmp_path, body), {})
    assert not config.watch.enabled


@pytest.mark.parametrize(
    "address",
    [
        "https://hooks.example.com/calendar",
        "http://127.0.0.1:8086/hook",
        "http://127.8.9.10/hook",
        "http://[::1]:8086/hook",
        "http://localhost:8086/hook",
    ],
)
def test_watch_address_allowed(tmp_path: Path, address: str) -> None:
    config = load_config(write(tmp_path, watch_body(address=address, secret=SECRET)), {})
    assert config.watch.address == address


def test_watch_http_needs_loopback_or_allow_insecure(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, watch_body(address="http://example.com/h", secret=SECRET))
    assert "watch.address: must use https" in problem
    body = watch_body(address="http://example.com/h", secret=SECRET, allow_insecure=True)
    assert load_config(write(tmp_path, body), {}).watch.allow_insecure


def test_watch_address_must_be_url(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, watch_body(address="hooks.example.com", secret=SECRET))
    assert "watch.address: must be an https URL" in problem


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        ("change-me", "placeholder 'change-me'"),
        ("short-but-secret", None),  # exactly 16 characters: accepted
        ("tooshort-secret", "at least 16 characters long (has 15)"),
        ("", "at least 16 characters long (has 0)"),
    ],
)
def test_watch_secret_strength(tmp_path: Path, secret: str, fragment: str | None) -> None:
    body = watch_body(address="https://h.example.com/", secret=secret)
    if fragment is None:
        assert load_config(write(tmp_path, body), {}).watch.secret == secret
        return
    problem = one_problem(tmp_path, body)
    assert fragment in problem
    if secret and secret != "change-me":
        assert secret not in problem


def test_secrets_never_in_messages_or_repr(tmp_path: Path) -> None:
    weak = "weak-but-private"[:12]
    problems = problems_of(
        tmp_path,
        f'[watch]\nenabled = true\naddress = "ftp://x"\nsecret = "{weak}"\n'
        f'secrett = "{SECRET}"\n{ACCOUNT}',
    )
    text = " ".join(problems)
    assert len(problems) == 3, problems
    assert weak not in text and SECRET not in text
    problem = one_problem(tmp_path, f"[watch]\nsecret = {{ value = '{SECRET}' }}\n{ACCOUNT}")
    assert "must be a string, got a table" in problem and SECRET not in problem
    config = load_config(
        write(tmp_path, watch_body(address="https://h.example.com/", secret=SECRET)), {}
    )
    assert SECRET not in repr(config) and SECRET not in repr(config.watch)


# ----------------------------------------------------------------------- account rules

A = "[[accounts]]\nname = 'a'\ncredentials = 'sa.json'\n"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("", "accounts: at least one [[accounts]] table is required"),
        ("accounts = []", "accounts: at least one [[accounts]] table is required"),
        ("[accounts]\nname = 'a'", "accounts: must be an array of tables ([[accounts]])"),
        ("[[accounts]]\ncredentials = 'sa.json'\ncalendars = ['p']",
         "accounts[0].name: is required"),
        ("[[accounts]]\nname = ' '\ncredentials = 'sa.json'\ncalendars = ['p']",
         "accounts[0].name: must not be empty"),
        ("[[accounts]]\nname = 'a'\ncredentials = 'sa.json'",
         "accounts[0]: lists no calendars: set calendars = [...] or discover = true"),
        (A + "calendars = []",
         "accounts[0].calendars: is empty"),
        (A + "calendars = 'primary'",
         "accounts[0].calendars: must be an array of calendar ids, got 'primary'"),
        (A + "calendars = ['p', 3]",
         "accounts[0].calendars[1]: must be a calendar id string or a table"),
        (A + "calendars = ['p', '']",
         "accounts[0].calendars[1]: must not be empty"),
        (A + "calendars = [{interval = 5}]",
         "accounts[0].calendars[0].id: is required"),
        (A + "calendars = [{id = 'x', interval = 0}]",
         "accounts[0].calendars[0].interval: must be an integer number of seconds from 1 to "
         "604800, got 0"),
        (A + "calendars = [{id = 'x', every = 5}]",
         "accounts[0].calendars[0].every: unknown key"),
        (A + "calendars = ['x', {id = 'x'}]",
         "accounts[0].calendars[1]: calendar 'x' is listed twice in this account "
         "(also accounts[0].calendars[0])"),
        (A + "discover = 'yes'\ncalendars = ['p']",
         "accounts[0].discover: must be true or false"),
        (A + "interval = -5\ncalendars = ['p']",
         "accounts[0].interval: must be an integer number of seconds from 1 to 604800, got -5"),
        (A + "subject = 'bob'\ncalendars = ['p']",
         "accounts[0].subject: must be the email address"),
        ("[[accounts]]\nname = 'a'\ncredentials = 7\ncalendars = ['p']",
         "accounts[0].credentials: must be a string, got 7"),
    ],
)
def test_account_errors(tmp_path: Path, body: str, fragment: str) -> None:
    problem = one_problem(tmp_path, body)
    assert fragment in problem, problem


def test_duplicate_account_names(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, ACCOUNT + ACCOUNT)
    assert problem.endswith("accounts[1].name: duplicate account name 'ops' (also accounts[0])")


def test_same_calendar_in_two_accounts_is_allowed(tmp_path: Path) -> None:
    body = ACCOUNT.replace('"primary"', '"t@x"') + ACCOUNT.replace(
        '"ops"', '"dev"').replace('"primary"', '"t@x"')
    config = load_config(write(tmp_path, body), {})
    assert [a.calendars for a in config.accounts] == [(CalendarConfig("t@x"),)] * 2


# ----------------------------------------------------------------------- unknown keys


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[sync]\nintervall = 5", "sync.intervall: unknown key (did you mean 'interval'?)"),
        ("[database]\ninterval = 5",
         "database.interval: unknown key (did you mean sync.interval?)"),
        ("[sink]\ninterval = 5", "sink: unknown key (did you mean 'sync'?)"),
        ("[bogus]\nx = 1", "bogus: unknown key"),
        ("[watch]\nsecert = 'x'", "watch.secert: unknown key (did you mean 'secret'?)"),
    ],
)
def test_unknown_keys(tmp_path: Path, body: str, expected: str) -> None:
    problem = one_problem(tmp_path, body + "\n" + ACCOUNT)
    assert problem.endswith(expected), problem


def test_unknown_key_in_account_with_suggestion(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, ACCOUNT + 'calender = "x"\n')
    assert problem.endswith("accounts[0].calender: unknown key (did you mean 'calendars'?)")


def test_top_level_key_before_any_table(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, "interval = 5\n" + ACCOUNT)
    assert problem.endswith(": interval: unknown key (did you mean sync.interval?)")


# ----------------------------------------------------------------------- many problems, syntax


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    body = """
    [database]
    url = "oracle://x/y"
    [sync]
    interval = "abc"
    page_size = 9000
    colour = "blue"
    [watch]
    enabled = true
    [[accounts]]
    name = "a"
    [[accounts]]
    name = "a"
    credentials = "missing.json"
    calendars = ["x", "x"]
    """
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    problems = info.value.problems
    keys = [p[len(str(path)) + 2:].split(": ", 1)[0] for p in problems]
    assert keys == [
        "database.url",
        "sync.colour",
        "sync.interval",
        "sync.page_size",
        "watch.address",
        "watch.secret",
        "accounts[0].credentials",
        "accounts[0]",
        "accounts[1].name",
        "accounts[1].credentials",
        "accounts[1].calendars[1]",
    ]
    assert all(p.startswith(f"{path}: ") and "\n" not in p for p in problems)
    # str() is one line: the first problem and how many more (the CLI prints them all)
    assert str(info.value) == f"{problems[0]} (and {len(problems) - 1} more problems)"
    assert info.value.message == str(info.value)


def test_toml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '[sync]\ninterval = 5\nmode = \n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    (problem,) = info.value.problems
    assert problem == f"{path}: line 3, column 8: invalid TOML: Invalid value"


def test_parse_config_from_text(tmp_path: Path) -> None:
    (tmp_path / "sa.json").write_text("{}")
    config = parse_config(ACCOUNT, path=tmp_path / "virtual.toml", env={})
    assert config.path == tmp_path / "virtual.toml"
    assert config.accounts[0].credentials == tmp_path / "sa.json"


# ----------------------------------------------------------------------- example file


def test_example_is_refused_in_emulator_mode_since_it_names_credentials() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(EXAMPLE, EMULATOR)
    assert info.value.problems == [
        "$GOOGLE_CALENDAR_EMULATOR_HOST: refused: accounts[0] names a credentials file; the "
        "emulator switch is for tests: unset it, or point [google] api_endpoint at a private "
        "endpoint instead"]


def test_example_loads_with_a_credentials_file_next_to_it(tmp_path: Path) -> None:
    copy = tmp_path / "reconciler.toml"
    shutil.copy(EXAMPLE, copy)
    (tmp_path / "service-account.json").write_text("{}")
    config = load_config(copy, {})
    assert [a.name for a in config.accounts] == ["ops"]
    assert config.accounts[0].interval == 300
    assert config.accounts[0].calendars == (
        CalendarConfig("primary"), CalendarConfig("team@group.calendar.google.com", 60),
    )


def test_example_loads_with_real_credentials_file(tmp_path: Path) -> None:
    copy = tmp_path / "reconciler.toml"
    shutil.copy(EXAMPLE, copy)
    (tmp_path / "service-account.json").write_text("{}")
    config = load_config(copy, {})
    assert config.accounts[0].credentials == tmp_path / "service-account.json"
    assert config.accounts[0].subject == "someone@example.com"


def test_example_values_are_the_defaults(tmp_path: Path) -> None:
    copy = tmp_path / "reconciler.toml"
    shutil.copy(EXAMPLE, copy)
    (tmp_path / "service-account.json").write_text("{}")
    config = load_config(copy, {})
    assert config.database == DatabaseConfig(f"sqlite:///{tmp_path}/reconciler.db")
    assert config.sync == SyncConfig()
    assert config.quota == QuotaConfig()
    assert config.metrics == MetricsConfig()
    google = GoogleConfig()
    assert (config.google.timeout, config.google.max_retry_seconds, config.google.retries) == (
        google.timeout, google.max_retry_seconds, google.retries
    )
    watch = WatchConfig()
    for name in ("enabled", "listen", "ttl", "renew_margin", "allow_insecure"):
        assert getattr(config.watch, name) == getattr(watch, name), name


def test_example_documents_every_key() -> None:
    from reconciler.config.models import ConfigFile

    text = EXAMPLE.read_text()
    sections = re.split(r"^\[+([a-z]+)\]+\s*$", text, flags=re.M)
    bodies = dict(zip(sections[1::2], sections[2::2], strict=True))
    tables = {f.name: f.type for f in dataclasses.fields(ConfigFile)}
    model_of = {"accounts": AccountConfig, **{name: cls for name, cls in (
        ("database", DatabaseConfig), ("google", GoogleConfig), ("sync", SyncConfig),
        ("quota", QuotaConfig), ("watch", WatchConfig), ("metrics", MetricsConfig),
        ("store", StoreConfig))}}
    assert set(bodies) == set(tables) == set(model_of)
    for section, cls in model_of.items():
        for field in dataclasses.fields(cls):
            assert re.search(rf"^#? ?{field.name} = ", bodies[section], re.M), (
                f"{section}.{field.name}")
    for field in dataclasses.fields(CalendarConfig):
        assert f"{field.name} = " in bodies["accounts"]
    # every key line is preceded by a comment line
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z_]+ = ", line):
            assert lines[i - 1].startswith("#"), line
