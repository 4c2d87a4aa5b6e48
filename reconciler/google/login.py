"""``reconciler auth login``: obtain an authorized-user token file with the installed-app flow.

Why: without this a user has to leave the tool (gcloud blocks non-Cloud scopes
without a client id file) to get the one file an account needs. This runs
google-auth-oauthlib's ``InstalledAppFlow`` as Google recommends for desktop
clients: a loopback redirect to a free port, PKCE, ``access_type=offline`` and
``prompt=consent`` so that a refresh token is always returned.

Invariants:

- The output is a complete authorized-user file (``type``, ``client_id``,
  ``client_secret``, ``refresh_token``, ``token_uri``, ``token``, ``expiry``,
  ``scopes``), written atomically with mode 0600, under the token file's lock,
  keeping an existing file's owner and group. Keys of an existing
  authorized-user file that the login does not produce (``quota_project_id``,
  unknown keys) are kept; an existing file that is not a token (a key, the
  config) is replaced only with ``force``.
- PKCE (S256) is asked for explicitly, never left to a library default.
- Plain-HTTP OAuth endpoints are allowed only on loopback hosts (the emulator).
- Every failure a user can cause is one line (ConfigError: exit 2 for a bad
  client-secrets file or config; AuthFailed: exit 1 for a refused consent).
- No click here: the command line lives in ``reconciler/cli/auth.py``.
"""

from __future__ import annotations

import json
import os
import socket
import tomllib
import urllib.parse
import webbrowser
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from reconciler.config import config_dir, resolve_config_path
from reconciler.errors import AuthFailed, ConfigError, TransientGoogleError, first_line
from reconciler.google.credentials import (
    SCOPES,
    token_file_lock,
    write_owner,
    write_secret_file,
)

OpenBrowser = Callable[[str], object]
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
PROMPT = "Open this URL in a browser and allow read access to your calendars:\n{url}"
NO_BROWSER_PROMPT = (
    "Open this URL in a browser on any machine and allow read access to your calendars:\n{url}\n"
    "The browser then goes to a http://localhost:... address that does not load; copy that "
    "whole address from the address bar (or only its code=... value) and paste it here:")
SUCCESS = "reconciler: the token was received; you may close this window."


def _is_loopback_http(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS


def load_client_config(path: Path) -> dict[str, Any]:
    """The OAuth client JSON from the Cloud console (a 'Desktop app' client), validated."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"client secrets file {path} does not exist (download it from the Cloud "
                          "console: APIs & Services > Credentials > your OAuth client)") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"client secrets file {path} is not readable JSON: {exc}") from None
    section = next((data[k] for k in ("installed", "web") if isinstance(data, dict)
                    and isinstance(data.get(k), dict)), None)
    if section is None:
        raise ConfigError(f"client secrets file {path} is not an OAuth client file (expected an "
                          "'installed' section: create an OAuth client of type 'Desktop app')")
    missing = [k for k in ("client_id", "client_secret", "auth_uri", "token_uri")
               if not isinstance(section.get(k), str) or not section[k]]
    if missing:
        raise ConfigError(f"client secrets file {path} lacks {', '.join(missing)}")
    for key in ("auth_uri", "token_uri"):
        url = section[key]
        if not (url.startswith("https://") or _is_loopback_http(url)):
            raise ConfigError(f"client secrets file {path}: {key} {url!r} must be an https URL")
    return dict(data)


def account_credentials_path(name: str, config_path: str | None,
                             env: Mapping[str, str] | None = None) -> Path:
    """The token file that account ``name`` names in the config (it need not exist yet).

    The config is found as every command finds it (``-c``, ``$RECONCILER_CONFIG``,
    ``./reconciler.toml``); a relative ``credentials`` is relative to the config file.
    """
    env = os.environ if env is None else env
    chosen = resolve_config_path(config_path, env)
    try:
        data = tomllib.loads(chosen.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {chosen} does not exist (give -c FILE, or use --output "
                          "FILE instead of --account)") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {chosen}: {exc}") from None
    found = data.get("accounts")
    accounts: list[Any] = found if isinstance(found, list) else []
    names = [a.get("name") for a in accounts if isinstance(a, dict)]
    account = next((a for a in accounts if isinstance(a, dict) and a.get("name") == name), None)
    if account is None:
        known = ", ".join(str(n) for n in names if n) or "none"
        raise ConfigError(f"config file {chosen}: no account named {name!r} (accounts: {known})")
    raw = account.get("credentials")
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"config file {chosen}: account {name} has no `credentials` key; add "
                          f'credentials = "{name}-token.json" to it, or use --output FILE')
    return (config_dir(chosen) / Path(raw).expanduser()).absolute()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (for a loopback redirect URI)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _CallableBrowser(webbrowser.BaseBrowser):
    """A ``webbrowser`` entry that hands the URL to a function (a headless test, a kiosk)."""

    def __init__(self, opener: OpenBrowser) -> None:
        super().__init__("reconciler-callable")
        self._opener = opener

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self._opener(url)
        return True


def _browser_name(open_browser: OpenBrowser | None) -> str | None:
    """The ``webbrowser`` name the flow should open, or None when no browser can be opened."""
    if open_browser is not None:
        name = f"reconciler-callable-{id(open_browser)}"
        webbrowser.register(name, None, _CallableBrowser(open_browser))
        return name
    try:
        webbrowser.get()
    except webbrowser.Error:
        return None
    return ""


def token_file_json(credentials: Any, client: Mapping[str, Any],
                    existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """The authorized-user file for freshly granted ``credentials`` (pure).

    Keys of an ``existing`` authorized-user file are kept unless the login sets them.
    """
    if not credentials.refresh_token:
        raise AuthFailed("Google returned no refresh token; revoke the app's access at "
                         "https://myaccount.google.com/permissions and run the login again")
    granted = json.loads(credentials.to_json())
    out: dict[str, Any] = {"type": "authorized_user"}
    if existing and existing.get("type") == "authorized_user":
        out.update(existing)
    out.update({
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "refresh_token": credentials.refresh_token,
        "token_uri": client["token_uri"],
        "token": credentials.token,
        "expiry": granted.get("expiry"),
        "scopes": granted.get("scopes") or SCOPES,
    })
    return out


def _existing(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def not_a_token(path: Path) -> str | None:
    """What ``path`` is when it exists and is not an authorized-user token file, else None.

    ``auth login`` replaces only token files without ``--force``: a mistyped
    ``--output`` must not destroy a service-account key or the config.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if not raw.strip():
        return None  # an empty file (made by `touch` for the permissions) is fine
    try:
        data = json.loads(raw)
    except ValueError:
        return "it is not JSON (a config file?)"
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "authorized_user":
        return None
    if kind == "service_account":
        return "it is a service-account key"
    return f"it is JSON of type {kind!r}, not 'authorized_user'" if kind else (
        "it is JSON without type 'authorized_user'")


def pasted_code(pasted: str) -> tuple[str | None, str | None]:
    """What the user pasted: ``(redirect address, None)`` or ``(None, code)`` (pure).

    The whole address (``http://localhost:PORT/?state=...&code=...``, with or
    without its scheme) is checked for the login's ``state``; its query alone
    (``code=...&scope=...``, ``?state=...&code=...``) or the bare code is
    exchanged as a code (PKCE's verifier still binds it to this login).
    """
    text = pasted.strip()
    if "://" in text or text.startswith("localhost"):
        return ("http://" + text if "://" not in text else text), None
    if "code=" in text:
        codes = urllib.parse.parse_qs(text.lstrip("?")).get("code")
        return None, codes[0] if codes else None
    return None, urllib.parse.unquote(text) if text else None


def _fetch_pasted(flow: Any, pasted: str) -> None:
    address, code = pasted_code(pasted)
    if address is not None:
        # oauthlib insists on https for the redirect it parses; the loopback redirect is http.
        flow.fetch_token(authorization_response="https://" + address.split("://", 1)[1])
    elif code:
        flow.fetch_token(code=code)
    else:
        raise AuthFailed("nothing was pasted; run the login again and paste the redirected address")


def login(client_secrets: Path, output: Path, *, no_browser: bool = False,
          force: bool = False, open_browser: OpenBrowser | None = None,
          read_line: Callable[[], str] = input,
          echo: Callable[[str], None] = print,
          timeout: float | None = 300) -> dict[str, Any]:
    """Run the installed-app flow and write the token file; returns what was written.

    ``open_browser`` replaces the system browser (it receives the authorization
    URL); with ``no_browser`` the URL is printed and the redirected address (or
    the bare code) is read with ``read_line``.
    """
    import requests
    from google_auth_oauthlib.flow import InstalledAppFlow, WSGITimeoutError
    from oauthlib.oauth2.rfc6749.errors import OAuth2Error

    config = load_client_config(client_secrets)
    client = config.get("installed") or config["web"]
    if not output.parent.is_dir():
        raise ConfigError(f"--output {output}: folder {output.parent} does not exist")
    what = not_a_token(output)
    if what is not None and not force:
        raise ConfigError(f"{output} exists and {what}: not replaced; choose another file, or "
                          "give --force to replace it with the token")
    _owner, _mode, refusal = write_owner(output)
    if refusal is not None:
        raise ConfigError(f"cannot replace {output}: {refusal}")
    if _is_loopback_http(client["token_uri"]):
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"  # loopback only (checked above)
    # PKCE (S256) explicitly: google-auth-oauthlib 1.2.0-1.2.2 turned it off here by default.
    flow = InstalledAppFlow.from_client_config(config, scopes=SCOPES,
                                               autogenerate_code_verifier=True)
    extra = {"access_type": "offline", "prompt": "consent"}
    try:
        if no_browser:
            flow.redirect_uri = f"http://localhost:{free_port()}/"
            url, _state = flow.authorization_url(**extra)
            echo(NO_BROWSER_PROMPT.format(url=url))
            _fetch_pasted(flow, read_line())
        else:
            browser = _browser_name(open_browser)
            flow.run_local_server(
                host="localhost", port=0, open_browser=browser is not None,
                browser=browser or None, authorization_prompt_message=PROMPT,
                success_message=SUCCESS, timeout_seconds=timeout, **extra)
    except OAuth2Error as exc:
        detail = exc.description or exc.error
        raise AuthFailed(f"the authorization was not granted ({exc.error}: {detail}); "
                         "run the login again") from None
    except (EOFError, KeyboardInterrupt):
        raise AuthFailed("the login was cancelled before a code was entered") from None
    except WSGITimeoutError:
        raise AuthFailed(f"no answer from the browser within {timeout or 0:.0f} s; run the login "
                         "again (or use --no-browser on a machine without one)") from None
    except requests.RequestException as exc:
        raise TransientGoogleError(f"cannot reach the token endpoint {client['token_uri']}: "
                                   f"{first_line(exc)}") from None
    with token_file_lock(output):  # a refresh in `run` cannot overwrite this newer login
        data = token_file_json(flow.credentials, client, _existing(output))
        owner, mode, _refusal = write_owner(output)
        write_secret_file(output, json.dumps(data, indent=2) + "\n", owner=owner, mode=mode)
    return data
