"""Best-effort expansion of recurring events into instances.

Supports what real calendars mostly hold: ``RRULE`` with FREQ=DAILY/WEEKLY/
MONTHLY/YEARLY, INTERVAL, COUNT, UNTIL, BYDAY (weekly), plus ``EXDATE``. Used by
``events.instances`` and ``singleEvents=true``; anything fancier expands to the
simple interpretation rather than failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .model import local_datetime

MAX_INSTANCES = 1000
_DAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}


@dataclass(frozen=True)
class Occurrence:
    """One generated instance: its original start plus the start/end objects to serve."""

    original: datetime | date
    start: dict[str, Any]
    end: dict[str, Any]


def _zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _parse_stamp(value: str, zone: tzinfo | None) -> datetime | date:
    value = value.strip()
    if "T" not in value:
        return datetime.strptime(value[:8], "%Y%m%d").date()
    if value.endswith("Z"):
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    naive = datetime.strptime(value[:15], "%Y%m%dT%H%M%S")
    return naive.replace(tzinfo=zone or UTC)


def _add_months(d: datetime | date, months: int) -> datetime | date | None:
    y, m = divmod(d.month - 1 + months, 12)
    try:
        return d.replace(year=d.year + y, month=m + 1)
    except ValueError:
        return None


def _candidates(start: datetime | date, rule: dict[str, str]) -> Any:
    freq = rule.get("FREQ", "DAILY")
    interval = max(1, int(rule.get("INTERVAL", "1") or 1))
    if freq == "WEEKLY" and "BYDAY" in rule:
        days = sorted({_DAYS[d[-2:]] for d in rule["BYDAY"].split(",") if d[-2:] in _DAYS}) or [
            start.weekday()
        ]
        week0 = start - timedelta(days=start.weekday())
        week = 0
        while True:
            base = week0 + timedelta(weeks=week * interval)
            for wd in days:
                c = base + timedelta(days=wd)
                if c >= start:
                    yield c
            week += 1
    n = 0
    while True:
        if freq == "DAILY":
            yield start + timedelta(days=n * interval)
        elif freq == "WEEKLY":
            yield start + timedelta(weeks=n * interval)
        elif freq in ("MONTHLY", "YEARLY"):
            step = n * interval * (12 if freq == "YEARLY" else 1)
            month = _add_months(start, step)
            if month is not None:
                yield month
        else:  # HOURLY/MINUTELY/...: not supported, serve the first occurrence only
            yield start
            return
        n += 1


def _local(value: datetime | date, zone: tzinfo | None) -> datetime | date:
    if isinstance(value, datetime):
        return value.astimezone(zone) if zone else value
    return value


def _as_instant(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def expand(
    master: dict[str, Any],
    time_min: datetime | None = None,
    time_max: datetime | None = None,
    limit: int = MAX_INSTANCES,
) -> list[Occurrence]:
    """Return the occurrences of ``master`` (ascending) whose span meets the window."""
    start_obj = master.get("start") or {}
    end_obj = master.get("end") or {}
    zone = _zone(start_obj.get("timeZone"))
    start: datetime | date
    if "date" in start_obj:
        start = date.fromisoformat(start_obj["date"])
        end_d = date.fromisoformat(end_obj.get("date", start_obj["date"]))
        duration = end_d - start
    elif "dateTime" in start_obj:
        start = _local(local_datetime(start_obj["dateTime"], start_obj.get("timeZone")), zone)
        end_dt = local_datetime(end_obj.get("dateTime", start_obj["dateTime"]), end_obj.get("timeZone"))
        duration = end_dt - start  # type: ignore[operator]
    else:
        return []
    rules: list[dict[str, str]] = []
    exdates: set[datetime | date] = set()
    for line in master.get("recurrence") or []:
        head, _, value = line.partition(":")
        name = head.split(";")[0].upper()
        if name == "RRULE":
            rules.append(dict(p.split("=", 1) for p in value.split(";") if "=" in p))
        elif name == "EXDATE":
            params = dict(p.split("=", 1) for p in head.split(";")[1:] if "=" in p)
            ex_zone = _zone(params.get("TZID")) or zone
            for v in value.split(","):
                try:
                    ex = _parse_stamp(v, ex_zone)
                except ValueError:
                    continue
                exdates.add(_as_instant(ex) if isinstance(start, datetime) else ex)
    rule = rules[0] if rules else {"FREQ": "DAILY", "COUNT": "1"}
    count = int(rule["COUNT"]) if rule.get("COUNT", "").isdigit() else None
    until: datetime | date | None = None
    if "UNTIL" in rule:
        try:
            until = _parse_stamp(rule["UNTIL"], zone)
        except ValueError:
            until = None
    out: list[Occurrence] = []
    generated = 0
    for cand in _candidates(start, rule):
        if count is not None and generated >= count:
            break
        generated += 1
        if generated > max(limit, MAX_INSTANCES) * 10:  # candidates before time_min count too
            break
        if isinstance(cand, datetime) and zone is not None:
            # keep wall-clock time across DST changes
            cand = cand.replace(tzinfo=None).replace(tzinfo=zone)
        inst = _as_instant(cand)
        if until is not None and inst > _as_instant(until):
            break
        if time_max is not None and inst >= time_max:
            break
        if (inst if isinstance(start, datetime) else cand) in exdates:
            continue
        end_c = cand + duration
        if time_min is not None and _as_instant(end_c) <= time_min:
            continue
        out.append(_occurrence(cand, end_c, start_obj, end_obj))
        if len(out) >= limit:
            break
    return out


def _occurrence(
    cand: datetime | date,
    end_c: datetime | date,
    start_obj: dict[str, Any],
    end_obj: dict[str, Any],
) -> Occurrence:
    if isinstance(cand, datetime) and isinstance(end_c, datetime):
        s: dict[str, Any] = {"dateTime": cand.isoformat()}
        e: dict[str, Any] = {"dateTime": end_c.isoformat()}
        if "timeZone" in start_obj:
            s["timeZone"] = start_obj["timeZone"]
        if "timeZone" in end_obj:
            e["timeZone"] = end_obj["timeZone"]
        return Occurrence(cand.astimezone(UTC), s, e)
    return Occurrence(cand, {"date": cand.isoformat()}, {"date": end_c.isoformat()})
