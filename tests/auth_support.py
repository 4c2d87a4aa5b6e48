"""Helpers of the auth tests: OAuth client files, configs that really use credentials,
a subprocess ``run`` and event waits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from reconciler.emulator import Emulator
from tests.helpers import REPO, write_config

CLIENT_ID = "desk-123.apps.googleusercontent.com"
CLIENT_SECRET = "desk-secret"


def emulator_root(emu: Emulator) -> str:
    """``http://host:port`` of the emulator."""
    return f"http://{emu.host}"


def client_secrets_file(tmp_path: Path, emu: Emulator) -> Path:
    """A 'Desktop app' OAuth client file naming the emulator's endpoints (and registered there)."""
    emu.oauth.register_client(CLIENT_ID, CLIENT_SECRET)
    path = tmp_path / "client_secret.json"
    path.write_text(json.dumps({"installed": {
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "project_id": "demo",
        "auth_uri": f"{emulator_root(emu)}/o/oauth2/auth",
        "token_uri": f"{emulator_root(emu)}/token",
        "redirect_uris": ["http://localhost"]}}))
    return path


def endpoint_config(emu: Emulator, tmp_path: Path, database_url: str,
                    accounts: list[dict[str, Any]], sync: dict[str, Any] | None = None) -> Path:
    """A config whose ``[google] api_endpoint`` is the emulator, so credentials are used."""
    path = write_config(tmp_path, database_url, accounts=accounts, sync=sync)
    text = path.read_text().replace("[google]\n", f'[google]\napi_endpoint = "{emu.base_url}"\n')
    path.write_text(text)
    return path


def clean_env() -> dict[str, str]:
    """The environment of a CLI subprocess that must really use credentials files."""
    env = dict(os.environ)
    env.pop("GOOGLE_CALENDAR_EMULATOR_HOST", None)
    return env


def start_cli(*args: str, stdin: bool = False) -> subprocess.Popen[str]:
    """Start ``reconciler ARGS`` as a separate process (text pipes)."""
    return subprocess.Popen([sys.executable, "-m", "reconciler.cli", *args], env=clean_env(),
                            cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL)


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``reconciler ARGS`` to completion without the emulator variable."""
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], env=clean_env(),
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def consent(url: str) -> str:
    """What a browser does with the authorization URL: the address it is redirected to."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        opener.open(url, timeout=10)
    except urllib.error.HTTPError as exc:
        if exc.code == 302:
            return str(exc.headers["Location"])
        raise
    raise AssertionError("the authorization endpoint did not redirect")
