"""A local Google Calendar v3 emulator the real client cannot tell from Google.

Serves ``/calendar/v3/`` (events list/get/insert/patch/update/delete/instances/
watch, calendarList, calendars.get, channels.stop), an OAuth ``/token`` endpoint
and a JSON control API under ``/_emulator/``, with Google's shapes, status codes,
error bodies, sync/page tokens and push notifications. Use::

    from reconciler.emulator import running_emulator
    with running_emulator() as emu:
        emu.add_calendar("team@group.calendar.google.com", owners=["user@example.com"])
        ...  # point the client at emu.base_url
"""

from __future__ import annotations

from .clock import Clock
from .emulator import Emulator, RequestRecord
from .errors import ApiError
from .server import running_emulator

__all__ = ["ApiError", "Clock", "Emulator", "RequestRecord", "running_emulator"]
