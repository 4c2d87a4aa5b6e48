"""The reconciler's configuration: typed models, validation and loading.

Every other part of the service reads its settings from the frozen models
re-exported here and never touches TOML or the environment itself, so a bad
setting stops the process at start-up (exit status 2) with one line per
problem naming the file and the key, instead of failing minutes later inside a
sync pass.

* :mod:`.models`: the models (frozen stdlib dataclasses whose ``Annotated``
  types carry ``msgspec.Meta`` bounds and descriptions) with every key's type,
  bounds and description; ``config.schema.json`` is generated from them
  (``python -m reconciler.config --schema``).
* :mod:`.validate`: checks a TOML table against a model and collects every
  error (msgspec checks each value; it alone would stop at the first).
* :mod:`.rules`: pure rules that relate several keys.
* :mod:`.problems`: validation errors in the user's words, one line each.
* :mod:`.loader`: which file, reading, environment overrides, paths.

Secrets (``watch.secret``, the password in a database URL) never appear in
error messages or in ``repr()``.
"""

from reconciler.config.loader import (
    DEFAULT_CONFIG_PATH,
    ENV_CONFIG,
    ENV_DATABASE_URL,
    ENV_EMULATOR_HOST,
    MAX_DEPTH,
    announce_emulator,
    config_dir,
    load_config,
    parse_config,
    resolve_config_path,
)
from reconciler.config.models import (
    AccountConfig,
    CalendarConfig,
    Config,
    DatabaseBackend,
    DatabaseConfig,
    GoogleConfig,
    MetricsConfig,
    QuotaConfig,
    StoreConfig,
    SyncConfig,
    SyncMode,
    WatchConfig,
    json_schema,
)

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ENV_CONFIG",
    "ENV_DATABASE_URL",
    "ENV_EMULATOR_HOST",
    "MAX_DEPTH",
    "AccountConfig",
    "CalendarConfig",
    "Config",
    "DatabaseBackend",
    "DatabaseConfig",
    "GoogleConfig",
    "MetricsConfig",
    "QuotaConfig",
    "StoreConfig",
    "SyncConfig",
    "SyncMode",
    "WatchConfig",
    "announce_emulator",
    "config_dir",
    "json_schema",
    "load_config",
    "parse_config",
    "resolve_config_path",
]
