"""Find, read and validate the config file; the I/O edge of the config package.

* **Which file**: ``-c/--config``, else ``$RECONCILER_CONFIG``, else
  ``./reconciler.toml`` (:func:`resolve_config_path`, the one precedence rule).
* **All problems at once**: every section and account is validated even when
  another one failed, then one :class:`~reconciler.errors.ConfigError` carries
  every problem, one line each (``ConfigError.problems``).
* **Bounded input**: TOML nested deeper than :data:`MAX_DEPTH` arrays/tables is
  refused before validation (checked iteratively); a document so deep that
  ``tomllib`` itself recurses too far is one line too, never a traceback.
* **Environment overrides**: ``$RECONCILER_DATABASE_URL`` replaces
  ``database.url``; ``$GOOGLE_CALENDAR_EMULATOR_HOST=host:port`` sends every API
  call to ``http://host:port/calendar/v3/`` and makes every account anonymous.
  Problems in an override name the variable instead of the file.
* **Paths do not depend on the working directory**: relative ``credentials`` and
  ``sqlite:///`` paths in a file are resolved against the file's folder; a
  relative SQLite path from the environment or the built-in default against the
  working directory. A loaded config only holds absolute paths.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from reconciler import dburl
from reconciler.config import rules, validate
from reconciler.config.models import (
    AccountConfig,
    Config,
    ConfigFile,
    DatabaseConfig,
    GoogleConfig,
    MetricsConfig,
    QuotaConfig,
    StoreConfig,
    SyncConfig,
    WatchConfig,
)
from reconciler.config.problems import Loc, Problem, describe, format_key, from_errors
from reconciler.config.problems import unknown_key as unknown_key_message
from reconciler.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ENV_CONFIG",
    "ENV_DATABASE_URL",
    "ENV_EMULATOR_HOST",
    "MAX_DEPTH",
    "config_dir",
    "config_error",
    "load_config",
    "parse_config",
    "resolve_config_path",
]

DEFAULT_CONFIG_PATH = Path("reconciler.toml")
ENV_CONFIG = "RECONCILER_CONFIG"
ENV_DATABASE_URL = "RECONCILER_DATABASE_URL"
ENV_EMULATOR_HOST = rules.ENV_EMULATOR_HOST
MAX_DEPTH = 8  # arrays/tables inside the document; the config itself needs 4

_SECTIONS: dict[str, type] = {
    "database": DatabaseConfig,
    "google": GoogleConfig,
    "sync": SyncConfig,
    "store": StoreConfig,
    "quota": QuotaConfig,
    "watch": WatchConfig,
    "metrics": MetricsConfig,
}


# A config can hold thousands of the same mistake (a generated calendar list):
# this many lines are shown, then one line counting the rest.
MAX_PROBLEM_LINES = 50


def config_error(problems: list[str]) -> ConfigError:
    """One :class:`ConfigError` for one or more problem lines (at most
    :data:`MAX_PROBLEM_LINES`, and a last line counting the ones left out)."""
    if len(problems) > MAX_PROBLEM_LINES:
        left = len(problems) - MAX_PROBLEM_LINES
        problems = [*problems[:MAX_PROBLEM_LINES],
                    f"... and {left} more problem{'s' if left > 1 else ''} like these"]
    summary = problems[0] if len(problems) == 1 else (
        f"{problems[0]} (and {len(problems) - 1} more problem"
        f"{'s' if len(problems) > 2 else ''})")
    return ConfigError(summary, problems=list(problems))


def too_deep(data: Mapping[str, Any], limit: int = MAX_DEPTH) -> Loc | None:
    """The first key path nested deeper than ``limit`` containers, else ``None``.

    Iterative (an explicit stack), so any depth is safe to check.
    """
    stack: list[tuple[Loc, Any, int]] = [((), data, 0)]
    while stack:
        loc, value, depth = stack.pop()
        if isinstance(value, dict):
            children: list[tuple[str | int, Any]] = list(value.items())
        elif isinstance(value, list):
            children = list(enumerate(value))
        else:
            continue
        if depth > limit:
            return loc
        stack.extend(((*loc, key), child, depth + 1) for key, child in reversed(children))
    return None


class _Checked(NamedTuple):
    """One table validated: the model (partial when ``problems``), and what failed."""

    model: Any
    problems: list[Problem]
    defaulted: list[Loc]  # keys left at their defaults in the partial model


def _validate(cls: type, raw: Mapping[str, Any], prefix: Loc) -> _Checked:
    """Validate one table; on failure also build a partial model (bad keys left at
    their defaults) so the cross-key rules can still report their problems."""
    model, errors = validate.check(cls, raw)
    if not errors:
        return _Checked(model, [], [])
    problems = from_errors(cls, errors, prefix)
    bad = {err.loc[0] for err in errors if err.loc}
    partial, _ = validate.check(cls, {k: v for k, v in raw.items() if k not in bad})
    known = {f.name for f in dataclasses.fields(cls)}
    return _Checked(partial, problems, [(*prefix, key) for key in bad if key in known])


def _new_rule_problems(rule_problems: list[Problem], defaulted: list[Loc]) -> list[Problem]:
    """Rule problems that do not depend on a key left at its default in a partial
    model (that key's own problem is already reported)."""
    return [p for p in rule_problems
            if not any(loc[:len(p.loc)] == p.loc or p.loc[:len(loc)] == loc
                       for loc in defaulted)]


def _emulator_endpoint(env: Mapping[str, str]) -> tuple[str | None, list[Problem]]:
    value = env.get(ENV_EMULATOR_HOST, "").strip()
    if not value:
        return None, []
    parsed = dburl.parse_host_port(value)
    if parsed is None:
        return None, [Problem(("google", "api_endpoint"),
                              f"must be host:port (e.g. 127.0.0.1:8085), got {describe(value)}",
                              source=f"${ENV_EMULATOR_HOST}")]
    host, port = parsed
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/calendar/v3/", []


def _database(
    raw: dict[str, Any], env: Mapping[str, str], base_dir: Path
) -> tuple[DatabaseConfig, list[Problem]]:
    env_url = env.get(ENV_DATABASE_URL, "").strip()
    if not env_url:
        database, problems, _ = _validate(DatabaseConfig, raw, ("database",))
        if database is None:
            return DatabaseConfig(), problems
        return DatabaseConfig(dburl.absolute_sqlite_url(database.url, base_dir)), problems
    _, problems, _ = _validate(DatabaseConfig, {k: v for k, v in raw.items() if k != "url"},
                            ("database",))
    problem = dburl.url_problem(env_url)
    if problem:
        problems.append(Problem(("database", "url"), problem, source=f"${ENV_DATABASE_URL}"))
        return DatabaseConfig(), problems
    return DatabaseConfig(dburl.absolute_sqlite_url(env_url, Path.cwd())), problems


def _credentials(index: int, account: AccountConfig, base_dir: Path,
                 check_files: bool = True) -> tuple[Path, list[Problem]]:
    assert account.credentials is not None
    loc: Loc = ("accounts", index, "credentials")
    try:
        path = (base_dir / account.credentials.expanduser()).absolute()
        found = path.is_file()
    except (OSError, RuntimeError) as exc:  # a name too long; "~nosuchuser/..."
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return base_dir / account.credentials, [
            Problem(loc, f"cannot use {describe(str(account.credentials))}: {reason}")]
    if found or not check_files:
        return path, []
    return path, [Problem(loc, f"file {path} not found "
                               "(relative paths are relative to the config file's directory)")]


def _accounts(
    raw: Any, *, anonymous_ok: bool, env_emulator: bool, base_dir: Path, check_files: bool = True
) -> tuple[tuple[AccountConfig, ...], list[Problem]]:
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        return (), [Problem(("accounts",), "must be an array of tables ([[accounts]]), "
                            f"got {describe(raw)}")]
    if not raw:
        return (), [Problem(("accounts",), "at least one [[accounts]] table is required")]
    validated: list[tuple[int, AccountConfig]] = []
    shape: dict[int, _Checked] = {}
    for index, table in enumerate(raw):
        shape[index] = _validate(AccountConfig, table, ("accounts", index))
        if shape[index].model is not None:
            validated.append((index, shape[index].model))
    by_index = {p.loc[1]: p for p in rules.duplicate_names(validated)}
    problems: list[Problem] = []
    accounts: list[AccountConfig] = []
    good = dict(validated)
    for index, table in enumerate(raw):
        problems.extend(shape[index].problems)
        account = good.get(index)
        if account is None:
            continue
        found = [by_index[index]] if index in by_index else []
        if env_emulator:
            account = dataclasses.replace(account, credentials=None)
        elif account.credentials is not None:
            path, missing = _credentials(index, account, base_dir, check_files)
            found.extend(missing)
            account = dataclasses.replace(account, credentials=path)
        found.extend(rules.account_problems(index, account, calendars_given="calendars" in table,
                                            anonymous_ok=anonymous_ok))
        problems.extend(_new_rule_problems(found, shape[index].defaulted))
        accounts.append(account)
    return tuple(accounts), problems


def _build(
    data: Mapping[str, Any],
    *,
    path: Path | None,
    base_dir: Path,
    env: Mapping[str, str],
    require_accounts: bool,
    check_files: bool = True,
) -> tuple[Config | None, list[Problem]]:
    problems: list[Problem] = []
    known = [f.name for f in dataclasses.fields(ConfigFile)]
    problems += [Problem((key,), unknown_key_message(key, known, None))
                 for key in data if key not in known]
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            problems.append(Problem((name,), f"must be a table ([{name}]), got {describe(raw)}"))
            raw = {}
        if name == "database":
            sections[name], found = _database(raw, env, base_dir)
        else:
            checked = _validate(cls, raw, (name,))
            sections[name], found = checked.model, checked.problems
            if name == "watch" and checked.model is not None:
                found += _new_rule_problems(rules.watch_problems(checked.model), checked.defaulted)
        problems += found
    endpoint, found = _emulator_endpoint(env)
    problems += found
    google = sections["google"]
    if endpoint is not None and google is not None:
        google = sections["google"] = dataclasses.replace(google, api_endpoint=endpoint)
    accounts: tuple[AccountConfig, ...] = ()
    if "accounts" in data or require_accounts:
        if "accounts" not in data:
            problems.append(Problem(("accounts",), "at least one [[accounts]] table is required"))
        else:
            accounts, found = _accounts(
                data["accounts"], anonymous_ok=google is None or google.emulator,
                env_emulator=endpoint is not None, base_dir=base_dir, check_files=check_files)
            problems += found
    if problems:
        return None, problems
    return Config(path=path, accounts=accounts, **sections), []


def _raise(problems: list[Problem], source: str) -> ConfigError:
    return config_error([p.line(source) for p in problems])


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


def config_dir(path: str | Path) -> Path:
    """The folder relative paths in the config file ``path`` are resolved against.

    Not symlink-resolved: a config reached through a link reads its neighbours
    beside the link, which is where an operator put them.
    """
    return Path(os.path.abspath(path)).parent


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = "TOML"
        if message.endswith(")") and "(at line " in message:
            message, _, position = message[:-1].rpartition(" (at ")
            where = position
        raise config_error([f"{source}: {where}: invalid TOML: {message}"]) from None
    except RecursionError:
        raise config_error([f"{source}: invalid TOML: arrays or tables nested too deeply "
                            f"(at most {MAX_DEPTH} levels)"]) from None
    deep = too_deep(data)
    if deep is not None:
        raise config_error([f"{source}: {format_key(deep)}: nested deeper than {MAX_DEPTH} "
                            "levels of arrays or tables"])
    return data


def parse_config(
    text: str,
    *,
    path: str | Path = DEFAULT_CONFIG_PATH,
    env: Mapping[str, str] | None = None,
    check_files: bool = True,
) -> Config:
    """Validate TOML ``text`` as if read from ``path`` (which need not exist).

    Used by :func:`load_config` and by tools holding a config in memory (the
    demo); relative paths resolve against ``path``'s folder. ``check_files=False``
    accepts credentials files that do not exist yet (``config check
    --skip-credentials`` before the key is installed).
    """
    env = os.environ if env is None else env
    path = Path(path)
    source = str(path)
    data = _parse_toml(text, source)
    config, problems = _build(data, path=path, base_dir=config_dir(path),
                              env=env, require_accounts=True, check_files=check_files)
    if config is None:
        raise _raise(problems, source)
    return config


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    allow_missing: bool = False,
    check_files: bool = True,
) -> Config:
    """Find, read and validate the config; raise ``ConfigError`` listing every problem.

    ``path`` is the ``-c/--config`` value (``None`` when not given) and ``env``
    defaults to ``os.environ``; both are parameters so tests need not touch the
    process state. With ``allow_missing=True`` (commands such as ``demo`` and
    ``emulator`` that work without a config) a missing *default* file
    ``./reconciler.toml`` yields the built-in defaults, with no accounts, plus any
    environment overrides (a relative SQLite path then means the working
    directory). A file named by ``-c`` or ``$RECONCILER_CONFIG`` must always
    exist: the user asked for it.
    """
    env = os.environ if env is None else env
    chosen, how = _resolve(path, env)
    is_default = chosen is DEFAULT_CONFIG_PATH
    shown = f"./{chosen}" if is_default else str(chosen)
    if not chosen.exists():
        if allow_missing and is_default:
            config, problems = _build({}, path=None, base_dir=Path.cwd(), env=env,
                                      require_accounts=False)
            if config is None:
                raise _raise(problems, shown)
            return config
        raise config_error([f"config file {shown} not found ({how})"])
    try:
        raw = chosen.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise config_error([f"{chosen}: cannot read config file: {reason}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise config_error([f"{chosen}: byte {exc.start}: invalid TOML: the file is not UTF-8"]
                           ) from None
    return parse_config(text, path=chosen, env=env, check_files=check_files)
