"""When a campaign should run: its declared state, narrowed by a Schedule's ``active`` period."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from reconciler.model import DesiredState, TimeWindow


def active_period(desired: DesiredState, campaign: str) -> TimeWindow | None:
    """The ``active`` window of the first (by name) schedule of ``campaign`` that declares one."""
    for schedule in sorted(desired.schedules_of(campaign), key=lambda s: s.name):
        if schedule.active is not None:
            return schedule.active
    return None


def outside_active_period(desired: DesiredState, campaign: str, now: datetime) -> str | None:
    """Why the campaign must not run now (before or after its active period), or None."""
    window = active_period(desired, campaign)
    if window is None or window.contains(now):
        return None
    if now < window.begin:
        return f"outside its active period (starts {window.begin.isoformat()})"
    return f"outside its active period (ended {window.end.isoformat()})"


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def quiet_now(desired: DesiredState, campaign: str, now: datetime) -> tuple[bool, datetime | None]:
    """Whether ``now`` falls in the campaign's quiet hours, and when they end (aware datetime).

    Wall-clock hours in the declared time zone, so a DST change moves them with local time; a range
    like 21:00-08:00 wraps past midnight.
    """
    for schedule in sorted(desired.schedules_of(campaign), key=lambda s: s.name):
        quiet = schedule.quiet_hours
        if quiet is None:
            continue
        zone = ZoneInfo(quiet.timezone)
        local = now.astimezone(zone)
        start, end = _hhmm(quiet.start), _hhmm(quiet.end)
        minute = local.hour * 60 + local.minute
        inside = (start <= minute < end) if start < end else (minute >= start or minute < end)
        if not inside:
            continue
        day = local.date() if minute < end else local.date() + timedelta(days=1)
        ends = datetime.combine(day, time(end // 60, end % 60), tzinfo=zone)
        return True, ends.astimezone(now.tzinfo)
    return False, None


def _hhmm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def sending_hold(desired: DesiredState, campaign: str, now: datetime) -> tuple[str | None, datetime | None]:
    """Why SMS may not be sent now (and when that ends, if known), or (None, None)."""
    outside = outside_active_period(desired, campaign, now)
    if outside:
        window = active_period(desired, campaign)
        return outside, (window.begin if window and now < window.begin else None)
    quiet, ends = quiet_now(desired, campaign, now)
    if quiet:
        return f"quiet hours until {ends.isoformat() if ends else '?'}", ends
    return None, None
