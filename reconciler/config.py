"""Load and validate the reconciler's TOML configuration.

Every other part of the service reads its settings from the frozen dataclasses
built here and never touches TOML or the environment itself. That way a bad
setting stops the process at start-up (exit status 2) with a message naming the
file and the key, instead of failing minutes later inside a sync pass.

* **Which file**: the ``-c/--config`` argument, else ``$RECONCILER_CONFIG``, else
  ``./reconciler.toml`` (see :func:`resolve_config_path`).
* **All problems at once**: validation collects every problem before raising one
  :class:`~reconciler.errors.ConfigError`, so a user fixes the file in one round
  trip. Each problem is one line, ``FILE: KEY: what is wrong``, where KEY is a
  dotted path and array items are counted from 0 (``accounts[0].calendars[1]``).
  Unknown keys are problems too (typos must not silently fall back to defaults),
  with a "did you mean" hint when a known key is close.
* **Environment overrides**: ``$RECONCILER_DATABASE_URL`` replaces
  ``database.url``; ``$GOOGLE_CALENDAR_EMULATOR_HOST=host:port`` sends every API
  call to ``http://host:port/calendar/v3/`` with anonymous credentials (every
  account's ``credentials`` is then ignored and set to ``None``). Problems in an
  override name the variable instead of the file.
* **Secrets** (``watch.secret``, the password in a database URL) never appear in
  error messages or in ``repr()``.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, cast
from urllib.parse import urlsplit

from reconciler.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ENV_CONFIG",
    "ENV_DATABASE_URL",
    "ENV_EMULATOR_HOST",
    "AccountConfig",
    "CalendarConfig",
    "CalendarTarget",
    "Config",
    "DatabaseConfig",
    "GoogleConfig",
    "MetricsConfig",
    "QuotaConfig",
    "SyncConfig",
    "WatchConfig",
    "load_config",
    "parse_config",
    "resolve_config_path",
]

DEFAULT_CONFIG_PATH = Path("reconciler.toml")
ENV_CONFIG = "RECONCILER_CONFIG"
ENV_DATABASE_URL = "RECONCILER_DATABASE_URL"
ENV_EMULATOR_HOST = "GOOGLE_CALENDAR_EMULATOR_HOST"

SyncMode = Literal["sync_token", "updated_min"]
DatabaseBackend = Literal["sqlite", "mysql", "postgresql"]

_DAY = 86_400
_DB_SCHEMES: dict[str, DatabaseBackend] = {
    "sqlite": "sqlite",
    "mysql": "mysql",
    "mysql+pymysql": "mysql",
    "postgres": "postgresql",
    "postgresql": "postgresql",
}


# --------------------------------------------------------------------------- dataclasses


def _redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (safe to log or show)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{slash}{tail}"


@dataclass(frozen=True, slots=True, repr=False)
class DatabaseConfig:
    """Where the mirror lives.

    ``url`` is ``sqlite:///relative.db`` (relative to the current directory of the
    process), ``sqlite:////absolute/path.db``, ``mysql://user:pass@host:3306/name``
    (also ``mysql+pymysql://``) or ``postgresql://user:pass@host:5432/name`` (also
    ``postgres://``). ``repr()`` hides the password.
    """

    url: str = "sqlite:///reconciler.db"

    def __repr__(self) -> str:
        return f"DatabaseConfig(url={_redact_url(self.url)!r})"

    @property
    def backend(self) -> DatabaseBackend:
        """The database kind, with scheme aliases folded (``postgres`` -> ``postgresql``)."""
        return _DB_SCHEMES[self.url.partition("://")[0].lower()]

    @property
    def sqlite_path(self) -> str | None:
        """The SQLite file path (``:memory:`` possible), or ``None`` for other backends."""
        if self.backend != "sqlite":
            return None
        return urlsplit(self.url).path[1:]

    @property
    def redacted_url(self) -> str:
        """The URL with its password replaced by ``***``, for logs and messages."""
        return _redact_url(self.url)


@dataclass(frozen=True, slots=True)
class GoogleConfig:
    """How to reach the Calendar API.

    ``emulator`` is true when an endpoint override is in effect (from
    ``[google] api_endpoint`` or ``$GOOGLE_CALENDAR_EMULATOR_HOST``): accounts may
    then omit credentials, and an account whose ``credentials`` is ``None`` uses
    anonymous access.
    """

    api_endpoint: str | None = None
    emulator: bool = False
    timeout: float = 60.0
    max_retry_seconds: float = 120.0
    retries: int = 6


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """How and how often calendars are polled (all times in seconds)."""

    mode: SyncMode = "sync_token"
    interval: int = 300
    page_size: int = 2500
    concurrency: int = 4
    lease_time: int = 60
    updated_min_overlap: int = 60
    updated_min_full_after: int = 21 * _DAY
    audit_interval: int = 7 * _DAY
    jitter: float = 0.1
    backoff_max: int = 3600
    purge_removed: bool = False


@dataclass(frozen=True, slots=True)
class QuotaConfig:
    """Client-side request budgets, kept below Google's per-project/per-user limits."""

    requests_per_minute: int = 6000
    per_user_requests_per_minute: int = 500


@dataclass(frozen=True, slots=True)
class WatchConfig:
    """Optional push notifications (only ever a hint to poll sooner)."""

    enabled: bool = False
    address: str | None = None
    listen: str = "127.0.0.1:8086"
    secret: str | None = field(default=None, repr=False)
    ttl: int = 7 * _DAY
    renew_margin: int = 3600
    allow_insecure: bool = False


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Prometheus endpoint; ``port = None`` disables it."""

    port: int | None = None
    host: str = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class CalendarConfig:
    """One explicitly listed calendar; ``interval`` overrides the account's/sync's."""

    id: str
    interval: int | None = None


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """One Google identity and the calendars it mirrors.

    ``credentials`` is an absolute path (relative paths in the file are taken
    relative to the config file's directory), or ``None`` for anonymous access
    (only allowed in emulator mode).
    """

    name: str
    credentials: Path | None = None
    subject: str | None = None
    calendars: tuple[CalendarConfig, ...] = ()
    discover: bool = False
    interval: int | None = None


class CalendarTarget(NamedTuple):
    """An explicitly configured calendar to poll: who polls it, and how often."""

    account: str
    calendar_id: str
    interval: int


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration; ``path`` is ``None`` for built-in defaults."""

    path: Path | None = None
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    google: GoogleConfig = field(default_factory=GoogleConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    quota: QuotaConfig = field(default_factory=QuotaConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    accounts: tuple[AccountConfig, ...] = ()

    def account(self, name: str) -> AccountConfig:
        """Return the account called ``name``; ``KeyError`` if there is none.

        Stored rows and CLI options refer to accounts by name, so callers need a
        lookup that fails loudly on a name that left the config.
        """
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(f"no account named {name!r} in the config")

    def calendar_targets(self) -> list[CalendarTarget]:
        """Explicitly listed calendars in config order, each with its poll interval.

        A calendar id is mirrored once: when several accounts list the same id, the
        first account in config order polls it and later listings are dropped here.
        ``primary`` is an alias that means a different calendar for each account, so
        it is never deduplicated (resolving it is the sync code's job). The interval
        is the calendar's own, else the account's, else ``[sync] interval``.
        """
        targets: list[CalendarTarget] = []
        claimed: set[str] = set()
        for account in self.accounts:
            for calendar in account.calendars:
                if calendar.id != "primary":
                    if calendar.id in claimed:
                        continue
                    claimed.add(calendar.id)
                interval = calendar.interval or account.interval or self.sync.interval
                targets.append(CalendarTarget(account.name, calendar.id, interval))
        return targets


# --------------------------------------------------------------------------- schema

_SECTIONS: dict[str, tuple[str, ...]] = {
    "database": ("url",),
    "google": ("api_endpoint", "timeout", "max_retry_seconds", "retries"),
    "sync": (
        "mode",
        "interval",
        "page_size",
        "concurrency",
        "lease_time",
        "updated_min_overlap",
        "updated_min_full_after",
        "audit_interval",
        "jitter",
        "backoff_max",
        "purge_removed",
    ),
    "quota": ("requests_per_minute", "per_user_requests_per_minute"),
    "watch": (
        "enabled",
        "address",
        "listen",
        "secret",
        "ttl",
        "renew_margin",
        "allow_insecure",
    ),
    "metrics": ("port", "host"),
    "accounts": ("name", "credentials", "subject", "calendars", "discover", "interval"),
}
_CALENDAR_KEYS = ("id", "interval")
_TOP_LEVEL = tuple(_SECTIONS)

_SECONDS = "a positive integer number of seconds"
_MISSING: Any = object()


# --------------------------------------------------------------------------- helpers


def _describe(value: Any) -> str:
    """Show a bad value the way the user wrote it in TOML (short, one line)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return repr(shown)
    if isinstance(value, int | float):
        return repr(value)
    return _type_name(value)


def _type_name(value: Any) -> str:
    """Name a value's TOML type, for messages that must not show the value."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__} value"


def _parse_host_port(value: str) -> tuple[str, int] | None:
    """Split ``host:port`` / ``[v6]:port``; ``None`` when malformed or port out of range."""
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":"):
            return None
        port_text = rest[1:]
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or ":" in host:
            return None
    if not host or not port_text.isdigit():
        return None
    port = int(port_text)
    if not 1 <= port <= 65535:
        return None
    return host, port


def _is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Reader:
    """Collects problems while reading typed values out of parsed TOML tables."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def add(self, key: str, what: str, *, source: str | None = None) -> None:
        self.problems.append(f"{source or self.source}: {key}: {what}")

    def unknown_keys(
        self, table: Mapping[str, Any], prefix: str, known: Iterable[str]
    ) -> None:
        known = tuple(known)
        for key in table:
            if key in known:
                continue
            hint = ""
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
            else:
                elsewhere = [
                    f"{section}.{key}"
                    for section, keys in _SECTIONS.items()
                    if key in keys and section != "accounts" and f"{section}." != prefix
                ]
                if elsewhere:
                    hint = f" (did you mean {elsewhere[0]}?)"
            self.add(f"{prefix}{key}", f"unknown key{hint}")

    def table(self, data: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, _MISSING)
        if value is _MISSING:
            return {}
        if not isinstance(value, dict):
            self.add(key, f"must be a table ([{key}]), got {_describe(value)}")
            return {}
        self.unknown_keys(value, f"{key}.", _SECTIONS[key])
        return value

    def integer(
        self,
        table: Mapping[str, Any],
        prefix: str,
        key: str,
        default: int,
        *,
        minimum: int,
        maximum: int | None = None,
        what: str,
    ) -> int:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return default
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value >= minimum
            and (maximum is None or value <= maximum)
        ):
            return value
        self.add(f"{prefix}{key}", f"must be {what}, got {_describe(value)}")
        return default

    def optional_integer(
        self,
        table: Mapping[str, Any],
        prefix: str,
        key: str,
        *,
        minimum: int,
        maximum: int | None = None,
        what: str,
    ) -> int | None:
        if key not in table:
            return None
        sentinel = minimum - 1
        value = self.integer(
            table, prefix, key, sentinel, minimum=minimum, maximum=maximum, what=what
        )
        return None if value == sentinel else value

    def number(
        self,
        table: Mapping[str, Any],
        prefix: str,
        key: str,
        default: float,
        *,
        minimum: float,
        maximum: float | None = None,
        exclusive_minimum: bool = False,
        what: str,
    ) -> float:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return default
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
            above = number > minimum if exclusive_minimum else number >= minimum
            if math.isfinite(number) and above and (maximum is None or number <= maximum):
                return number
        self.add(f"{prefix}{key}", f"must be {what}, got {_describe(value)}")
        return default

    def boolean(self, table: Mapping[str, Any], prefix: str, key: str, default: bool) -> bool:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return default
        if isinstance(value, bool):
            return value
        self.add(f"{prefix}{key}", f"must be true or false, got {_describe(value)}")
        return default

    def string(
        self,
        table: Mapping[str, Any],
        prefix: str,
        key: str,
        *,
        secret: bool = False,
        allow_empty: bool = False,
    ) -> str | None:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return None
        if not isinstance(value, str):
            got = _type_name(value) if secret else _describe(value)
            self.add(f"{prefix}{key}", f"must be a string, got {got}")
            return None
        if not allow_empty and not value.strip():
            self.add(f"{prefix}{key}", "must not be empty")
            return None
        return value


# --------------------------------------------------------------------------- sections


def _database_url_problem(url: str) -> str | None:
    """Say what is wrong with a database URL (never echoing its password), or None."""
    examples = (
        "sqlite:///reconciler.db, mysql://user:pass@host:3306/name "
        "or postgresql://user:pass@host/name"
    )
    scheme, sep, _ = url.partition("://")
    if not sep:
        return f"must be a URL such as {examples}, got {_describe(_redact_url(url))}"
    backend = _DB_SCHEMES.get(scheme.lower())
    if backend is None:
        return (
            f"unsupported scheme {scheme!r} "
            "(use sqlite, mysql, mysql+pymysql, postgres or postgresql)"
        )
    parts = urlsplit(url)
    if backend == "sqlite":
        if parts.netloc:
            return (
                "a sqlite URL has no host: use sqlite:///relative/path.db "
                "or sqlite:////absolute/path.db"
            )
        if not parts.path[1:]:
            return "names no database file (e.g. sqlite:///reconciler.db)"
        return None
    if not parts.hostname:
        return f"names no host (e.g. {scheme}://user:pass@host/name)"
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "has an invalid port (must be 1-65535)"
    if not parts.path.strip("/"):
        return f"names no database (e.g. {scheme}://user:pass@host/name)"
    return None


def _read_database(
    r: _Reader, data: Mapping[str, Any], env: Mapping[str, str]
) -> DatabaseConfig:
    section = r.table(data, "database")
    url = r.string(section, "database.", "url")
    source = None
    env_url = env.get(ENV_DATABASE_URL, "")
    if env_url.strip():
        url, source = env_url.strip(), f"${ENV_DATABASE_URL}"
    if url is None:
        return DatabaseConfig()
    problem = _database_url_problem(url)
    if problem:
        r.add("database.url", problem, source=source)
        return DatabaseConfig()
    return DatabaseConfig(url=url)


def _read_google(r: _Reader, data: Mapping[str, Any], env: Mapping[str, str]) -> GoogleConfig:
    section = r.table(data, "google")
    p = "google."
    endpoint = r.string(section, p, "api_endpoint")
    if endpoint is not None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            r.add(
                "google.api_endpoint",
                "must be an http(s) URL such as http://127.0.0.1:8085/calendar/v3/, "
                f"got {_describe(endpoint)}",
            )
            endpoint = None
        elif not endpoint.endswith("/"):
            endpoint += "/"
    emulator_host = env.get(ENV_EMULATOR_HOST, "").strip()
    if emulator_host:
        parsed = _parse_host_port(emulator_host)
        if parsed is None:
            r.add(
                "google.api_endpoint",
                f"must be host:port (e.g. 127.0.0.1:8085), got {_describe(emulator_host)}",
                source=f"${ENV_EMULATOR_HOST}",
            )
        else:
            host, port = parsed
            shown = f"[{host}]" if ":" in host else host
            endpoint = f"http://{shown}:{port}/calendar/v3/"
    return GoogleConfig(
        api_endpoint=endpoint,
        emulator=endpoint is not None,
        timeout=r.number(
            section, p, "timeout", 60.0, minimum=0, exclusive_minimum=True,
            what="a positive number of seconds",
        ),
        max_retry_seconds=r.number(
            section, p, "max_retry_seconds", 120.0, minimum=0,
            what="a number of seconds >= 0",
        ),
        retries=r.integer(section, p, "retries", 6, minimum=0, what="an integer >= 0"),
    )


def _read_sync(r: _Reader, data: Mapping[str, Any]) -> SyncConfig:
    section = r.table(data, "sync")
    p = "sync."
    d = SyncConfig()
    mode: SyncMode = d.mode
    raw_mode = section.get("mode", _MISSING)
    if raw_mode is not _MISSING:
        if raw_mode in ("sync_token", "updated_min"):
            mode = cast(SyncMode, raw_mode)
        else:
            r.add("sync.mode", f"must be 'sync_token' or 'updated_min', got {_describe(raw_mode)}")
    return SyncConfig(
        mode=mode,
        interval=r.integer(section, p, "interval", d.interval, minimum=1, what=_SECONDS),
        page_size=r.integer(
            section, p, "page_size", d.page_size, minimum=1, maximum=2500,
            what="an integer from 1 to 2500",
        ),
        concurrency=r.integer(
            section, p, "concurrency", d.concurrency, minimum=1, what="an integer >= 1"
        ),
        lease_time=r.integer(
            section, p, "lease_time", d.lease_time, minimum=5,
            what="an integer number of seconds >= 5",
        ),
        updated_min_overlap=r.integer(
            section, p, "updated_min_overlap", d.updated_min_overlap, minimum=0,
            what="an integer number of seconds >= 0",
        ),
        updated_min_full_after=r.integer(
            section, p, "updated_min_full_after", d.updated_min_full_after, minimum=1,
            what=_SECONDS,
        ),
        audit_interval=r.integer(
            section, p, "audit_interval", d.audit_interval, minimum=0,
            what="an integer number of seconds >= 0 (0 disables audits)",
        ),
        jitter=r.number(
            section, p, "jitter", d.jitter, minimum=0, maximum=1,
            what="a fraction of the interval from 0 to 1",
        ),
        backoff_max=r.integer(section, p, "backoff_max", d.backoff_max, minimum=1, what=_SECONDS),
        purge_removed=r.boolean(section, p, "purge_removed", d.purge_removed),
    )


def _read_quota(r: _Reader, data: Mapping[str, Any]) -> QuotaConfig:
    section = r.table(data, "quota")
    d = QuotaConfig()
    what = "a positive integer number of requests per minute"
    return QuotaConfig(
        requests_per_minute=r.integer(
            section, "quota.", "requests_per_minute", d.requests_per_minute, minimum=1, what=what
        ),
        per_user_requests_per_minute=r.integer(
            section, "quota.", "per_user_requests_per_minute",
            d.per_user_requests_per_minute, minimum=1, what=what,
        ),
    )


def _read_watch(r: _Reader, data: Mapping[str, Any]) -> WatchConfig:
    section = r.table(data, "watch")
    p = "watch."
    d = WatchConfig()
    enabled = r.boolean(section, p, "enabled", d.enabled)
    allow_insecure = r.boolean(section, p, "allow_insecure", d.allow_insecure)
    address = r.string(section, p, "address")
    secret = r.string(section, p, "secret", secret=True, allow_empty=True)
    listen = r.string(section, p, "listen")
    if listen is not None and _parse_host_port(listen) is None:
        r.add(
            "watch.listen",
            f"must be host:port with a port from 1 to 65535 (e.g. 127.0.0.1:8086), "
            f"got {_describe(listen)}",
        )
        listen = None
    ttl = r.integer(section, p, "ttl", d.ttl, minimum=1, what=_SECONDS)
    renew_margin = r.integer(
        section, p, "renew_margin", d.renew_margin, minimum=0,
        what="an integer number of seconds >= 0",
    )
    if renew_margin >= ttl:
        r.add("watch.renew_margin", f"must be less than watch.ttl ({ttl}), got {renew_margin}")
    if enabled:
        if address is None and "address" not in section:
            r.add("watch.address", "is required when watch.enabled = true")
        elif address is not None:
            parts = urlsplit(address)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                r.add(
                    "watch.address",
                    f"must be an https URL that Google can reach, got {_describe(address)}",
                )
            elif (
                parts.scheme != "https"
                and not allow_insecure
                and not _is_loopback(parts.hostname)
            ):
                r.add(
                    "watch.address",
                    "must use https unless its host is loopback "
                    "or watch.allow_insecure = true",
                )
        if secret is None:
            if "secret" not in section:
                r.add("watch.secret", "is required when watch.enabled = true")
        elif secret.strip().lower() == "change-me":
            r.add("watch.secret", "is still the placeholder 'change-me': set a random secret")
        elif len(secret) < 16:
            r.add("watch.secret", f"must be at least 16 characters long (has {len(secret)})")
    return WatchConfig(
        enabled=enabled,
        address=address,
        listen=listen or d.listen,
        secret=secret,
        ttl=ttl,
        renew_margin=renew_margin,
        allow_insecure=allow_insecure,
    )


def _read_metrics(r: _Reader, data: Mapping[str, Any]) -> MetricsConfig:
    section = r.table(data, "metrics")
    port = r.optional_integer(
        section, "metrics.", "port", minimum=1, maximum=65535,
        what="a port from 1 to 65535 (omit the key to disable metrics)",
    )
    host = r.string(section, "metrics.", "host")
    return MetricsConfig(port=port, host=host or MetricsConfig().host)


def _read_calendars(r: _Reader, account: Mapping[str, Any], prefix: str) -> list[CalendarConfig]:
    raw = account.get("calendars", _MISSING)
    if raw is _MISSING:
        return []
    if not isinstance(raw, list):
        r.add(
            f"{prefix}calendars",
            f"must be an array of calendar ids, got {_describe(raw)}",
        )
        return []
    calendars: list[CalendarConfig] = []
    first_index: dict[str, int] = {}
    for i, item in enumerate(raw):
        key = f"{prefix}calendars[{i}]"
        if isinstance(item, str):
            cal_id: str | None = item
            interval = None
            if not item.strip():
                r.add(key, "must not be empty")
                cal_id = None
        elif isinstance(item, dict):
            r.unknown_keys(item, f"{key}.", _CALENDAR_KEYS)
            cal_id = r.string(item, f"{key}.", "id")
            if cal_id is None and "id" not in item:
                r.add(f"{key}.id", "is required")
            interval = r.optional_integer(item, f"{key}.", "interval", minimum=1, what=_SECONDS)
        else:
            r.add(
                key,
                "must be a calendar id string or a table {id = \"...\", interval = N}, "
                f"got {_describe(item)}",
            )
            continue
        if cal_id is None:
            continue
        if cal_id in first_index:
            r.add(
                key,
                f"calendar {cal_id!r} is listed twice in this account "
                f"(also {prefix}calendars[{first_index[cal_id]}])",
            )
            continue
        first_index[cal_id] = i
        calendars.append(CalendarConfig(id=cal_id, interval=interval))
    return calendars


def _read_accounts(
    r: _Reader,
    data: Mapping[str, Any],
    google: GoogleConfig,
    base_dir: Path,
    env: Mapping[str, str],
) -> tuple[AccountConfig, ...]:
    raw = data.get("accounts", _MISSING)
    if raw is _MISSING:
        r.add("accounts", "at least one [[accounts]] table is required")
        return ()
    if not isinstance(raw, list) or not all(isinstance(a, dict) for a in raw):
        r.add("accounts", f"must be an array of tables ([[accounts]]), got {_describe(raw)}")
        return ()
    if not raw:
        r.add("accounts", "at least one [[accounts]] table is required")
        return ()
    env_emulator = bool(env.get(ENV_EMULATOR_HOST, "").strip())
    accounts: list[AccountConfig] = []
    names: dict[str, int] = {}
    for i, table in enumerate(raw):
        p = f"accounts[{i}]."
        r.unknown_keys(table, p, _SECTIONS["accounts"])
        name = r.string(table, p, "name")
        if name is None and "name" not in table:
            r.add(f"{p}name", "is required")
        if name is not None:
            if name in names:
                r.add(
                    f"{p}name",
                    f"duplicate account name {name!r} (also accounts[{names[name]}])",
                )
            else:
                names[name] = i
        credentials: Path | None = None
        raw_credentials = r.string(table, p, "credentials")
        if raw_credentials is not None and not env_emulator:
            credentials = (base_dir / Path(raw_credentials).expanduser()).absolute()
            if not credentials.is_file():
                r.add(
                    f"{p}credentials",
                    f"file {credentials} not found "
                    "(relative paths are relative to the config file's directory)",
                )
        elif raw_credentials is None and "credentials" not in table and not google.emulator:
            r.add(
                f"{p}credentials",
                "is required (a service-account key or authorized-user token file) "
                f"unless ${ENV_EMULATOR_HOST} or google.api_endpoint is set",
            )
        subject = r.string(table, p, "subject")
        if subject is not None and "@" not in subject:
            r.add(
                f"{p}subject",
                f"must be the email address of the user to impersonate, got {_describe(subject)}",
            )
        discover = r.boolean(table, p, "discover", False)
        interval = r.optional_integer(table, p, "interval", minimum=1, what=_SECONDS)
        calendars = _read_calendars(r, table, p)
        if not calendars and not discover and "calendars" not in table:
            r.add(p.rstrip("."), "lists no calendars: set calendars = [...] or discover = true")
        elif not calendars and not discover and table.get("calendars") == []:
            r.add(f"{p}calendars", "is empty: list calendar ids or set discover = true")
        accounts.append(
            AccountConfig(
                name=name or "",
                credentials=credentials,
                subject=subject,
                calendars=tuple(calendars),
                discover=discover,
                interval=interval,
            )
        )
    return tuple(accounts)


# --------------------------------------------------------------------------- public API


def _build(
    data: Mapping[str, Any],
    *,
    source: str,
    path: Path | None,
    base_dir: Path,
    env: Mapping[str, str],
    require_accounts: bool,
) -> Config:
    r = _Reader(source)
    r.unknown_keys(data, "", _TOP_LEVEL)
    database = _read_database(r, data, env)
    google = _read_google(r, data, env)
    sync = _read_sync(r, data)
    quota = _read_quota(r, data)
    watch = _read_watch(r, data)
    metrics = _read_metrics(r, data)
    accounts: tuple[AccountConfig, ...] = ()
    if require_accounts or "accounts" in data:
        accounts = _read_accounts(r, data, google, base_dir, env)
    if r.problems:
        raise ConfigError("; ".join(r.problems), problems=list(r.problems))
    return Config(
        path=path,
        database=database,
        google=google,
        sync=sync,
        quota=quota,
        watch=watch,
        metrics=metrics,
        accounts=accounts,
    )


def _resolve(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> tuple[Path, str]:
    """Pick the config path and say how it was chosen (for the not-found message)."""
    if explicit is not None and str(explicit) != "":
        return Path(explicit), "given by -c/--config"
    from_env = env.get(ENV_CONFIG, "")
    if from_env:
        return Path(from_env), f"from ${ENV_CONFIG}"
    return DEFAULT_CONFIG_PATH, f"set -c/--config or ${ENV_CONFIG}"


def resolve_config_path(explicit: str | None, env: Mapping[str, str]) -> Path:
    """Return the config file to read: ``explicit``, else ``$RECONCILER_CONFIG``, else default.

    This is the single precedence rule for every command, so ``once``, ``run`` and
    ``export`` can never disagree about which file they read. Empty strings count
    as unset. The file's existence is not checked here (see :func:`load_config`).
    """
    return _resolve(explicit, env)[0]


def parse_config(
    text: str,
    *,
    path: str | Path = DEFAULT_CONFIG_PATH,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Validate TOML ``text`` as if read from ``path`` (which need not exist).

    Used by :func:`load_config` and by tests or tools holding a config in memory;
    relative credentials paths resolve against ``path``'s directory.
    """
    env = os.environ if env is None else env
    path = Path(path)
    source = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = "TOML"
        if message.endswith(")") and "(at line " in message:
            message, _, position = message[:-1].rpartition(" (at ")
            where = position
        problem = f"{source}: {where}: invalid TOML: {message}"
        raise ConfigError(problem, problems=[problem]) from None
    return _build(
        data, source=source, path=path, base_dir=path.parent, env=env, require_accounts=True
    )


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    allow_missing: bool = False,
) -> Config:
    """Find, read and validate the config; raise ``ConfigError`` listing every problem.

    ``path`` is the ``-c/--config`` value (``None`` when not given) and ``env``
    defaults to ``os.environ``; both are parameters so tests need not touch the
    process state. With ``allow_missing=True`` (commands such as ``demo`` and
    ``emulator`` that work without a config) a missing *default* file
    ``./reconciler.toml`` yields the built-in defaults, with no accounts, plus any
    environment overrides. A file named by ``-c`` or ``$RECONCILER_CONFIG`` must
    always exist: the user asked for it.
    """
    env = os.environ if env is None else env
    chosen, how = _resolve(path, env)
    is_default = chosen is DEFAULT_CONFIG_PATH
    shown = f"./{chosen}" if is_default else str(chosen)
    if not chosen.exists():
        if allow_missing and is_default:
            return _build(
                {}, source=shown, path=None, base_dir=Path.cwd(), env=env,
                require_accounts=False,
            )
        message = f"config file {shown} not found ({how})"
        raise ConfigError(message, problems=[message])
    try:
        raw = chosen.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        message = f"{chosen}: cannot read config file: {reason}"
        raise ConfigError(message, problems=[message]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"{chosen}: byte {exc.start}: invalid TOML: the file is not UTF-8"
        raise ConfigError(message, problems=[message]) from None
    return parse_config(text, path=chosen, env=env)
