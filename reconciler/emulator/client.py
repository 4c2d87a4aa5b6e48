"""A real google-api-python-client Calendar service pointed at an emulator.

Why its own module: scripts that use the emulator without pytest (``from
reconciler.emulator.client import build_client``) must not import the pytest
plugin, which needs pytest installed.
"""

from __future__ import annotations

from typing import Any


def build_client(base_url: str, credentials: Any = None) -> Any:
    """A real google-api-python-client service that talks to the emulator at ``base_url``.

    ``credentials`` default to anonymous ones; pass e.g. user credentials whose
    ``token_uri`` is the emulator's ``/token`` to exercise refresh flows.
    """
    from google.auth.credentials import AnonymousCredentials
    from googleapiclient.discovery import build

    return build(
        "calendar",
        "v3",
        credentials=credentials if credentials is not None else AnonymousCredentials(),
        static_discovery=True,
        client_options={"api_endpoint": base_url},
        cache_discovery=False,
    )
