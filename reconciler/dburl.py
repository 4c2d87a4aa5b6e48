"""Database URLs and ``host:port`` strings: the one place that parses them.

Config validation, the store and the watch receiver all read the same strings,
so they share one scheme table, one password redactor and one ``host:port``
parser here instead of each keeping its own (they used to disagree: one table
said ``postgres``, another ``postgresql``).

Invariants:

* :data:`SCHEMES` maps every accepted scheme (case-insensitive) to one of three
  backends, ``sqlite``, ``mysql`` or ``postgresql``; aliases are folded only here.
* :func:`redact_url` never returns a password (user info, password-like query
  keys) and never echoes a value without ``://``; every message, repr or log
  line that shows a database URL goes through it.
* :func:`absolute_sqlite_url` is the only place a relative SQLite path is made
  absolute, so every later database error names the absolute file.

Pure functions, no I/O.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

__all__ = [
    "SCHEMES",
    "Backend",
    "absolute_sqlite_url",
    "backend_of",
    "driver_url",
    "parse_host_port",
    "redact_url",
    "sqlite_path",
    "url_problem",
]

Backend = Literal["sqlite", "mysql", "postgresql"]

SCHEMES: Mapping[str, Backend] = {
    "sqlite": "sqlite",
    "mysql": "mysql",
    "mysql+pymysql": "mysql",
    "mariadb": "mysql",
    "postgres": "postgresql",
    "postgresql": "postgresql",
}
_EXAMPLES = (
    "sqlite:///reconciler.db, mysql://user:pass@host:3306/name "
    "or postgresql://user:pass@host/name"
)
MEMORY = ":memory:"


def _scheme(url: str) -> str:
    return url.partition("://")[0].lower() if "://" in url else ""


def backend_of(url: str) -> Backend | None:
    """The backend a URL names (aliases folded), or ``None`` for an unknown scheme."""
    return SCHEMES.get(_scheme(url))


def driver_url(url: str) -> str:
    """The URL with its scheme replaced by the one Peewee's ``db_url`` understands."""
    backend = backend_of(url)
    if backend is None:
        return url
    return backend + url[len(_scheme(url)):]


# Query keys whose values are secrets (compared lower-cased, ``-`` and ``_`` dropped,
# as a substring: ``sslpassword``, ``auth_token`` and ``api-key`` are all masked).
SECRET_KEY_PARTS = ("pass", "pwd", "secret", "token", "key", "auth", "cred")
MASK = "***"
NOT_A_URL = "(a value without '://', not shown: it may hold a password)"


def _secret_key(key: str) -> bool:
    folded = key.lower().replace("-", "").replace("_", "")
    return any(part in folded for part in SECRET_KEY_PARTS)


def _split_userinfo(rest: str) -> tuple[str | None, str]:
    """``rest`` (after ``://``) split into user info (``None``: none) and the remainder.

    The user info ends at the last ``@`` before the query; when there is none
    there, an ``@`` after a ``?`` with no ``=`` before it also counts (a password
    holding ``?`` or ``#``, which a URL parser would cut into query or fragment).
    A password holding ``/`` ends up in the "path" of a parser; it is still
    before that last ``@`` and so still masked.
    """
    head = rest.split("?", 1)[0]
    at = head.rfind("@")
    if at < 0:
        at = rest.rfind("@")
        if at < 0 or "=" in rest[:at]:
            return None, rest
    return rest[:at], rest[at + 1:]


def _redact_query(query: str) -> str:
    parts = []
    for item in query.split("&"):
        key, eq, _value = item.partition("=")
        parts.append(f"{key}={MASK}" if eq and _secret_key(key) else item)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """``url`` safe for messages, logs and reprs: no password anywhere.

    Rebuilt from its parts: the user info keeps only the user name (a password
    becomes ``***``; a user info holding ``/``, ``?`` or ``#`` is masked whole),
    password-like query keys (:data:`SECRET_KEY_PARTS`: ``password``,
    ``passwd``, ``pwd``, ``secret``, ``token``, ``sslkey``, ...) keep their key
    and lose their value, a fragment is dropped. A value without ``://`` is
    never echoed (it may be a bare password pasted into the wrong place).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return NOT_A_URL
    if SCHEMES.get(scheme.lower()) == "sqlite":  # a file path: an "@" in it is no user info
        userinfo, remainder = None, rest
    else:
        userinfo, remainder = _split_userinfo(rest)
    remainder = remainder.split("#", 1)[0]
    location, qmark, query = remainder.partition("?")
    shown = f"{scheme}://"
    if userinfo is not None:
        user, colon, _password = userinfo.partition(":")
        if any(c in user for c in "/?#@"):
            user, colon = MASK, ""
        shown += f"{user}:{MASK}@" if colon else f"{user}@"
    shown += location
    if qmark:
        shown += "?" + _redact_query(query)
    return shown


def _userinfo_problem(url: str) -> str | None:
    """A user info a URL parser would cut short (``/``, ``?`` or ``#`` in the password)."""
    rest = url.partition("://")[2]
    userinfo, _ = _split_userinfo(rest)
    if userinfo is not None and any(c in userinfo for c in "/?#"):
        return ("holds '/', '?' or '#' before the host: percent-encode them in the "
                "user name and password (%2F, %3F, %23)")
    return None


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///`` URL (``:memory:`` possible), else ``None``."""
    if backend_of(url) != "sqlite":
        return None
    return urlsplit(url).path[1:]


def absolute_sqlite_url(url: str, base_dir: str | os.PathLike[str]) -> str:
    """A SQLite URL whose relative path is resolved against ``base_dir``.

    Other backends, absolute paths and ``:memory:`` come back unchanged. The
    result is normalised (``..`` folded) so messages show a plain path.
    """
    path = sqlite_path(url)
    if not path or path == MEMORY or os.path.isabs(path):
        return url
    query = url.partition("?")[2]
    absolute = os.path.normpath(os.path.join(os.path.abspath(base_dir), path))
    return f"sqlite:///{absolute}" + (f"?{query}" if query else "")


def url_problem(url: str) -> str | None:
    """What is wrong with a database URL (never echoing its password), or ``None``."""
    if "://" not in url:
        return f"must be a URL such as {_EXAMPLES}, got {NOT_A_URL}"
    scheme = url.partition("://")[0]
    backend = SCHEMES.get(scheme.lower())
    if backend is None:
        return f"unsupported scheme {scheme!r} (use {', '.join(SCHEMES)})"
    if backend != "sqlite":
        cut = _userinfo_problem(url)
        if cut:
            return cut
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
        port = parts.port
    except ValueError:
        return "has an invalid port (must be 1-65535)"
    if port == 0:
        return "has an invalid port (must be 1-65535)"
    if not parts.path.strip("/"):
        return f"names no database (e.g. {scheme}://user:pass@host/name)"
    return None


def parse_host_port(value: str, *, allow_zero: bool = False) -> tuple[str, int] | None:
    """Split ``host:port`` or ``[v6]:port``; ``None`` when malformed or out of range.

    The port must be 1..65535 (0, "any free port", only with ``allow_zero``).
    An IPv6 host comes back without its brackets.
    """
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":"):
            return None
        port_text = rest[1:]
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or ":" in host:
            return None
    if not host or not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        return None
    port = int(port_text)
    if not (0 if allow_zero else 1) <= port <= 65535:
        return None
    return host, port
