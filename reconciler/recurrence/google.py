"""Map Google's event fields onto RFC 5545 expansion (python-dateutil), purely.

Why one module: every consumer of the mirror that wants "what happens between
A and B" would otherwise re-implement RRULE, EXDATE, RDATE, time zones across
daylight-saving changes and Google's exceptions. Here is the one mapping:

* ``start.dateTime`` is the instant (its offset is trusted when it disagrees
  with ``timeZone``); ``start.timeZone`` is the zone whose wall clock the
  series keeps across DST changes. A wall time that falls in a DST gap takes
  the offset before the gap (RFC 5545 3.3.5). Without ``timeZone`` the offset
  of ``dateTime`` is the zone.
* ``recurrence`` lines: ``RRULE``/``EXRULE`` (every rule part dateutil knows:
  FREQ, INTERVAL, COUNT, UNTIL, BYDAY with ordinals, BYMONTHDAY, BYSETPOS,
  WKST, ...), ``RDATE``/``EXDATE`` with ``TZID=``, ``VALUE=DATE`` or UTC
  values, comma-separated. ``UNTIL`` may be a UTC date-time, a floating
  date-time (read in the event's zone) or a date (the whole day, inclusive).
* an occurrence lasts exactly as long as the master (RFC 5545 3.8.5.3: "the
  same exact duration"), also when it spans a DST change; all-day
  occurrences keep the master's number of days.
* exceptions (rows with ``recurringEventId``) replace the occurrence at their
  ``originalStartTime`` (or with their id); a cancelled one removes it.
* instance ids are Google's: ``<series>_<YYYYMMDD>`` (all-day) and
  ``<series>_<YYYYMMDDTHHMMSSZ>`` (timed, the original start in UTC).

Windows are half-open UTC ranges ``[lo, hi)``; an all-day occurrence spans
UTC midnights of its dates (the emulator's reading; see docs/agenda.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rruleset, rrulestr

CANCELLED = "cancelled"
# A series that would yield more occurrences than this inside one window (a
# MINUTELY rule over a year) is cut there: Google refuses such rules anyway.
MAX_PER_SERIES = 5000
# Rule instances dateutil may step through for one series before the window is
# reached (a SECONDLY rule from year 1 would take hours): past this, the series
# yields what it found. Ten years of a daily series is 3,650.
MAX_EXAMINED = 20_000

Moment = datetime | date


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One occurrence: the times are UTC-aware datetimes, or dates when ``all_day``."""

    series_id: str
    instance_id: str
    start: Moment
    end: Moment
    all_day: bool
    status: str
    from_exception: bool
    summary: str | None

    @property
    def start_utc(self) -> datetime:
        return as_instant(self.start)

    @property
    def end_utc(self) -> datetime:
        return as_instant(self.end)


def as_instant(value: Moment) -> datetime:
    """A date as its UTC midnight; a datetime as itself in UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def overlaps(start: datetime, end: datetime, lo: datetime, hi: datetime) -> bool:
    """Whether ``[start, end)`` meets ``[lo, hi)``; an empty span counts at its start.

    The same rule as ``timeMin``/``timeMax`` on ``events.list``: the start is
    before ``hi`` and the end after ``lo``.
    """
    if start >= hi:
        return False
    return end > lo or (end <= start and start >= lo)


def series_id_of(resource: dict[str, Any]) -> str:
    """The series an event row belongs to: its ``recurringEventId``, else its own id."""
    parent = resource.get("recurringEventId")
    return str(parent) if isinstance(parent, str) and parent else str(resource.get("id", ""))


def is_series(resource: dict[str, Any]) -> bool:
    """Whether the row is a recurring master (it holds ``recurrence`` lines)."""
    lines = resource.get("recurrence")
    return isinstance(lines, list) and any(isinstance(x, str) for x in lines)


def instance_id(series_id: str, original: Moment) -> str:
    """Google's id of the instance whose original start is ``original``."""
    if isinstance(original, datetime):
        u = original.astimezone(UTC)
        return (f"{series_id}_{u.year:04d}{u.month:02d}{u.day:02d}"
                f"T{u.hour:02d}{u.minute:02d}{u.second:02d}Z")
    return f"{series_id}_{original:%Y%m%d}"


# -- times ------------------------------------------------------------------


def _zone(name: Any) -> tzinfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _parse_datetime(text: str, zone: tzinfo | None) -> datetime | None:
    """An RFC 3339 date-time; one without an offset is wall time in ``zone`` (else UTC)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=zone or UTC)


def _parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def parse_time(obj: Any) -> tuple[Moment | None, tzinfo | None]:
    """A ``start``/``end``/``originalStartTime`` object: (moment, zone for its wall clock)."""
    if not isinstance(obj, dict):
        return None, None
    if isinstance(obj.get("dateTime"), str):
        zone = _zone(obj.get("timeZone"))
        value = _parse_datetime(obj["dateTime"], zone)
        if value is None:
            return None, None
        return (value.astimezone(zone) if zone else value), (zone or value.tzinfo)
    if isinstance(obj.get("date"), str):
        return _parse_date(obj["date"]), None
    return None, None


def _span(resource: dict[str, Any]) -> tuple[Moment, Moment, tzinfo | None] | None:
    """(start, end, zone) of a resource; the end defaults to the start."""
    start, zone = parse_time(resource.get("start"))
    if start is None:
        return None
    end, _ = parse_time(resource.get("end"))
    if end is None or isinstance(end, datetime) != isinstance(start, datetime):
        end = start
    return start, end, zone


# -- recurrence lines ---------------------------------------------------------


def _split_line(line: str) -> tuple[str, dict[str, str], str]:
    head, _, value = line.strip().partition(":")
    name, *params = head.split(";")
    parsed = {}
    for p in params:
        key, _, val = p.partition("=")
        parsed[key.strip().upper()] = val.strip().strip('"')
    return name.strip().upper(), parsed, value.strip()


def _stamp(text: str, params: dict[str, str], zone: tzinfo | None) -> Moment | None:
    """One RDATE/EXDATE/UNTIL value: a date, a UTC instant, or wall time in TZID/``zone``."""
    text = text.strip().upper()
    try:
        if params.get("VALUE") == "DATE" or "T" not in text:
            return datetime.strptime(text[:8], "%Y%m%d").date()
        if text.endswith("Z"):
            return datetime.strptime(text[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        naive = datetime.strptime(text[:15], "%Y%m%dT%H%M%S")
    except ValueError:
        return None
    return naive.replace(tzinfo=_zone(params.get("TZID")) or zone or UTC)


def _rule_text(value: str, all_day: bool, zone: tzinfo | None) -> str:
    """The RRULE value with UNTIL in the form dateutil needs for this DTSTART."""
    parts = []
    for part in value.split(";"):
        key, _, val = part.partition("=")
        if key.strip().upper() != "UNTIL":
            if part.strip():
                parts.append(part.strip())
            continue
        until = _stamp(val, {}, zone)
        if until is None:
            continue
        if all_day:
            day = until.date() if isinstance(until, datetime) else until
            parts.append(f"UNTIL={day:%Y%m%d}T000000")
        else:
            if not isinstance(until, datetime):  # a date: the whole day, in the event's zone
                until = datetime.combine(until, time(23, 59, 59), zone or UTC)
            parts.append(f"UNTIL={until.astimezone(UTC):%Y%m%dT%H%M%SZ}")
    return ";".join(parts)


@dataclass(slots=True)
class _Rules:
    """A master's recurrence: dateutil's set, plus EXDATE dates that hit timed series."""

    rules: rruleset
    ex_days: set[date]


def _local(value: Moment, start: Moment, zone: tzinfo | None) -> datetime:
    """An RDATE/EXDATE value in the expansion's own terms (naive for all-day series)."""
    if isinstance(start, datetime):
        if isinstance(value, datetime):
            return value.astimezone(zone) if zone else value
        return datetime.combine(value, start.timetz())
    day = value.date() if isinstance(value, datetime) else value
    return datetime(day.year, day.month, day.day)


# HOURLY, MINUTELY and SECONDLY rules are not expanded (Google's editors write none):
# dateutil can step through seconds for hours inside one call before it finds
# (or never finds) an instance matching the other parts.
_SUB_DAILY = re.compile(r"(?:^|;)\s*FREQ\s*=\s*(?:HOURLY|MINUTELY|SECONDLY)\b")


def _counting_dtstart(rule: rrule, dtstart: datetime) -> rrule | None:
    """The rule with DTSTART counted as its first occurrence (RFC 5545 3.3.10, COUNT).

    When DTSTART is not itself an occurrence of a COUNT rule, dateutil would
    still generate COUNT others; RFC 5545 counts DTSTART in. None: nothing left.
    """
    count = getattr(rule, "_count", None)
    if not count:
        return rule
    first = rule.after(dtstart, inc=True)
    if first == dtstart:
        return rule
    return rule.replace(count=count - 1) if count > 1 else None


def _rules(lines: Iterable[Any], start: Moment, zone: tzinfo | None) -> _Rules:
    all_day = not isinstance(start, datetime)
    dtstart = start if isinstance(start, datetime) else datetime(start.year, start.month, start.day)
    out = _Rules(rruleset(), set())
    for line in lines:
        if not isinstance(line, str):
            continue
        name, params, value = _split_line(line)
        if name in ("RRULE", "EXRULE"):
            if _SUB_DAILY.search(value.upper()):
                continue  # see _SUB_DAILY
            try:
                rule = rrulestr(_rule_text(value, all_day, zone), dtstart=dtstart)
            except (ValueError, TypeError):
                continue  # a rule dateutil cannot read adds nothing
            if not isinstance(rule, rrule):
                continue
            rule = _counting_dtstart(rule, dtstart)
            if rule is None:
                continue
            if name == "RRULE":
                out.rules.rrule(rule)
            else:
                out.rules.exrule(rule)
        elif name in ("RDATE", "EXDATE"):
            if params.get("VALUE") == "PERIOD":
                continue
            for text in value.split(","):
                stamp = _stamp(text, params, zone)
                if stamp is None:
                    continue
                if name == "EXDATE" and not all_day and not isinstance(stamp, datetime):
                    out.ex_days.add(stamp)  # a date on a timed series: that local day
                    continue
                local = _local(stamp, start, zone)
                if name == "RDATE":
                    out.rules.rdate(local)
                else:
                    out.rules.exdate(local)
    # RFC 5545 3.8.5.3: DTSTART is always the first instance, whether or not the
    # rule matches it (dateutil's rrule alone would leave an unsynchronized one out).
    out.rules.rdate(dtstart)
    return out


_DAY_INDEX = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}


@dataclass(slots=True)
class _Simple:
    """A DAILY or WEEKLY rule with plain parts: stepped by date arithmetic, not dateutil."""

    weekly: bool
    interval: int
    count: int | None
    until: datetime | None  # UTC
    weekdays: list[int]
    ex_instants: set[datetime]
    ex_days: set[date]


def _simple(lines: Iterable[Any], start: datetime, zone: tzinfo | None) -> _Simple | None:
    """The series as a :class:`_Simple`, when it is one (most series are): else None.

    Simple: one RRULE with FREQ DAILY or WEEKLY and only INTERVAL, COUNT, UNTIL,
    plain BYDAY (weekly, holding DTSTART's day) and WKST=MO (or an interval of
    1), plus EXDATEs. tests/test_recurrence.py checks it against dateutil.
    """
    rule: dict[str, str] | None = None
    ex_instants: set[datetime] = set()
    ex_days: set[date] = set()
    for line in lines:
        if not isinstance(line, str):
            continue
        name, params, value = _split_line(line)
        if name == "RRULE" and rule is None:
            rule = {}
            for part in value.split(";"):
                key, _, val = part.partition("=")
                if key.strip():
                    rule[key.strip().upper()] = val.strip().upper()
        elif name == "EXDATE" and params.get("VALUE") != "PERIOD":
            for text in value.split(","):
                stamp = _stamp(text, params, zone)
                if isinstance(stamp, datetime):
                    ex_instants.add(stamp.astimezone(UTC))
                elif stamp is not None:
                    ex_days.add(stamp)
        else:
            return None
    if rule is None or not set(rule) <= {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "WKST"}:
        return None
    freq = rule.get("FREQ")
    try:
        interval = int(rule.get("INTERVAL", "1"))
        count = int(rule["COUNT"]) if "COUNT" in rule else None
    except ValueError:
        return None
    if freq not in ("DAILY", "WEEKLY") or interval < 1 or (count is not None and count < 1):
        return None
    if "BYDAY" in rule and (freq != "WEEKLY" or any(d not in _DAY_INDEX
                                                    for d in rule["BYDAY"].split(","))):
        return None
    if freq == "WEEKLY" and interval > 1 and rule.get("WKST", "MO") != "MO":
        return None
    weekdays = sorted({_DAY_INDEX[d] for d in rule.get("BYDAY", "").split(",") if d}
                      or {start.weekday()})
    if freq == "WEEKLY" and start.weekday() not in weekdays:
        return None  # DTSTART off the rule: dateutil's path adds it and counts it
    until = None
    if "UNTIL" in rule:
        text = _rule_text(f"UNTIL={rule['UNTIL']}", False, zone)
        if not text:
            return None
        until = datetime.strptime(text[6:], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return _Simple(freq == "WEEKLY", interval, count, until, weekdays, ex_instants, ex_days)


def _simple_starts(rule: _Simple, start: datetime, zone: tzinfo | None,
                   after: date) -> Iterator[datetime]:
    """The rule's occurrences (local, aware) from about ``after`` on, EXDATEs left out."""
    tz = zone or start.tzinfo
    wall = start.time()
    first_day = start.date()
    if rule.weekly:
        week0 = first_day - timedelta(days=first_day.weekday())
        step = 7 * rule.interval
        in_first = [wd for wd in rule.weekdays if wd >= first_day.weekday()]
        j = max(0, (after - week0).days // step - 1)
        index = 0 if j == 0 else len(in_first) + (j - 1) * len(rule.weekdays)
        while True:
            for wd in (in_first if j == 0 else rule.weekdays):
                day = week0 + timedelta(days=step * j + wd)
                if rule.count is not None and index >= rule.count:
                    return
                index += 1
                occ = start if day == first_day else datetime.combine(day, wall, tz)
                if rule.until is not None and occ.astimezone(UTC) > rule.until:
                    return
                if not _excluded(rule, occ):
                    yield occ
            j += 1
    k = max(0, (after - first_day).days // rule.interval - 1)
    while rule.count is None or k < rule.count:
        day = first_day + timedelta(days=k * rule.interval)
        occ = start if k == 0 else datetime.combine(day, wall, tz)
        if rule.until is not None and occ.astimezone(UTC) > rule.until:
            return
        if not _excluded(rule, occ):
            yield occ
        k += 1


def _excluded(rule: _Simple, occ: datetime) -> bool:
    return bool((rule.ex_instants and occ.astimezone(UTC) in rule.ex_instants)
                or (rule.ex_days and occ.date() in rule.ex_days))


def _timed_starts(master: dict[str, Any], start: datetime, zone: tzinfo | None,
                  after: datetime, fast: bool) -> Iterator[datetime]:
    """The rule occurrences of a timed series from ``after`` on (local, aware, ascending)."""
    lines = master.get("recurrence") or []
    simple = _simple(lines, start, zone) if fast else None
    if simple is not None:
        yield from _simple_starts(simple, start, zone, after.date())
        return
    rules = _rules(lines, start, zone)
    for occ in _bounded(rules.rules, after):
        if not (rules.ex_days and occ.date() in rules.ex_days):
            yield occ


def _bounded(rules: rruleset, after: datetime) -> Iterator[datetime]:
    """dateutil's instances from ``after`` on, giving up after :data:`MAX_EXAMINED`."""
    for examined, occ in enumerate(rules):
        if examined >= MAX_EXAMINED:
            return
        if occ >= after:
            yield occ


def _originals(master: dict[str, Any], start: Moment, end: Moment, zone: tzinfo | None,
               lo: datetime, hi: datetime, fast: bool = True) -> Iterator[tuple[Moment, Moment]]:
    """(original start, end) of each rule occurrence of ``master`` meeting ``[lo, hi)``.

    ``fast=False`` takes dateutil's path for every series (the tests compare both).
    """
    count = 0
    if isinstance(start, datetime):
        length = as_instant(end) - as_instant(start)  # exact (RFC 5545 3.8.5.3)
        # Occurrences that begin up to one length (and a day of zone slack) before lo.
        after = (lo - length - timedelta(days=1)).astimezone(zone or UTC)
        before = (hi + timedelta(days=1)).astimezone(zone or UTC)
        for occ in _timed_starts(master, start, zone, after, fast):
            if occ < after:
                continue
            if occ > before or count >= MAX_PER_SERIES:
                return
            occ_utc = occ.astimezone(UTC)
            occ_end = occ_utc + length  # the same exact duration for every one
            if occ_utc < hi and (occ_end > lo or (length <= timedelta(0) and occ_utc >= lo)):
                count += 1
                yield occ_utc, occ_end
        return
    rules = _rules(master.get("recurrence") or [], start, zone)
    days = end - start  # type: ignore[operator]
    lo_day = datetime(lo.year, lo.month, lo.day) - days - timedelta(days=1)
    hi_day = datetime(hi.year, hi.month, hi.day) + timedelta(days=1)
    for occ in _bounded(rules.rules, lo_day):
        if occ > hi_day or count >= MAX_PER_SERIES:
            return
        first = occ.date()
        last = first + days
        if overlaps(as_instant(first), as_instant(last), lo, hi):
            count += 1
            yield first, last


def _original_key(resource: dict[str, Any]) -> datetime | None:
    """The UTC instant of an exception's ``originalStartTime`` (dates: UTC midnight)."""
    moment, _ = parse_time(resource.get("originalStartTime"))
    return None if moment is None else as_instant(moment)


def _status(resource: dict[str, Any]) -> str:
    status = resource.get("status")
    return status if isinstance(status, str) and status else "confirmed"


def _summary(resource: dict[str, Any]) -> str | None:
    summary = resource.get("summary")
    return summary if isinstance(summary, str) else None


def _own(resource: dict[str, Any], series: str, from_exception: bool,
         lo: datetime, hi: datetime) -> Occurrence | None:
    """A single event or an exception as its own occurrence, when it meets the window."""
    span = _span(resource)
    if span is None or _status(resource) == CANCELLED:
        return None
    start, end, _ = span
    try:
        s, e = as_instant(start), as_instant(end)
    except (OverflowError, ValueError):
        return None
    if not overlaps(s, e, lo, hi):
        return None
    if isinstance(start, datetime):
        start, end = s, e
    return Occurrence(series, str(resource.get("id", "")), start, end,
                      not isinstance(start, datetime), _status(resource), from_exception,
                      _summary(resource))


def expand_series(master: dict[str, Any] | None, exceptions: Iterable[dict[str, Any]],
                  lo: datetime, hi: datetime, *, fast: bool = True) -> list[Occurrence]:
    """Every occurrence of one series (or one single event) meeting ``[lo, hi)``, by start.

    ``master`` is the series row (None when only exceptions are stored: an
    exception that arrived before its parent still shows itself), or a single
    event. ``exceptions`` are the rows whose ``recurringEventId`` is the
    series. Cancelled rows contribute nothing; a cancelled master none of its
    rule occurrences. Never raises: a row holding times Python cannot
    represent (year 0 or beyond 9999 after a time-zone shift) yields nothing.
    """
    excs = [x for x in exceptions if isinstance(x, dict)]
    try:
        return _expand(master, excs, lo, hi, fast)
    except (OverflowError, ValueError, TypeError):
        return []


def _expand(master: dict[str, Any] | None, excs: list[dict[str, Any]],
            lo: datetime, hi: datetime, fast: bool) -> list[Occurrence]:
    out: list[Occurrence] = []
    replaced_keys = {k for k in (_original_key(x) for x in excs) if k is not None}
    replaced_ids = {str(x.get("id")) for x in excs}
    series = series_id_of(master) if master is not None else (
        series_id_of(excs[0]) if excs else "")
    if master is not None and _status(master) != CANCELLED:
        if not is_series(master):
            own = _own(master, series, False, lo, hi)
            out.extend([own] if own else [])
        else:
            span = _span(master)
            if span is not None:
                start, end, zone = span
                all_day = not isinstance(start, datetime)
                status, summary = _status(master), _summary(master)
                try:
                    for first, last in _originals(master, start, end, zone, lo, hi, fast):
                        iid = instance_id(series, first)
                        if (replaced_keys and as_instant(first) in replaced_keys) or (
                                replaced_ids and iid in replaced_ids):
                            continue
                        out.append(Occurrence(series, iid, first, last, all_day, status, False,
                                              summary))
                except (OverflowError, ValueError, TypeError):
                    pass  # dates past year 1 or 9999 (they exist): what was found stands
    for exc in excs:
        own = _own(exc, series, True, lo, hi)
        if own is not None:
            out.append(own)
    out.sort(key=lambda o: (o.start_utc, o.instance_id))
    return out
