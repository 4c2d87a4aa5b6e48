"""Channel lifecycle: open one channel per watched calendar, renew it, stop it.

Called every few seconds by ``reconciler run`` (through ``WatchRuntime.tick``).

Ownership with several ``run`` processes: every change to a calendar's
channels (open, renew, stop) happens while holding that calendar's short
channel-work claim (``calendar.watch_owner``/``watch_until``, a conditional
UPDATE like the sync lease but separate from it, so channel work never makes
the scheduler skip a poll), taken without waiting and given back at once. So
two processes never open or renew a channel for the same calendar; one that
cannot get the claim tries again next tick. ``channel.owner`` records the
process that opened a channel: only the owner stops it on SIGTERM (another
worker then reopens it); a crashed owner's channel keeps working and is
renewed by whichever process gets there first.

Renewal opens the new channel first and stops the old one only afterwards, so
there is no moment without a channel. A failed ``events.watch`` is recorded on
a ``failed`` row with ``retry_after`` (an hour for transient errors, a day for
refusals such as ``pushNotSupportedForRequestedResource``); the calendar is
polled as usual meanwhile.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconciler.clock import utcnow
from reconciler.config import Config
from reconciler.errors import CalendarNotFound, ReconcilerError, TransientGoogleError
from reconciler.watch import channels
from reconciler.watch.channels import CalendarRow, ChannelRow
from reconciler.watch.tokens import channel_token, new_channel_id

log = logging.getLogger("reconciler.watch")

TRANSIENT_RETRY = 3600  # seconds before retrying after a 5xx, rate limit, network error
REFUSED_RETRY = 86400  # after a 403 (e.g. push unsupported), 404, 400, 401
RENEW_RETRY = 300  # a failed renewal is retried sooner: the old channel is still open
STALE_OPENING = 600  # an `opening` row this old belongs to a process that died mid-call
CLAIM_SECONDS = 300  # the channel-work claim outlives any events.watch call with its retries


class Api(Protocol):
    """The two Calendar API calls the manager needs (``CalendarApi`` has them)."""

    def watch_events(self, calendar_id: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def stop_channel(self, channel_id: str, resource_id: str) -> None: ...


@dataclass(slots=True)
class TickReport:
    """What one tick did (logged at DEBUG; asserted by tests)."""

    opened: list[str] = field(default_factory=list)
    renewed: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)


class ChannelManager:
    """Decides and performs channel work for the calendars this process syncs."""

    def __init__(self, config: Config, owner: str, api_for: Callable[[str], Api], *,
                 now: Callable[[], dt.datetime] = utcnow) -> None:
        if not config.watch.address or not config.watch.secret:
            raise ReconcilerError("watch.address and watch.secret are required for watch mode")
        self.config = config
        self.owner = owner
        self.api_for = api_for
        self.now = now
        self.accounts = {a.name for a in config.accounts}

    # -- which calendars ------------------------------------------------------

    def watched(self) -> dict[int, CalendarRow]:
        """Calendars to watch: synced at least once, still mirrored, by an account we sync."""
        return channels.watched_calendars(self.accounts)

    # -- the periodic work ----------------------------------------------------

    def tick(self) -> TickReport:
        """Open missing channels, renew expiring ones, stop those of removed calendars."""
        report = TickReport()
        now = self.now()
        watched = self.watched()
        by_calendar: dict[int, list[ChannelRow]] = {}
        for row in channels.all_rows():
            by_calendar.setdefault(int(row.calendar_id), []).append(row)
        for calendar_pk, rows in by_calendar.items():
            if calendar_pk not in watched and any(r.state in channels.LIVE_STATES for r in rows):
                calendar = channels.calendar(calendar_pk)
                if calendar is None or calendar.removed or calendar.gone:
                    self._with_claim(calendar_pk, calendar, report, self._stop_all_of)
        for calendar_pk, calendar in watched.items():
            if self._needs_work(by_calendar.get(calendar_pk, []), now):
                self._with_claim(calendar_pk, calendar, report, self._ensure)
        return report

    def _needs_work(self, rows: list[ChannelRow], now: dt.datetime) -> bool:
        """Cheap pre-check without the claim; :meth:`_ensure` decides again under it."""
        margin = dt.timedelta(seconds=self.config.watch.renew_margin)
        failed = [r for r in rows if r.state == channels.FAILED]
        if failed and failed[-1].retry_after and failed[-1].retry_after > now:
            return False
        if any(r.state == channels.OPENING for r in rows):
            return True  # maybe stale
        live = [r for r in rows if r.state == channels.OPEN]
        return not any(r.expiration is not None and r.expiration - margin > now for r in live) \
            or len(live) > 1

    def _with_claim(self, calendar_pk: int, calendar: CalendarRow | None, report: TickReport,
                    work: Callable[[int, CalendarRow | None, TickReport], None]) -> None:
        if not channels.claim_calendar(calendar_pk, self.owner, CLAIM_SECONDS):
            report.busy.append(calendar.calendar_id if calendar else str(calendar_pk))
            return
        try:
            work(calendar_pk, calendar, report)
        finally:
            channels.release_calendar(calendar_pk, self.owner)

    def _ensure(self, calendar_pk: int, calendar: CalendarRow | None, report: TickReport) -> None:
        assert calendar is not None
        now = self.now()
        margin = dt.timedelta(seconds=self.config.watch.renew_margin)
        rows = channels.of_calendar(calendar_pk)
        for row in rows:
            if row.state == channels.OPENING and row.created_at < now - dt.timedelta(
                    seconds=STALE_OPENING):
                channels.forget(row.id)
            elif row.state == channels.OPEN and row.expiration is not None \
                    and row.expiration <= now:
                log.info("watch: channel %s of %s expired before it was renewed",
                         row.channel_id, calendar.calendar_id)
                channels.forget(row.id)
        rows = channels.of_calendar(calendar_pk)
        if any(r.state == channels.OPENING for r in rows):
            return  # a call of a process whose claim ran out is still in flight
        failed = [r for r in rows if r.state == channels.FAILED]
        if failed and failed[-1].retry_after and failed[-1].retry_after > now:
            return
        live = [r for r in rows if r.state == channels.OPEN]
        fresh = [r for r in live if r.expiration is None or r.expiration - margin > now]
        if fresh:
            for extra in [r for r in live if r not in fresh[-1:]]:  # a renewal cut short
                self._stop(calendar, extra, report)
            return
        new = self._open(calendar, failures=failed[-1].failures if failed else 0,
                         renewing=bool(live), report=report)
        if new is None:
            return
        for old in live:
            self._stop(calendar, old, report)
        (report.renewed if live else report.opened).append(calendar.calendar_id)

    def _open(self, calendar: CalendarRow, *, failures: int, renewing: bool,
              report: TickReport) -> ChannelRow | None:
        now = self.now()
        watch = self.config.watch
        assert watch.address and watch.secret
        channel_id = new_channel_id()
        row = channels.begin_open(calendar.id, channel_id, self.owner, now)
        body = {"id": channel_id, "type": "web_hook", "address": watch.address,
                "token": channel_token(watch.secret, channel_id),
                "params": {"ttl": str(watch.ttl)}}
        try:
            answer = self.api_for(calendar.account).watch_events(calendar.calendar_id, body)
        except ReconcilerError as exc:
            self._failed(calendar, row, exc, failures + 1, renewing, report)
            return None
        except Exception as exc:  # an unexpected client error must not stop the tick
            log.exception("watch: events.watch for %s failed unexpectedly", calendar.calendar_id)
            self._failed(calendar, row, exc, failures + 1, renewing, report)
            return None
        resource_id = str(answer.get("resourceId") or "")
        expiration = channels.expiration_from_ms(answer.get("expiration"),
                                                 now + dt.timedelta(seconds=watch.ttl))
        channels.mark_open(row.id, resource_id, expiration)
        channels.clear_failures(calendar.id)
        log.info("watch: %s channel %s for %s (expires %sZ)",
                 "renewed with" if renewing else "opened", channel_id, calendar.calendar_id,
                 expiration.isoformat(timespec="seconds"))
        return dataclasses.replace(row, state=channels.OPEN, resource_id=resource_id,
                                   expiration=expiration)

    def _failed(self, calendar: CalendarRow, row: ChannelRow, exc: BaseException, failures: int,
                renewing: bool, report: TickReport) -> None:
        transient = isinstance(exc, TransientGoogleError) or not isinstance(exc, ReconcilerError)
        wait = TRANSIENT_RETRY if transient else REFUSED_RETRY
        if renewing:
            wait = min(wait, RENEW_RETRY)
        retry_after = self.now() + dt.timedelta(seconds=wait)
        channels.mark_failed(row.id, calendar.id, f"{type(exc).__name__}: {exc}", retry_after,
                             failures)
        report.failed.append(calendar.calendar_id)
        log.warning("watch: cannot watch %s (%s); it is polled as usual, next attempt at %sZ",
                    calendar.calendar_id, exc, retry_after.isoformat(timespec="seconds"))

    def _stop(self, calendar: CalendarRow | None, row: ChannelRow, report: TickReport) -> None:
        if row.state == channels.OPEN and row.resource_id and calendar is not None \
                and calendar.account in self.accounts:
            stop_channel(self.api_for(calendar.account), row)
        channels.forget(row.id)
        report.stopped.append(row.channel_id)

    def _stop_all_of(self, calendar_pk: int, calendar: CalendarRow | None,
                     report: TickReport) -> None:
        for row in channels.of_calendar(calendar_pk):
            if row.state in channels.LIVE_STATES:
                self._stop(calendar, row, report)

    # -- shutdown ---------------------------------------------------------------

    def stop_owned(self) -> list[str]:
        """Stop every channel this process opened (SIGTERM); other workers reopen them."""
        stopped: list[str] = []
        for row in channels.owned_by(self.owner):
            calendar = channels.calendar(row.calendar_id)
            report = TickReport()
            try:
                self._stop(calendar, row, report)
            except Exception as exc:  # the database may be what failed; the channel expires
                log.warning("watch: could not stop channel %s: %s", row.channel_id, exc)
                continue
            stopped.extend(report.stopped)
        return stopped


def stop_channel(api: Api, row: ChannelRow) -> bool:
    """``channels.stop`` one channel; False (logged) when Google refused or was unreachable.

    A 404 means the channel is already gone (expired, or stopped by someone
    else), which is what we wanted.
    """
    try:
        api.stop_channel(str(row.channel_id), str(row.resource_id))
        return True
    except CalendarNotFound:
        return True
    except ReconcilerError as exc:
        log.warning("watch: channels.stop %s failed (%s); it expires on its own",
                    row.channel_id, exc)
        return False
