"""The configuration as typed, frozen models (stdlib dataclasses, msgspec constraints).

These classes are both the validated objects the rest of the service reads
(``config.sync.interval``) and the declaration of the TOML file: each field's
``Annotated`` type carries its bounds and description as :class:`msgspec.Meta`
and its own checks as :class:`Check` / :class:`Before`;
:mod:`reconciler.config.validate` checks types, ranges and unknown keys from
them (every problem at once), and ``config.schema.json`` is generated from them
by :func:`msgspec.json.schema` (see :func:`json_schema`). Nothing here is
validated on construction: a model built in code is trusted, one read from a
file comes from the validator.

Invariants:

* Every number has a lower *and* an upper bound, so no value a user can write
  (``interval = 1e30``) overflows a ``datetime`` or a timer later; floats must be
  finite.
* Types are strict (TOML has types: ``interval = "300"`` or ``2.5`` is a
  mistake, not something to coerce; an integer is accepted for a float); only
  ``credentials`` accepts a string for its ``Path``.
* Instances are frozen; ``dataclasses.replace`` works on them.
* Secrets (``watch.secret``) are kept out of ``repr()``; a database URL's
  password too.

Rules that relate several keys (watch needs an address when enabled, account
names are unique, ...) are pure functions in :mod:`reconciler.config.rules`.
"""

# No ``from __future__ import annotations`` here: the field types are built once at
# import, so the validator's ``get_type_hints`` need not eval strings at load time.
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from msgspec import Meta

from reconciler import dburl

__all__ = [
    "AccountConfig",
    "Before",
    "CalendarConfig",
    "Check",
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
Schedule = Literal["fixed", "adaptive"]
EventType = Literal["birthday", "default", "focusTime", "fromGmail", "outOfOffice",
                    "workingLocation"]  # the ``eventTypes`` enum of Calendar v3
DatabaseBackend = dburl.Backend

MINUTE = 60
HOUR = 3600
DAY = 86_400
MAX_INTERVAL = 7 * DAY
DEFAULT_MIN_INTERVAL = 2  # seconds: [sync] min_interval when unset (adaptive schedule)
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


@dataclasses.dataclass(frozen=True)
class Check:
    """Field metadata: a check run on the converted value once its type and bounds
    hold; ``fn`` returns the value to keep (possibly normalised) or raises
    ``ValueError`` whose text is the problem's message."""

    fn: Callable[[Any], Any]


@dataclasses.dataclass(frozen=True)
class Before:
    """Field metadata: run on the raw TOML value before its type is checked;
    ``fn`` returns what to validate instead (possibly the value itself) or raises
    ``ValueError``. ``accepts``: the extra input type, for the JSON Schema."""

    fn: Callable[[Any], Any]
    accepts: Any = None


SECONDS = Unit("seconds")
PER_MINUTE = Unit("requests per minute")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


# msgspec's conversion is strict by itself (no bool for int, no str or float for
# int); floats must also be finite, which the validator checks for every float.
Int = int
Float = float
Bool = bool
Str = Annotated[str, Meta(max_length=MAX_STRING)]
Text = Annotated[Str, Check(_not_blank)]


Seconds = Annotated[Int, SECONDS]


# --------------------------------------------------------------------------- [database]


def _database_url(value: str) -> str:
    problem = dburl.url_problem(value)
    if problem:
        raise ValueError(problem)
    return value


@dataclasses.dataclass(frozen=True, repr=False)
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
        Check(_database_url),
        Meta(description="Database URL: sqlite:///file.db (relative to this file's folder), "
                         "sqlite:////abs/path.db, mysql://user:pass@host:3306/name or "
                         "postgresql://user:pass@host:5432/name."),
    ] = "sqlite:///reconciler.db"
    pool_size: Annotated[
        Int,
        Meta(ge=1, le=256, description=(
            "Database connections one process holds at most, whatever [sync] concurrency is: "
            "a thread holds one only while it reads or writes (milliseconds), not while it "
            "waits for Google. N processes need up to N x pool_size server connections.")),
    ] = 4
    pool_timeout: Annotated[
        Seconds,
        Meta(ge=1, le=HOUR, description=(
            "Seconds a thread waits for a free connection of the pool before the call fails "
            "(and is retried like any database outage).")),
    ] = 30

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


@dataclasses.dataclass(frozen=True)
class GoogleConfig:
    """How to reach the Calendar API.

    ``emulator`` is true when an endpoint override is in effect (from
    ``[google] api_endpoint`` or ``$GOOGLE_CALENDAR_EMULATOR_HOST``): accounts may
    then omit credentials, and an account whose ``credentials`` is ``None`` uses
    anonymous access.
    """

    api_endpoint: Annotated[
        Annotated[Str, Check(_api_endpoint)] | None,
        Meta(description="Send every Calendar API call here instead of Google "
                         "(e.g. http://127.0.0.1:8085/calendar/v3/ for the emulator)."),
    ] = None
    timeout: Annotated[
        Float, Meta(gt=0, le=HOUR, description="Seconds to wait for one HTTP response."),
        SECONDS,
    ] = 60.0
    max_retry_seconds: Annotated[
        Float, Meta(ge=0, le=DAY,
                    description="Give up retrying one request after this many seconds."),
        SECONDS,
    ] = 120.0
    retries: Annotated[
        Int, Meta(ge=0, le=100, description="Retries of one request after a transient error."),
    ] = 6

    @property
    def emulator(self) -> bool:
        """True when calls go to an overridden endpoint (the emulator or a private one)."""
        return self.api_endpoint is not None


# --------------------------------------------------------------------------- [sync]


@dataclasses.dataclass(frozen=True)
class SyncConfig:
    """How and how often calendars are polled (all times in seconds)."""

    mode: Annotated[
        SyncMode,
        Meta(description="sync_token: incremental with sync tokens; updated_min: by "
                         "modification time."),
    ] = "sync_token"
    interval: Annotated[
        Seconds,
        Meta(ge=1, le=MAX_INTERVAL,
             description="Seconds between the starts of two polls of one calendar."),
    ] = 300
    page_size: Annotated[
        Int, Meta(ge=1, le=2500, description="Events requested per events.list page."),
    ] = 2500
    concurrency: Annotated[
        Int, Meta(ge=1, le=256, description=(
            "Calendars synced in parallel by one process. Threads mostly wait for Google "
            "(100-300 ms a request), so this is sized for waiting, not for cores; the [quota] "
            "budget is the throttle.")),
    ] = 32
    lease_time: Annotated[
        Seconds,
        Meta(ge=5, le=HOUR,
             description="Seconds a calendar's lease is held; renewed during long syncs."),
    ] = 60
    updated_min_overlap: Annotated[
        Seconds,
        Meta(ge=0, le=DAY,
             description="mode = updated_min: seconds subtracted from the last seen "
                         "server time."),
    ] = 60
    updated_min_full_after: Annotated[
        Seconds,
        Meta(ge=1, le=MAX_LONG_SPAN,
             description="mode = updated_min: full listing when the cursor is older "
                         "than this."),
    ] = 21 * DAY
    audit_interval: Annotated[
        Seconds, Hint("0 disables audits"),
        Meta(ge=0, le=MAX_LONG_SPAN,
             description="Seconds between full audit listings of a calendar; 0 disables."),
    ] = 7 * DAY
    jitter: Annotated[
        Float, Meta(ge=0, le=1, description="Fraction of the interval over which first "
                                             "passes are spread."),
        Unit("fraction of the interval"),
    ] = 0.1
    backoff_max: Annotated[
        Seconds,
        Meta(ge=1, le=MAX_INTERVAL,
             description="Upper bound of the back-off after consecutive failures."),
    ] = HOUR
    purge_removed: Annotated[
        Bool, Meta(description="Delete rows of calendars that left calendarList."),
    ] = False
    history_days: Annotated[
        Annotated[Int, Meta(ge=1, le=36_500)] | None, Unit("days"),
        Meta(description="Full listings send timeMin = now - this many days (events that "
                         "ended earlier are not fetched); unset: every event."),
    ] = None
    event_types: Annotated[
        Annotated[tuple[EventType, ...], Meta(min_length=1, max_length=6)] | None,
        Meta(description="eventTypes sent on every listing (only these types are mirrored); "
                         "unset: every type. Changing it forces a full listing."),
    ] = None

    schedule: Annotated[
        Schedule,
        Meta(description="fixed: every calendar every interval; adaptive: the same budget, "
                         "spent where changes happen (docs/schedule.md)."),
    ] = "fixed"
    min_interval: Annotated[
        Annotated[Int, Meta(ge=1, le=MAX_INTERVAL)] | None, SECONDS,
        Meta(description="schedule = adaptive: shortest interval of one calendar (the "
                         "busiest); unset: 2 s, or the interval when that is shorter."),
    ] = None
    max_interval: Annotated[
        Annotated[Int, Meta(ge=1, le=MAX_INTERVAL)] | None, SECONDS,
        Meta(description="schedule = adaptive: longest interval of one calendar (idle "
                         "calendars); unset: 2 x interval."),
    ] = None

    @property
    def interval_bounds(self) -> tuple[int, int]:
        """``(min_interval, max_interval)`` of the adaptive schedule.

        Unset, min is ``min(2, interval)`` and max is ``2 x interval``.
        """
        low = self.min_interval if self.min_interval is not None else min(
            DEFAULT_MIN_INTERVAL, self.interval)
        high = self.max_interval if self.max_interval is not None else 2 * self.interval
        return low, high


# --------------------------------------------------------------------------- [store]


@dataclasses.dataclass(frozen=True)
class StoreConfig:
    """What the mirror keeps beyond each event's current version."""

    history: Annotated[
        Int, Hint("0 keeps no history"),
        Meta(ge=0, le=1000,
             description="Versions of each event kept in event_version (the last N, "
                         "pruned in the same transaction); 0 keeps none."),
    ] = 0
    occurrences: Annotated[
        Bool, Meta(description="Keep the occurrence table (every occurrence of every live "
                               "event inside a window around now, for SQL; `reconciler "
                               "agenda` works without it); false drops its rows. Off by "
                               "default: it makes a full sync several times slower."),
    ] = False
    occurrences_past_days: Annotated[
        Int, Unit("days"), Meta(ge=0, le=3660, description="Days before today the occurrence table covers."),
    ] = 30
    occurrences_future_days: Annotated[
        Int, Unit("days"), Meta(ge=1, le=3660, description="Days after today the occurrence table covers."),
    ] = 400

    def days(self) -> tuple[int, int] | None:
        """(past days, future days) of the occurrence window, or None when switched off."""
        return (self.occurrences_past_days, self.occurrences_future_days) if self.occurrences \
            else None


# --------------------------------------------------------------------------- [quota]


@dataclasses.dataclass(frozen=True)
class QuotaConfig:
    """Client-side request budgets, kept below Google's per-project/per-user limits."""

    requests_per_minute: Annotated[
        Int, Meta(ge=1, le=MAX_RATE, description="Budget for the whole process."), PER_MINUTE,
    ] = 6000
    per_user_requests_per_minute: Annotated[
        Int, Meta(ge=1, le=MAX_RATE, description="Budget per account (impersonated user)."),
        PER_MINUTE,
    ] = 500
    burst: Annotated[
        Float, Meta(ge=0.1, le=60, description="Seconds' worth of requests a bucket holds: "
                                               "the largest burst after a quiet spell."),
        SECONDS,
    ] = 10.0


# --------------------------------------------------------------------------- [watch]


def _listen(value: str) -> str:
    if dburl.parse_host_port(value) is None:
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise ValueError("must be host:port with a port from 1 to 65535 "
                         f"(e.g. 127.0.0.1:8086), got {shown!r}")
    return value


@dataclasses.dataclass(frozen=True)
class WatchConfig:
    """Optional push notifications (only ever a hint to poll sooner)."""

    enabled: Annotated[Bool, Meta(description="Use push notifications as poll hints.")] = False
    address: Annotated[
        Str | None, Meta(description="The https URL Google calls (required when enabled)."),
    ] = None
    listen: Annotated[
        Text, Check(_listen),
        Meta(description="host:port where the receiver binds."),
    ] = "127.0.0.1:8086"
    secret: Annotated[
        Str | None, Secret(),
        Meta(description="Channel token (at least 16 characters; required when enabled)."),
    ] = dataclasses.field(default=None, repr=False)
    ttl: Annotated[
        Seconds, Meta(ge=1, le=30 * DAY, description="Requested channel lifetime in seconds."),
    ] = 7 * DAY
    renew_margin: Annotated[
        Seconds,
        Meta(ge=0, le=30 * DAY, description="Renew a channel this many seconds before it expires (< ttl)."),
    ] = HOUR
    allow_insecure: Annotated[
        Bool, Meta(description="Allow a plain-http address on a non-loopback host."),
    ] = False


# --------------------------------------------------------------------------- [metrics]


@dataclasses.dataclass(frozen=True)
class MetricsConfig:
    """Prometheus endpoint; ``port = None`` disables it."""

    port: Annotated[
        Annotated[Int, Meta(ge=1, le=65535)] | None,
        Meta(description="Port of /healthz and /metrics (omit to disable)."),
        Hint("omit the key to disable metrics"),
    ] = None
    host: Annotated[Text, Meta(description="Address the metrics endpoint binds to.")] = (
        "127.0.0.1")
    hash_calendar_ids: Annotated[
        Bool, Meta(description="Label calendars with a pseudonym (sha256:...) instead of their "
                               "ids, which are often people's e-mail addresses."),
    ] = False


# --------------------------------------------------------------------------- [[accounts]]


@dataclasses.dataclass(frozen=True)
class CalendarConfig:
    """One explicitly listed calendar; ``interval`` overrides the account's/sync's."""

    id: Annotated[Text, Meta(description="Calendar id.")]
    interval: Annotated[
        Annotated[Seconds, Meta(ge=1, le=MAX_INTERVAL)] | None,
        Meta(description="Poll interval of this calendar, overriding the account's."),
    ] = None


def _calendar_entry(value: Any) -> Any:
    if isinstance(value, str):
        return {"id": _not_blank(value)}
    return value


# A calendar is a table or, for short, its id as a string.
CalendarEntry = Annotated[CalendarConfig, Before(_calendar_entry, accepts=Text)]


def _not_blank_path(value: Any) -> Any:
    if isinstance(value, str):
        _not_blank(value)
    return value


def _subject(value: str) -> str:
    if "@" not in value:
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise ValueError(f"must be the email address of the user to impersonate, got {shown!r}")
    return value


@dataclasses.dataclass(frozen=True)
class AccountConfig:
    """One Google identity and the calendars it mirrors.

    ``credentials`` is an absolute path once loaded (relative paths in the file
    are taken relative to the config file's directory), or ``None`` for anonymous
    access (only allowed in emulator mode).
    """

    name: Annotated[Text, Meta(description="Unique account name, stored with every row.")]
    credentials: Annotated[
        Path | None, Before(_not_blank_path),
        Meta(description="Service-account key or authorized-user token file "
                         "(relative to this file's folder)."),
    ] = None
    subject: Annotated[
        Annotated[Str, Check(_subject)] | None,
        Meta(description="Service accounts: the user to impersonate."),
    ] = None
    calendars: Annotated[
        tuple[CalendarEntry, ...],
        Meta(max_length=100_000,
             description='Calendar ids, or tables {id = "...", interval = N}.'),
    ] = ()
    discover: Annotated[
        Bool, Meta(description="Also mirror every calendar in the account's calendarList."),
    ] = False
    interval: Annotated[
        Annotated[Seconds, Meta(ge=1, le=MAX_INTERVAL)] | None,
        Meta(description="Poll interval of this account's calendars."),
    ] = None


# --------------------------------------------------------------------------- the file


@dataclasses.dataclass(frozen=True)
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
        Meta(max_length=10_000, description="One table per Google identity."),
    ] = ()


@dataclasses.dataclass(frozen=True)
class Config(ConfigFile):
    """The whole validated configuration; ``path`` is ``None`` for built-in defaults.

    ``emulator_endpoint`` is set when ``$GOOGLE_CALENDAR_EMULATOR_HOST`` put the
    endpoint in place (not a config key: a sync announces it with one WARNING).
    """

    path: Path | None = None
    emulator_endpoint: str | None = None

    def account(self, name: str) -> AccountConfig:
        """Return the account called ``name``; ``KeyError`` if there is none.

        Stored rows and CLI options refer to accounts by name, so callers need a
        lookup that fails loudly on a name that left the config.
        """
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(f"no account named {name!r} in the config")


def _schema_hook(tp: Any) -> dict[str, Any]:
    if tp is Path:
        return {"type": "string", "format": "path"}
    raise NotImplementedError


def _polish(schema: dict[str, Any]) -> None:
    """What editors got before msgspec, everywhere below ``schema``: enums typed,
    and every property titled ("Api Endpoint")."""
    if "enum" in schema and all(isinstance(v, str) for v in schema["enum"]):
        schema.setdefault("type", "string")
    for value in schema.values():
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, dict):
                _polish(child)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the TOML file (what ``config.schema.json`` holds).

    msgspec's schema of the models, plus what it leaves out: unknown keys are
    refused (``additionalProperties: false``), a calendar may be given as its id
    (:class:`Before` ``accepts``), and property titles as editors show them.
    """
    import typing

    import msgspec.json

    # round-tripped through JSON: defaults are sometimes left as Python values (``()``)
    generated = msgspec.json.decode(msgspec.json.encode(
        msgspec.json.schema(ConfigFile, schema_hook=_schema_hook)))
    defs: dict[str, Any] = generated["$defs"]
    models = {cls.__name__: cls for cls in (ConfigFile, DatabaseConfig, GoogleConfig,
                                            SyncConfig, StoreConfig, QuotaConfig, WatchConfig,
                                            MetricsConfig, CalendarConfig, AccountConfig)}
    assert set(defs) <= set(models), sorted(defs)
    for name, definition in defs.items():
        hints = typing.get_type_hints(models[name], include_extras=True)
        definition["additionalProperties"] = False
        if not definition.get("required"):
            definition.pop("required", None)
        for key, prop in definition["properties"].items():
            if "$ref" not in prop:
                prop["title"] = key.replace("_", " ").title()
            array = typing.get_args(hints[key])[0] if typing.get_origin(
                hints[key]) is Annotated else hints[key]
            if typing.get_origin(array) is not tuple:
                continue
            item = typing.get_args(array)[0]
            before = [m for m in getattr(item, "__metadata__", ()) if isinstance(m, Before)]
            if before and before[0].accepts is not None:
                accepts = msgspec.json.schema(before[0].accepts, schema_hook=_schema_hook)
                prop["items"] = {"anyOf": [accepts, prop["items"]]}
    _polish(defs)
    top = defs.pop("ConfigFile")
    return {
        **{k: v for k, v in top.items() if k not in ("title", "description")},
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "calendar-reconciler configuration",
        "description": "Generated from reconciler/config/models.py by "
                       "`python -m reconciler.config --schema`; do not edit.",
        "$defs": defs,
    }
