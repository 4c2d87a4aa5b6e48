"""Rules that relate several config keys; pure functions over validated models.

The models check each key on its own (type, range, shape). What needs more
than one key lives here: watch mode needs an address and a strong secret,
``renew_margin`` must be shorter than ``ttl``, account names are unique, an
account mirrors something, a calendar is listed once per account, credentials
are required outside emulator mode. Each function returns problems located by
key; none raises and none reads files (the credentials file check is the
loader's, at the edge).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

from reconciler.config.models import AccountConfig, WatchConfig
from reconciler.config.problems import Loc, Problem, describe

__all__ = [
    "ENV_ALLOW_REMOTE_EMULATOR",
    "ENV_EMULATOR_HOST",
    "account_problems",
    "duplicate_names",
    "emulator_problems",
    "insecure_url_problem",
    "is_loopback",
    "remote_emulator_allowed",
    "watch_problems",
]

ENV_EMULATOR_HOST = "GOOGLE_CALENDAR_EMULATOR_HOST"
# The explicit opt-in that lets the emulator switch (and plain-http secrets) reach
# a host other than this machine: a test rig whose emulator runs elsewhere.
ENV_ALLOW_REMOTE_EMULATOR = "RECONCILER_ALLOW_REMOTE_EMULATOR"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_is_loopback = is_loopback


def remote_emulator_allowed(env: Mapping[str, str]) -> bool:
    """Whether ``$RECONCILER_ALLOW_REMOTE_EMULATOR`` is set to ``1`` (the only "yes")."""
    return env.get(ENV_ALLOW_REMOTE_EMULATOR, "").strip() == "1"


def insecure_url_problem(url: str, *, allow_remote: bool) -> str | None:
    """Why secrets must not go to ``url`` (None when they may).

    https always; plain http only to a loopback host, or anywhere when the
    operator opted in with ``$RECONCILER_ALLOW_REMOTE_EMULATOR=1``.
    """
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname and (
            is_loopback(parts.hostname) or allow_remote):
        return None
    return ("must be an https URL (plain http only to a loopback host, or with "
            f"${ENV_ALLOW_REMOTE_EMULATOR}=1)")


def emulator_problems(host: str, *, allow_remote: bool, keyed: list[int],
                      purge_removed: bool) -> list[str]:
    """Why ``$GOOGLE_CALENDAR_EMULATOR_HOST`` (pointing at ``host``) is refused, at most one line.

    The switch is for tests: it drops credentials and speaks plain http, so it
    must not silently take over a production config. Refused when the host is
    not loopback (without the opt-in), when an account names a credentials
    file (a real deployment), and with ``[sync] purge_removed`` (whoever answers
    would decide which rows get deleted).
    """
    reasons = []
    if not is_loopback(host) and not allow_remote:
        reasons.append(f"its host {host} is not loopback (set "
                       f"${ENV_ALLOW_REMOTE_EMULATOR}=1 to allow a remote emulator)")
    if keyed:
        more = f" (and {len(keyed) - 1} more)" if len(keyed) > 1 else ""
        reasons.append(f"accounts[{keyed[0]}]{more} names a credentials file")
    if purge_removed:
        reasons.append("sync.purge_removed = true")
    if not reasons:
        return []
    return [f"refused: {'; '.join(reasons)}; the emulator switch is for tests: unset "
            "it, or point [google] api_endpoint at a private endpoint instead"]


def watch_problems(watch: WatchConfig) -> list[Problem]:
    """What is wrong with ``[watch]`` as a whole (address and secret when enabled)."""
    problems: list[Problem] = []
    if watch.renew_margin >= watch.ttl:
        problems.append(Problem(("watch", "renew_margin"),
                                f"must be less than watch.ttl ({watch.ttl}), "
                                f"got {watch.renew_margin}"))
    if not watch.enabled:
        return problems
    if watch.address is None:
        problems.append(Problem(("watch", "address"), "is required when watch.enabled = true"))
    else:
        parts = urlsplit(watch.address)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(Problem(("watch", "address"), "must be an https URL that Google "
                                    f"can reach, got {describe(watch.address)}"))
        elif (parts.scheme != "https" and not watch.allow_insecure
              and not _is_loopback(parts.hostname)):
            problems.append(Problem(("watch", "address"), "must use https unless its host is "
                                    "loopback or watch.allow_insecure = true"))
    secret = watch.secret
    if secret is None:
        problems.append(Problem(("watch", "secret"), "is required when watch.enabled = true"))
    elif secret.strip().lower() == "change-me":
        problems.append(Problem(("watch", "secret"),
                                "is still the placeholder 'change-me': set a random secret"))
    elif len(secret) < 16:
        problems.append(Problem(("watch", "secret"),
                                f"must be at least 16 characters long (has {len(secret)})"))
    return problems


def duplicate_names(accounts: list[tuple[int, AccountConfig]]) -> list[Problem]:
    """An account name used twice; each repeat names the first use."""
    first: dict[str, int] = {}
    problems = []
    for index, account in accounts:
        if account.name in first:
            problems.append(Problem(("accounts", index, "name"),
                                    f"duplicate account name {account.name!r} "
                                    f"(also accounts[{first[account.name]}])"))
        else:
            first[account.name] = index
    return problems


def account_problems(
    index: int, account: AccountConfig, *, calendars_given: bool, anonymous_ok: bool
) -> list[Problem]:
    """What is wrong with one account beyond its keys' own checks.

    ``calendars_given``: the table has a ``calendars`` key (an empty array is a
    different mistake from none at all); ``anonymous_ok``: an API endpoint
    override is in effect, so credentials may be omitted.
    """
    here: Loc = ("accounts", index)
    problems = []
    if account.credentials is None and not anonymous_ok:
        problems.append(Problem((*here, "credentials"),
                                "is required (a service-account key or authorized-user token "
                                f"file) unless ${ENV_EMULATOR_HOST} or google.api_endpoint is set"))
    if not account.calendars and not account.discover:
        if calendars_given:
            problems.append(Problem((*here, "calendars"),
                                    "is empty: list calendar ids or set discover = true"))
        else:
            problems.append(Problem(here, "lists no calendars: set calendars = [...] or "
                                    "discover = true"))
    first: dict[str, int] = {}
    for i, calendar in enumerate(account.calendars):
        if calendar.id in first:
            problems.append(Problem((*here, "calendars", i),
                                    f"calendar {calendar.id!r} is listed twice in this account "
                                    f"(also accounts[{index}].calendars[{first[calendar.id]}])"))
        else:
            first[calendar.id] = i
    return problems
