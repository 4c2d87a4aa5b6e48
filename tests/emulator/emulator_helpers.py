"""Helpers shared by the emulator tests (imported by name: tests/emulator is no package).

The shared waits and the event-body builder live in :mod:`tests.helpers`."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from tests import helpers

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def build_service(base_url: str, token: str | None = None) -> Any:
    """A google-api-python-client Calendar service for ``base_url`` (as user ``token``)."""
    import google.oauth2.credentials

    from reconciler.emulator.pytest_plugin import build_client

    creds = google.oauth2.credentials.Credentials(token) if token is not None else None
    return build_client(base_url, creds)


def sample(name: str) -> Any:
    """Load one sample capture."""
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


# The emulator tests' events sit in January 2030 (their filters and samples expect it).
timed = functools.partial(helpers.timed, month="2030-01")


def list_all(svc: Any, cal: str = "primary", **kw: Any) -> tuple[list[dict[str, Any]], str | None]:
    """Follow every page; returns (items, nextSyncToken)."""
    items: list[dict[str, Any]] = []
    token = None
    while True:
        page = svc.events().list(calendarId=cal, pageToken=token, **kw).execute()
        assert ("nextPageToken" in page) != ("nextSyncToken" in page) or kw.get("orderBy")
        items += page["items"]
        token = page.get("nextPageToken")
        if not token:
            return items, page.get("nextSyncToken")
