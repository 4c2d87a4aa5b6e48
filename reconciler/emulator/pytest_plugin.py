"""A pytest plugin giving tests a running emulator: ``pytest -p reconciler.emulator.pytest_plugin``.

Fixtures:
``calendar_emulator``   a fresh, running :class:`~reconciler.emulator.Emulator` per test
                        (HTTP on 127.0.0.1, random port) with ``GOOGLE_CALENDAR_EMULATOR_HOST``
                        set for the test's duration.
``calendar_service``    a google-api-python-client Calendar v3 service pointed at it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .client import build_client
from .emulator import Emulator
from .server import running_emulator

__all__ = ["build_client", "calendar_emulator", "calendar_service"]


@pytest.fixture
def calendar_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """A running emulator, torn down after the test."""
    with running_emulator() as emu:
        monkeypatch.setenv("GOOGLE_CALENDAR_EMULATOR_HOST", emu.host)
        yield emu


@pytest.fixture
def calendar_service(calendar_emulator: Emulator) -> Any:
    """A real google-api-python-client service talking to ``calendar_emulator``."""
    return build_client(calendar_emulator.base_url)
