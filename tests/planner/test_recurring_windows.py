"""Recurring IoT windows turned into concrete occurrences (``reconciler.planner.windows``): the current or
next occurrence, across midnight, on listed weekdays, and across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from reconciler.model import RecurringWindow, TimeWindow
from reconciler.backends.iot_campaigns.adapter import LIFECYCLE
from reconciler.planner.windows import concrete, next_occurrence, occurrence_on, waits_for

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_inside_an_occurrence_it_is_the_current_one_and_at_its_end_the_next() -> None:
    window = RecurringWindow("01:00", "05:00", BERLIN)
    today = TimeWindow(utc(2026, 12, 10, 0), utc(2026, 12, 10, 4))
    assert next_occurrence(window, utc(2026, 12, 10, 0)) == today  # begin is inside
    assert next_occurrence(window, utc(2026, 12, 10, 3, 59)) == today
    assert next_occurrence(window, utc(2026, 12, 10, 4)) == TimeWindow(utc(2026, 12, 11, 0), utc(2026, 12, 11, 4))
    assert next_occurrence(window, utc(2026, 12, 9, 23)) == today


def test_a_window_across_midnight_ends_the_next_day() -> None:
    window = RecurringWindow("23:00", "02:00", BERLIN)
    assert occurrence_on(window, date(2026, 12, 9)) == TimeWindow(utc(2026, 12, 9, 22), utc(2026, 12, 10, 1))
    assert next_occurrence(window, utc(2026, 12, 10, 0, 59)) == occurrence_on(window, date(2026, 12, 9))


def test_weekly_days_are_the_days_an_occurrence_starts_on() -> None:
    friday_night = RecurringWindow("23:00", "02:00", NEW_YORK, (4,))  # fri 23:00 to sat 02:00
    found = next_occurrence(friday_night, utc(2026, 12, 12, 6))  # saturday 01:00 New York: inside
    assert found == TimeWindow(utc(2026, 12, 12, 4), utc(2026, 12, 12, 7))
    after = next_occurrence(friday_night, utc(2026, 12, 12, 7))
    assert after.begin == utc(2026, 12, 19, 4)  # a week later


@pytest.mark.parametrize(("zone", "day", "start", "end", "expected"), [
    # spring forward: the skipped hour does not exist
    (BERLIN, date(2027, 3, 28), "02:00", "03:00", None),
    (BERLIN, date(2027, 3, 28), "02:30", "04:00", (utc(2027, 3, 28, 1), utc(2027, 3, 28, 2))),
    (BERLIN, date(2027, 3, 28), "01:00", "02:30", (utc(2027, 3, 28, 0), utc(2027, 3, 28, 1))),
    (NEW_YORK, date(2027, 3, 14), "02:00", "03:00", None),
    (NEW_YORK, date(2027, 3, 14), "01:00", "04:00", (utc(2027, 3, 14, 6), utc(2027, 3, 14, 8))),
    # fall back: the repeated hour counts at its first pass
    (BERLIN, date(2027, 10, 31), "02:00", "03:00", (utc(2027, 10, 31, 0), utc(2027, 10, 31, 1))),
    (BERLIN, date(2027, 10, 31), "02:30", "02:45", (utc(2027, 10, 31, 0, 30), utc(2027, 10, 31, 0, 45))),
    (BERLIN, date(2027, 10, 31), "00:00", "04:00", (utc(2027, 10, 30, 22), utc(2027, 10, 31, 3))),
    (NEW_YORK, date(2027, 11, 7), "01:00", "02:00", (utc(2027, 11, 7, 5), utc(2027, 11, 7, 6))),
    (NEW_YORK, date(2027, 11, 7), "00:00", "01:00", (utc(2027, 11, 7, 4), utc(2027, 11, 7, 5))),
    (NEW_YORK, date(2027, 11, 7), "01:30", "03:00", (utc(2027, 11, 7, 5, 30), utc(2027, 11, 7, 8))),
])
def test_daylight_saving_changes(zone: str, day: date, start: str, end: str,
                                 expected: tuple[datetime, datetime] | None) -> None:
    found = occurrence_on(RecurringWindow(start, end, zone), day)
    assert found == (TimeWindow(*expected) if expected else None)


def test_a_day_without_the_window_gives_the_next_days_occurrence() -> None:
    window = RecurringWindow("02:00", "03:00", BERLIN)
    assert next_occurrence(window, utc(2027, 3, 27, 12)) == TimeWindow(utc(2027, 3, 29, 0), utc(2027, 3, 29, 1))


def test_every_occurrence_of_a_year_is_ordered_and_as_long_as_the_clock_says() -> None:
    """Walking a year of occurrences: each begins after the previous ended, and lasts its wall-clock length
    give or take the DST hour."""
    for zone in (BERLIN, NEW_YORK, "Australia/Lord_Howe", "UTC"):
        window = RecurringWindow("01:30", "03:15", zone)
        moment, previous = utc(2027, 1, 1), None
        for _ in range(370):
            found = next_occurrence(window, moment)
            assert found.end > moment
            if previous is not None:
                assert found.begin >= previous.end
            assert timedelta(minutes=45) <= found.end - found.begin <= timedelta(hours=2, minutes=45)
            previous, moment = found, found.end


def test_a_fixed_window_is_its_own_concrete_window() -> None:
    fixed = TimeWindow(utc(2027, 1, 1), utc(2027, 1, 2))
    assert concrete(fixed, utc(2030, 1, 1)) is fixed


@pytest.mark.parametrize(("window", "state", "closed", "waiting"), [
    ("download", "WAITING_FOR_DOWNLOAD", False, True),
    ("download", "SCHEDULED_DOWNLOAD", False, True),
    ("download", "DOWNLOADING", False, False),  # in progress: not stranded
    ("download", "DOWNLOAD_COMPLETE", False, False),
    ("execution", "DOWNLOAD_COMPLETE", False, True),
    ("activation", "EXECUTION_COMPLETE", False, True),
    ("activation", "ACTIVATION_COMPLETE", True, False),
    ("activation", "DOWNLOAD_FAILED", False, False),
    ("download", "WAITING_FOR_DOWNLOAD", True, False),  # closed: done with the campaign
    ("download", "SOMETHING_NEW", False, False),  # unknown states are opaque
])
def test_which_gateways_still_wait_for_a_window(window: str, state: str, closed: bool, waiting: bool) -> None:
    assert waits_for(LIFECYCLE.member_waiting, window, state, closed) is waiting
