"""The configuration as typed, frozen models (pydantic v2 dataclasses).

These classes are both the validated objects the rest of the service reads
(``config.sync.interval``) and the declaration of the TOML file: pydantic
checks types, ranges and unknown keys from them, and ``config.schema.json`` is
generated from them (see :func:`json_schema`).

Invariants:

* Every number has a lower *and* an upper bound, so no value a user can write
  (``interval = 1e30``) overflows a ``datetime`` or a timer later; floats must be
  finite.
* Types are strict (TOML has types: ``interval = "300"`` or ``2.5`` is a
  mistake, not something to coerce); only ``credentials`` accepts a string for
  its ``Path``.
* Instances are frozen; ``dataclasses.replace`` works on them.
* Secrets (``watch.secret``) are kept out of ``repr()``; a database URL's
  password too.

Rules that relate several keys (watch needs an address when enabled, account
names are unique, ...) are pure functions in :mod:`reconciler.config.rules`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, Strict, TypeAdapter
from pydantic.dataclasses import dataclass

from reconciler import dburl

__all__ = [
    "AccountConfig",
    "CalendarConfig",
    "Config",
    "ConfigFile",
    "DatabaseBackend",
    "DatabaseConfig",
    "GoogleConfig",
    "Hint",
    "MetricsConfig",
    "QuotaConfig",
    "Secret",
    "StoreConfig",
    "SyncConfig",
    "SyncMode",
    "Unit",
    "WatchConfig",
    "json_schema",
]

SyncMode = Literal["sync_token", "updated_min"]
EventType = Literal["birthday", "default", "focusTime", "fromGmail", "outOfOffice",
                    "workingLocation"]  # the ``eventTypes`` enum of Calendar v3
DatabaseBackend = dburl.Backend

MINUTE = 60
HOUR = 3600
DAY = 86_400
MAX_INTERVAL = 7 * DAY
MAX_LONG_SPAN = 366 * DAY  # audits, updatedMin cursor age
MAX_RATE = 1_000_000  # requests per minute
MAX_STRING = 4096


@dataclasses.dataclass(frozen=True)
class Unit:
    """Field metadata: the unit a number is counted in ("seconds"), for messages."""

    name: str


@dataclasses.dataclass(frozen=True)
class Hint:
    """Field metadata: a remark appended to the field's error message."""

    text: str


@dataclasses.dataclass(frozen=True)
class Secret:
    """Field metadata: never show this field's value in a message."""


SECONDS = Unit("seconds")
PER_MINUTE = Unit("requests per minute")
_MODEL = ConfigDict(extra="forbid", use_attribute_docstrings=False)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict(), Field(max_length=MAX_STRING)]
Text = Annotated[Str, AfterValidator(_not_blank)]


Seconds = Annotated[Int, SECONDS]


# --------------------------------------------------------------------------- [database]


def _database_url(value: str) -> str:
    problem = dburl.url_problem(value)
    if problem:
        raise ValueError(problem)
    return value


@dataclass(frozen=True, repr=False, config=_MODEL)
class DatabaseConfig:
    """Where the mirror lives.

    ``url`` is ``sqlite:///path.db`` (a relative path is resolved against the
    config file's folder, or the working directory for ``$RECONCILER_DATABASE_URL``
    and the built-in default, so a loaded config always carries an absolute path),
    ``sqlite:////absolute/path.db``, ``mysql://user:pass@host:3306/name`` (also
    ``mysql+pymysql://``, ``mariadb://``) or ``postgresql://user:pass@host:5432/name``
    (also ``postgres://``). ``repr()`` hides the password.
    """

    url: Annotated[
        Text,
        AfterValidator(_database_url),
        Field(description="Database URL: sqlite:///file.db (relative to this file's folder), "
                          "sqlite:////abs/path.db, mysql://user:pass@host:3306/name or "
                          "postgresql://user:pass@host:5432/name."),
    ] = "sqlite:///reconciler.db"

    def __repr__(self) -> str:
        return f"DatabaseConfig(url={dburl.redact_url(self.url)!r})"

    @property
    def backend(self) -> DatabaseBackend:
        """The database kind, with scheme aliases folded (``postgres`` -> ``postgresql``)."""
        backend = dburl.backend_of(self.url)
        assert backend is not None, "validated URL"
        return backend

    @property
    def sqlite_path(self) -> str | None:
        """The SQLite file path (``:memory:`` possible), or ``None`` for other backends."""
        return dburl.sqlite_path(self.url)

    @property
    def redacted_url(self) -> str:
        """The URL with its password replaced by ``***``, for logs and messages."""
        return dburl.redact_url(self.url)


# --------------------------------------------------------------------------- [google]


def _api_endpoint(value: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise ValueError("must be an http(s) URL such as http://127.0.0.1:8085/calendar/v3/, "
                         f"got {shown!r}")
    return value if value.endswith("/") else value + "/"


@dataclass(frozen=True, config=_MODEL)
class GoogleConfig:
    """How to reach the Calendar API.

    ``emulator`` is true when an endpoint override is in effect (from
    ``[google] api_endpoint`` or ``$GOOGLE_CALENDAR_EMULATOR_HOST``): accounts may
    then omit credentials, and an account whose ``credentials`` is ``None`` uses
    anonymous access.
    """

    api_endpoint: Annotated[
        Str | None, AfterValidator(lambda v: None if v is None else _api_endpoint(v)),
        Field(description="Send every Calendar API call here instead of Google "
                          "(e.g. http://127.0.0.1:8085/calendar/v3/ for the emulator)."),
    ] = None
    timeout: Annotated[
        Float, Field(gt=0, le=HOUR, description="Seconds to wait for one HTTP response."),
        SECONDS,
    ] = 60.0
    max_retry_seconds: Annotated[
        Float, Field(ge=0, le=DAY,
                     description="Give up retrying one request after this many seconds."),
        SECONDS,
    ] = 120.0
    retries: Annotated[
        Int, Field(ge=0, le=100, description="Retries of one request after a transient error."),
    ] = 6

    @property
    def emulator(self) -> bool:
        """True when calls go to an overridden endpoint (the emulator or a private one)."""
        return self.api_endpoint is not None


# --------------------------------------------------------------------------- [sync]


@dataclass(frozen=True, config=_MODEL)
class SyncConfig:
    """How and how often calendars are polled (all times in seconds)."""

    mode: Annotated[
        SyncMode,
        Field(description="sync_token: incremental with sync tokens; updated_min: by "
                          "modification time."),
    ] = "sync_token"
    interval: Annotated[
        Seconds,
        Field(ge=1, le=MAX_INTERVAL,
              description="Seconds between the starts of two polls of one calendar."),
    ] = 300
    page_size: Annotated[
        Int, Field(ge=1, le=2500, description="Events requested per events.list page."),
    ] = 2500
    concurrency: Annotated[
        Int, Field(ge=1, le=256, description=(
            "Calendars synced in parallel by one process. Threads mostly wait for Google "
            "(100-300 ms a request), so this is sized for waiting, not for cores; the [quota] "
            "budget is the throttle.")),
    ] = 32
    lease_time: Annotated[
        Seconds,
        Field(ge=5, le=HOUR,
              description="Seconds a calendar's lease is held; renewed during long syncs."),
    ] = 60
    updated_min_overlap: Annotated[
        Seconds,
        Field(ge=0, le=DAY,
              description="mode = updated_min: seconds subtracted from the last seen "
                          "server time."),
    ] = 60
    updated_min_full_after: Annotated[
        Seconds,
        Field(ge=1, le=MAX_LONG_SPAN,
              description="mode = updated_min: full listing when the cursor is older "
                          "than this."),
    ] = 21 * DAY
    audit_interval: Annotated[
        Seconds, Hint("0 disables audits"),
        Field(ge=0, le=MAX_LONG_SPAN,
              description="Seconds between full audit listings of a calendar; 0 disables."),
    ] = 7 * DAY
    jitter: Annotated[
        Float, Field(ge=0, le=1, description="Fraction of the interval over which first "
                                              "passes are spread."),
        Unit("fraction of the interval"),
    ] = 0.1
    backoff_max: Annotated[
        Seconds,
        Field(ge=1, le=MAX_INTERVAL,
              description="Upper bound of the back-off after consecutive failures."),
    ] = HOUR
    purge_removed: Annotated[
        Bool, Field(description="Delete rows of calendars that left calendarList."),
    ] = False
    history_days: Annotated[
        Int | None, Unit("days"),
        Field(ge=1, le=36_500,
              description="Full listings send timeMin = now - this many days (events that "
                          "ended earlier are not fetched); unset: every event."),
    ] = None
    event_types: Annotated[
        tuple[EventType, ...] | None,
        Field(min_length=1, max_length=6,
              description="eventTypes sent on every listing (only these types are mirrored); "
                          "unset: every type. Changing it forces a full listing."),
    ] = None


# --------------------------------------------------------------------------- [store]


@dataclass(frozen=True, config=_MODEL)
class StoreConfig:
    """What the mirror keeps beyond each event's current version."""

    history: Annotated[
        Int, Hint("0 keeps no history"),
        Field(ge=0, le=1000,
              description="Versions of each event kept in event_version (the last N, "
                          "pruned in the same transaction); 0 keeps none."),
    ] = 0


# --------------------------------------------------------------------------- [quota]


@dataclass(frozen=True, config=_MODEL)
class QuotaConfig:
    """Client-side request budgets, kept below Google's per-project/per-user limits."""

    requests_per_minute: Annotated[
        Int, Field(ge=1, le=MAX_RATE, description="Budget for the whole process."), PER_MINUTE,
    ] = 6000
    per_user_requests_per_minute: Annotated[
        Int, Field(ge=1, le=MAX_RATE, description="Budget per account (impersonated user)."),
        PER_MINUTE,
    ] = 500


# --------------------------------------------------------------------------- [watch]


def _listen(value: str) -> str:
    if dburl.parse_host_port(value) is None:
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise ValueError("must be host:port with a port from 1 to 65535 "
                         f"(e.g. 127.0.0.1:8086), got {shown!r}")
    return value


@dataclass(frozen=True, config=_MODEL)
class WatchConfig:
    """Optional push notifications (only ever a hint to poll sooner)."""

    enabled: Annotated[Bool, Field(description="Use push notifications as poll hints.")] = False
    address: Annotated[
        Str | None, Field(description="The https URL Google calls (required when enabled)."),
    ] = None
    listen: Annotated[
        Text, AfterValidator(_listen),
        Field(description="host:port where the receiver binds."),
    ] = "127.0.0.1:8086"
    secret: Annotated[
        Str | None, Secret(),
        Field(description="Channel token (at least 16 characters; required when enabled)."),
    ] = dataclasses.field(default=None, repr=False)
    ttl: Annotated[
        Seconds, Field(ge=1, le=30 * DAY, description="Requested channel lifetime in seconds."),
    ] = 7 * DAY
    renew_margin: Annotated[
        Seconds,
        Field(ge=0, le=30 * DAY, description="Renew a channel this many seconds before it expires (< ttl)."),
    ] = HOUR
    allow_insecure: Annotated[
        Bool, Field(description="Allow a plain-http address on a non-loopback host."),
    ] = False


# --------------------------------------------------------------------------- [metrics]


@dataclass(frozen=True, config=_MODEL)
class MetricsConfig:
    """Prometheus endpoint; ``port = None`` disables it."""

    port: Annotated[
        Int | None, Field(ge=1, le=65535, description="Port of /healthz and /metrics "
                                                      "(omit to disable)."),
        Hint("omit the key to disable metrics"),
    ] = None
    host: Annotated[Text, Field(description="Address the metrics endpoint binds to.")] = (
        "127.0.0.1")


# --------------------------------------------------------------------------- [[accounts]]


@dataclass(frozen=True, config=_MODEL)
class CalendarConfig:
    """One explicitly listed calendar; ``interval`` overrides the account's/sync's."""

    id: Annotated[Text, Field(description="Calendar id.")]
    interval: Annotated[
        Annotated[Seconds, Field(ge=1, le=MAX_INTERVAL)] | None,
        Field(description="Poll interval of this calendar, overriding the account's."),
    ] = None


def _calendar_entry(value: Any) -> Any:
    if isinstance(value, str):
        return {"id": _not_blank(value)}
    return value


CalendarEntry = Annotated[
    CalendarConfig,
    BeforeValidator(_calendar_entry, json_schema_input_type=Text | CalendarConfig),
]


def _not_blank_path(value: Any) -> Any:
    if isinstance(value, str):
        _not_blank(value)
    return value


def _subject(value: str | None) -> str | None:
    if value is not None and "@" not in value:
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise ValueError(f"must be the email address of the user to impersonate, got {shown!r}")
    return value


@dataclass(frozen=True, config=_MODEL)
class AccountConfig:
    """One Google identity and the calendars it mirrors.

    ``credentials`` is an absolute path once loaded (relative paths in the file
    are taken relative to the config file's directory), or ``None`` for anonymous
    access (only allowed in emulator mode).
    """

    name: Annotated[Text, Field(description="Unique account name, stored with every row.")]
    credentials: Annotated[
        Annotated[Path, Strict(False)] | None, BeforeValidator(_not_blank_path),
        Field(description="Service-account key or authorized-user token file "
                                       "(relative to this file's folder)."),
    ] = None
    subject: Annotated[
        Str | None, AfterValidator(_subject),
        Field(description="Service accounts: the user to impersonate."),
    ] = None
    calendars: Annotated[
        tuple[CalendarEntry, ...],
        Field(max_length=100_000,
              description='Calendar ids, or tables {id = "...", interval = N}.'),
    ] = ()
    discover: Annotated[
        Bool, Field(description="Also mirror every calendar in the account's calendarList."),
    ] = False
    interval: Annotated[
        Annotated[Seconds, Field(ge=1, le=MAX_INTERVAL)] | None,
        Field(description="Poll interval of this account's calendars."),
    ] = None


# --------------------------------------------------------------------------- the file


@dataclass(frozen=True, config=_MODEL)
class ConfigFile:
    """The TOML document: its sections and ``[[accounts]]`` tables."""

    database: DatabaseConfig = dataclasses.field(default_factory=DatabaseConfig)
    google: GoogleConfig = dataclasses.field(default_factory=GoogleConfig)
    sync: SyncConfig = dataclasses.field(default_factory=SyncConfig)
    store: StoreConfig = dataclasses.field(default_factory=StoreConfig)
    quota: QuotaConfig = dataclasses.field(default_factory=QuotaConfig)
    watch: WatchConfig = dataclasses.field(default_factory=WatchConfig)
    metrics: MetricsConfig = dataclasses.field(default_factory=MetricsConfig)
    accounts: Annotated[
        tuple[AccountConfig, ...],
        Field(max_length=10_000, description="One table per Google identity."),
    ] = ()


@dataclass(frozen=True, config=_MODEL)
class Config(ConfigFile):
    """The whole validated configuration; ``path`` is ``None`` for built-in defaults."""

    path: Path | None = None

    def account(self, name: str) -> AccountConfig:
        """Return the account called ``name``; ``KeyError`` if there is none.

        Stored rows and CLI options refer to accounts by name, so callers need a
        lookup that fails loudly on a name that left the config.
        """
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(f"no account named {name!r} in the config")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the TOML file (what ``config.schema.json`` holds)."""
    schema = TypeAdapter(ConfigFile).json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "calendar-reconciler configuration",
        "description": "Generated from reconciler/config/models.py by "
                       "`python -m reconciler.config --schema`; do not edit.",
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }
