"""Recurring events as people see them: every occurrence of a series in a time range.

The mirror stores what ``events.list`` returns with ``singleEvents=false``: a
series is one row holding ``recurrence`` lines, plus one row per modified or
cancelled instance. This package turns those rows into occurrences the way
Google's ``singleEvents=true`` listing does, with no I/O: the store keeps the
result in the ``occurrence`` table and ``reconciler agenda`` reads it (or
calls this directly outside the stored window). RFC 5545 itself is
python-dateutil's ``rruleset``; :mod:`.google` maps Google's fields onto it.
"""

from reconciler.recurrence.google import (
    Occurrence,
    expand_series,
    instance_id,
    is_series,
    overlaps,
    series_id_of,
)

__all__ = ["Occurrence", "expand_series", "instance_id", "is_series", "overlaps", "series_id_of"]
