"""IoT schedule windows in YAML: the recurring form (``daily`` / ``weekly`` with ``timezone``) is built into a
``RecurringWindow`` and checked at the offending node; a fixed window that already ended is a warning (the
load's ``now``), not an error."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.diagnostics import Severity
from reconciler.load import load_desired_state
from reconciler.model import RecurringWindow, TimeWindow

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
HEAD = """\
apiVersion: reconciler/v1
kind: Backend
metadata: {name: iot}
spec:
  type: iot-campaigns
  url: http://127.0.0.1:8702
  auth: {username: admin, password: {env: IOT_PASSWORD}}
---
apiVersion: reconciler/v1
kind: Campaign
metadata: {name: fw}
spec:
  backend: iot
---
apiVersion: reconciler/v1
kind: Schedule
metadata: {name: s}
spec:
  campaign: fw
"""
FIRST_WINDOW_LINE = HEAD.count("\n") + 1  # the line of the first window written after HEAD


def load(tmp_path: Path, windows: str, *, now: datetime = NOW):
    (tmp_path / ".git").mkdir(exist_ok=True)
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + windows, encoding="utf-8")
    return load_desired_state([path], root=tmp_path, now=now)


def problems(result, severity: Severity = Severity.ERROR) -> list[tuple[int, int, str]]:
    return [(d.line, d.col, d.message) for d in result.diagnostics if d.severity is severity]


def test_daily_and_weekly_windows_become_recurring_windows(tmp_path: Path) -> None:
    """``daily`` and ``weekly`` (days as weekday numbers, Monday 0, sorted) with their time zone."""
    result = load(tmp_path, '  download: {daily: "01:00-05:00", timezone: Europe/Berlin}\n'
                            '  activation:\n'
                            '    weekly: {days: [sun, sat], time: "23:00-02:00"}\n'
                            '    timezone: America/New_York\n'
                            '  execution: {begin: "2027-03-09T03:00:00+01:00", end: "2027-03-09T04:00:00+01:00"}\n')
    assert result.diagnostics == ()
    schedule = result.desired.schedules["s"]
    assert schedule.download == RecurringWindow("01:00", "05:00", "Europe/Berlin")
    assert schedule.download.describe() == "daily 01:00-05:00 Europe/Berlin"
    assert schedule.activation == RecurringWindow("23:00", "02:00", "America/New_York", (5, 6))
    assert schedule.activation.describe() == "sat,sun 23:00-02:00 America/New_York"
    assert isinstance(schedule.execution, TimeWindow)


def test_unknown_time_zone_is_an_error_at_its_value(tmp_path: Path) -> None:
    result = load(tmp_path, '  download: {daily: "01:00-05:00", timezone: Europe/Berln}\n')
    assert problems(result) == [(FIRST_WINDOW_LINE, 46, "spec.download.timezone: unknown time zone `Europe/Berln` "
                                 "(did you mean `Europe/Berlin`?); expected an IANA name such as Europe/Berlin")]
    assert result.desired is None


@pytest.mark.parametrize("text", ["1:00-05:00", "01:00-24:00", "01:00 - 05:00", "01:00", "0100-0500", "25:00-02:00"])
def test_bad_time_range_is_an_error_at_its_value(tmp_path: Path, text: str) -> None:
    result = load(tmp_path, f'  download: {{daily: "{text}", timezone: Europe/Berlin}}\n')
    assert problems(result) == [(FIRST_WINDOW_LINE, 21, f"spec.download.daily: found `{text}`, expected a time range "
                                 "HH:MM-HH:MM (24 h), e.g. 01:00-05:00; it may cross midnight (23:00-02:00)")]


def test_bad_weekly_time_is_an_error_at_its_value(tmp_path: Path) -> None:
    result = load(tmp_path, '  activation:\n    weekly: {days: [sat], time: "2-4"}\n    timezone: UTC\n')
    assert [(line, col) for line, col, _ in problems(result)] == [(FIRST_WINDOW_LINE + 1, 33)]
    assert problems(result)[0][2].startswith("spec.activation.weekly.time: found `2-4`, expected a time range")


def test_empty_days_is_an_error(tmp_path: Path) -> None:
    result = load(tmp_path, '  activation:\n    weekly: {days: [], time: "02:00-04:00"}\n    timezone: UTC\n')
    assert problems(result) == [(FIRST_WINDOW_LINE + 1, 20, "spec.activation.weekly.days: found an empty list, "
                                 "expected at least one item")]


def test_unknown_day_and_repeated_day_are_errors(tmp_path: Path) -> None:
    result = load(tmp_path, '  activation:\n    weekly: {days: [sat, saturday, sat], time: "02:00-04:00"}\n'
                            '    timezone: UTC\n')
    messages = [message for _, _, message in problems(result)]
    assert any("spec.activation.weekly.days[1]: found `saturday`, expected one of: mon, tue, wed, thu, fri, sat, sun"
               in m for m in messages), messages
    assert any("duplicate item `sat`" in m for m in messages), messages


def test_recurring_window_without_time_zone_is_an_error_at_the_key(tmp_path: Path) -> None:
    result = load(tmp_path, '  download: {daily: "01:00-05:00"}\n')
    assert problems(result) == [(FIRST_WINDOW_LINE, 3, "spec.download: a `daily` window needs `timezone` (an IANA "
                                 "name such as Europe/Berlin): its hours are on that zone's wall clock")]


def test_an_empty_range_is_an_error(tmp_path: Path) -> None:
    result = load(tmp_path, '  download: {daily: "02:00-02:00", timezone: UTC}\n')
    assert [(line, col) for line, col, _ in problems(result)] == [(FIRST_WINDOW_LINE, 21)]
    assert "`02:00-02:00` is empty" in problems(result)[0][2]


@pytest.mark.parametrize(("window", "col", "fragment"), [
    ('{begin: "2027-03-01T01:00:00Z", daily: "01:00-05:00", timezone: UTC}', 45,
     "spec.download.daily: a window is either fixed (`begin` and `end`) or recurring"),
    ('{daily: "01:00-05:00", weekly: {days: [sat], time: "01:00-05:00"}, timezone: UTC}', 36,
     "spec.download.weekly: use either `daily` or `weekly`, not both"),
    ('{begin: "2027-03-01T01:00:00Z"}', 3, "spec.download: missing required field `end`"),
    ('{begin: "2027-03-01T01:00:00Z", end: "2027-03-01T05:00:00Z", timezone: UTC}', 74,
     "spec.download.timezone: applies to `daily` and `weekly` windows"),
    ("{}", 3, "spec.download: the window is empty"),
])
def test_a_window_has_exactly_one_form(tmp_path: Path, window: str, col: int, fragment: str) -> None:
    result = load(tmp_path, f"  download: {window}\n")
    found = problems(result)
    assert len(found) == 1 and found[0][:2] == (FIRST_WINDOW_LINE, col) and fragment in found[0][2], found


def test_a_fixed_window_in_the_past_is_a_warning_at_its_end(tmp_path: Path) -> None:
    """Valid (the model is built), with a warning at FILE:LINE:COL of ``end`` saying what happens."""
    result = load(tmp_path, '  download: {begin: "2026-12-01T01:00:00Z", end: "2026-12-01T05:00:00Z"}\n'
                            '  activation: {begin: "2026-12-07T11:00:00Z", end: "2026-12-07T13:00:00Z"}\n')
    assert result.valid
    assert problems(result) == []
    warnings = [d for d in result.diagnostics if d.severity is Severity.WARNING]
    assert [(d.file, d.line, d.col) for d in warnings] == [(str(tmp_path / "s.yaml"), FIRST_WINDOW_LINE, 50)]
    assert warnings[0].message.startswith(
        "spec.download.end: the window ended at 2026-12-01T05:00:00+00:00, before now (2026-12-07T12:00:00+00:00): "
        "it is in the past, and gateways that have not finished their download by then are stranded")
    assert warnings[0].resource == "Schedule/s"
    assert warnings[0].format().startswith(f"{tmp_path / 's.yaml'}:{FIRST_WINDOW_LINE}:50: warning: ")


def test_the_past_warning_follows_the_load_time(tmp_path: Path) -> None:
    """The same file loaded before the window ended has no warning; recurring windows never have one."""
    windows = ('  download: {begin: "2026-12-01T01:00:00Z", end: "2026-12-01T05:00:00Z"}\n'
               '  activation: {daily: "01:00-02:00", timezone: UTC}\n')
    assert load(tmp_path, windows, now=datetime(2026, 11, 30, tzinfo=UTC)).diagnostics == ()
    assert len(load(tmp_path, windows, now=datetime(2030, 1, 1, tzinfo=UTC)).diagnostics) == 1


def test_load_time_defaults_to_now(tmp_path: Path) -> None:
    """Without ``now`` the current time decides (a window of 2001 is in the past)."""
    (tmp_path / ".git").mkdir()
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + '  download: {begin: "2001-01-01T01:00:00Z", end: "2001-01-01T05:00:00Z"}\n')
    result = load_desired_state([path], root=tmp_path)
    assert [d.severity for d in result.diagnostics] == [Severity.WARNING]
