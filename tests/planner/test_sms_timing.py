"""Quiet hours and active periods for SMS: local wall-clock time, across midnight and a DST change."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.model import DesiredState, QuietHours, ScheduleSpec, TimeWindow
from reconciler.planner.timing import quiet_now, sending_hold


def desired(quiet: QuietHours | None = None, active: TimeWindow | None = None) -> DesiredState:
    return DesiredState(schedules={"s": ScheduleSpec(name="s", campaign="c", quiet_hours=quiet, active=active)})


BERLIN_NIGHTS = QuietHours(start="21:00", end="08:00", timezone="Europe/Berlin")


def test_evening_in_berlin_is_quiet_until_next_morning() -> None:
    quiet, ends = quiet_now(desired(BERLIN_NIGHTS), "c", datetime(2026, 12, 5, 21, 30, tzinfo=UTC))  # 22:30 local
    assert quiet
    assert ends == datetime(2026, 12, 6, 7, 0, tzinfo=UTC)  # 08:00 CET


def test_early_morning_is_quiet_until_the_same_morning() -> None:
    quiet, ends = quiet_now(desired(BERLIN_NIGHTS), "c", datetime(2026, 12, 5, 5, 0, tzinfo=UTC))  # 06:00 local
    assert quiet and ends == datetime(2026, 12, 5, 7, 0, tzinfo=UTC)


def test_daytime_is_not_quiet() -> None:
    assert quiet_now(desired(BERLIN_NIGHTS), "c", datetime(2026, 12, 5, 12, 0, tzinfo=UTC)) == (False, None)


def test_quiet_hours_follow_local_time_across_the_spring_dst_change() -> None:
    # 2027-03-28 Berlin switches to CEST at 02:00: 07:30 UTC is 09:30 local (not quiet); 06:30 UTC is 08:30.
    assert not quiet_now(desired(BERLIN_NIGHTS), "c", datetime(2027, 3, 28, 6, 30, tzinfo=UTC))[0]
    quiet, ends = quiet_now(desired(BERLIN_NIGHTS), "c", datetime(2027, 3, 28, 5, 30, tzinfo=UTC))  # 07:30 CEST
    assert quiet and ends == datetime(2027, 3, 28, 6, 0, tzinfo=UTC)  # 08:00 CEST


def test_same_utc_moment_differs_by_time_zone() -> None:
    moment = datetime(2026, 12, 5, 14, 0, tzinfo=UTC)  # 15:00 Berlin, 09:00 New York, 23:00 Tokyo
    tokyo = QuietHours(start="21:00", end="08:00", timezone="Asia/Tokyo")
    assert not quiet_now(desired(BERLIN_NIGHTS), "c", moment)[0]
    assert quiet_now(desired(tokyo), "c", moment)[0]


def test_outside_the_active_period_holds_until_it_begins() -> None:
    window = TimeWindow(datetime(2026, 12, 5, 8, tzinfo=UTC), datetime(2026, 12, 5, 20, tzinfo=UTC))
    held, until = sending_hold(desired(active=window), "c", datetime(2026, 12, 5, 6, tzinfo=UTC))
    assert held and "starts" in held and until == window.begin
    assert sending_hold(desired(active=window), "c", datetime(2026, 12, 5, 9, tzinfo=UTC)) == (None, None)
