"""Fixtures for the emulator tests: a running emulator and a real client."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.emulator.pytest_plugin import calendar_emulator, calendar_service

__all__ = ["calendar_emulator", "calendar_service"]


@pytest.fixture
def emu(calendar_emulator: Any) -> Any:
    """Short alias."""
    return calendar_emulator


@pytest.fixture
def svc(calendar_service: Any) -> Any:
    """Short alias."""
    return calendar_service
