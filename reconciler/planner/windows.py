"""Concrete IoT schedule windows: the occurrence of a recurring window that is current or next, and
whether a gateway still waits for a window.

A recurring window (``daily: "01:00-05:00"`` or ``weekly: {days: [sat, sun], time: ...}`` with a
``timezone``) is wall-clock hours in an IANA time zone; the backend only takes instants, so the planner
sends one occurrence at a time: the one ``now`` is inside, else the next one.

Daylight-saving rules (the clock of ``timezone`` decides; times are whole minutes):

- the window begins the first time the clock shows its start, and ends one minute after the first
  time the clock shows its last minute (``end`` minus one minute);
- a time the clock skips (spring forward: 02:00-03:00 on the last Sunday of March in Europe/Berlin) is
  replaced by the first moment after the gap (03:00 summer time). A window partly inside the gap is
  shortened to the hours that exist; a window entirely inside it does not occur that day (the next
  occurrence is used);
- a time the clock shows twice (fall back: 02:00-03:00 on the last Sunday of October in Europe/Berlin,
  01:00-02:00 on the first Sunday of November in America/New_York) counts at its first pass. So a window
  inside the repeated hour, or ending in it, happens once, in summer time; a window that spans the whole
  repeated hour (00:00-04:00) lasts an hour longer, as the clock shows every minute of it.

Weekly ``days`` are the days an occurrence starts on (``fri`` with ``23:00-02:00`` ends on Saturday).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from reconciler.model import IotWindow, RecurringWindow, TimeWindow
from reconciler.planner.timing import epoch_ms

__all__ = ["WINDOW_ORDER", "concrete", "epoch_ms", "first_shown", "from_ms", "next_occurrence",
           "occurrence_on", "waits_for"]

MINUTE = timedelta(minutes=1)

#: the lifecycle order of the windows (a gateway downloads, then executes, then activates)
WINDOW_ORDER = ("download", "execution", "activation")

def waits_for(waiting: Mapping[str, frozenset[str]], window: str, state: str, closed: bool = False) -> bool:
    """True when a gateway in ``state`` has not yet begun the step ``window`` gates. ``waiting`` is the
    backend's ``Lifecycle.member_waiting`` (per window, the states before that step): states after it (or
    in progress in it), failures, closed gateways and state strings the backend does not name are not
    waiting: unknown states are opaque."""
    return not closed and state in waiting.get(window, frozenset())


def hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _exists(local: datetime, tz: ZoneInfo) -> bool:
    aware = local.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local


def first_shown(local: datetime, tz: ZoneInfo) -> datetime:
    """The first instant at which the clock of ``tz`` shows the naive wall time ``local``; a time the
    clock skips gives the first instant after the gap."""
    probe = local
    for _ in range(48 * 60):  # gaps are an hour or two; a whole skipped day (Samoa, 2011) is the worst case
        if _exists(probe, tz):
            return probe.replace(tzinfo=tz, fold=0).astimezone(UTC)
        probe = (probe + MINUTE).replace(second=0, microsecond=0)
    return local.replace(tzinfo=tz).astimezone(UTC)  # unreachable for real zones


def _shown_twice(local: datetime, tz: ZoneInfo) -> bool:
    first, second = local.replace(tzinfo=tz, fold=0), local.replace(tzinfo=tz, fold=1)
    return first.utcoffset() != second.utcoffset() and _exists(local, tz)


def occurrence_on(window: RecurringWindow, day: date) -> TimeWindow | None:
    """The occurrence that starts (by the wall clock) on ``day``; None when the window does not start
    that day or lies entirely in a skipped hour."""
    if window.days and day.weekday() not in window.days:
        return None
    tz = zone(window.timezone)
    start, end = hhmm(window.start), hhmm(window.end)
    local_begin = datetime.combine(day, start)
    local_end = datetime.combine(day + timedelta(days=1) if end <= start else day, end)
    begin = first_shown(local_begin, tz)
    last = local_end - MINUTE
    if _exists(local_end, tz) and _shown_twice(last, tz):
        finish = last.replace(tzinfo=tz, fold=0).astimezone(UTC) + MINUTE
    else:
        finish = first_shown(local_end, tz)
    return TimeWindow(begin, finish) if begin < finish else None


def next_occurrence(window: RecurringWindow, now: datetime) -> TimeWindow:
    """The occurrence ``now`` is inside, else the next one to begin (as UTC datetimes)."""
    today = now.astimezone(zone(window.timezone)).date()
    for offset in range(-2, 15):
        found = occurrence_on(window, today + timedelta(days=offset))
        if found is not None and found.end > now:
            return found
    raise ValueError(f"recurring window {window.describe()} has no occurrence")  # days are never empty


def concrete(window: IotWindow, now: datetime) -> TimeWindow:
    """What the backend gets for ``window`` at ``now``: a fixed window as declared, a recurring one as
    its current or next occurrence."""
    return next_occurrence(window, now) if isinstance(window, RecurringWindow) else window


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
