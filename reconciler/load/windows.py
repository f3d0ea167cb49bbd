"""Checks of a Schedule's IoT windows (``download``, ``activation``, ``execution``) beyond the schema.

A window is fixed (``begin`` and ``end``, instants with offsets) or recurring (``daily: "HH:MM-HH:MM"`` or
``weekly: {days, time}``, with ``timezone``). The schema cannot say "exactly one form" in a way the
loader's fast check understands, so it is said here, at the offending node:

- a window has exactly one form; a fixed one has both ``begin`` and ``end`` and no ``timezone``;
- a recurring one names a real IANA time zone and a non-empty range (``01:00-01:00`` is nothing);
- a fixed window that ended before ``now`` (the load's time) is a warning, not an error: nothing is
  wrong with the file, but gateways that have not finished that step by then are stranded.

(``begin`` before ``end`` is checked with the other date-time windows, in ``rules``.)
"""

from __future__ import annotations

from datetime import datetime

from reconciler.diagnostics import Diagnostic, Severity
from reconciler.load.declared import Declared, Report
from reconciler.load.rules import WINDOWS, parse_moment, zone_problem
from reconciler.model import Kind

RECURRING = ("daily", "weekly")


def check_windows(item: Declared, report: Report, *, now: datetime) -> None:
    if item.kind is not Kind.SCHEDULE or not item.checkable:
        return
    for name in WINDOWS:
        value = item.get("spec", name)
        if isinstance(value, dict):
            _check_window(item, report, name, value, now)


def _check_window(item: Declared, report: Report, name: str, value: dict[str, object], now: datetime) -> None:
    where = f"spec.{name}"
    forms = [form for form in RECURRING if form in value]
    fixed = [key for key in ("begin", "end") if key in value]
    if not forms and not fixed:
        report.error(item, ("spec", name), f"{where}: the window is empty; declare `begin` and `end`, or `daily` or "
                     "`weekly` with `timezone`", at_key=True)
        return
    if forms and fixed:
        report.error(item, ("spec", name, forms[0]), f"{where}.{forms[0]}: a window is either fixed (`begin` and "
                     "`end`) or recurring (`daily` or `weekly`), not both", at_key=True)
        return
    if len(forms) > 1:
        report.error(item, ("spec", name, "weekly"), f"{where}.weekly: use either `daily` or `weekly`, not both",
                     at_key=True)
        return
    if fixed:
        _check_fixed(item, report, name, value, now)
    else:
        _check_recurring(item, report, name, value, forms[0])


def _check_fixed(item: Declared, report: Report, name: str, value: dict[str, object], now: datetime) -> None:
    where = f"spec.{name}"
    for key in ("begin", "end"):
        if key not in value:
            report.error(item, ("spec", name), f"{where}: missing required field `{key}`", at_key=True)
            return
    if "timezone" in value:
        report.error(item, ("spec", name, "timezone"), f"{where}.timezone: applies to `daily` and `weekly` windows; "
                     "`begin` and `end` carry their own offsets", at_key=True)
    begin, end = value["begin"], value["end"]
    if not isinstance(begin, str) or not isinstance(end, str):
        return
    start, stop = parse_moment(begin), parse_moment(end)
    if start < stop <= now:
        line, col = item.doc.at(("spec", name, "end"))
        report.add(Diagnostic(
            f"{where}.end: the window ended at {stop.isoformat()}, before now ({now.isoformat(timespec='seconds')}): "
            f"it is in the past, and gateways that have not finished their {name} by then are stranded (nothing "
            f"reschedules them). Declare a later window, or a recurring one, e.g. `{name}: {{daily: \"01:00-05:00\", "
            "timezone: Europe/Berlin}`", item.doc.file, line, col, severity=Severity.WARNING, resource=item.key))


def _check_recurring(item: Declared, report: Report, name: str, value: dict[str, object], form: str) -> None:
    where = f"spec.{name}"
    zone = value.get("timezone")
    if "timezone" not in value:
        report.error(item, ("spec", name), f"{where}: a `{form}` window needs `timezone` (an IANA name such as "
                     "Europe/Berlin): its hours are on that zone's wall clock", at_key=True)
    elif isinstance(zone, str):
        problem = zone_problem(zone)
        if problem is not None:
            report.error(item, ("spec", name, "timezone"), f"{where}.timezone: {problem}")
    path = ("spec", name, "daily") if form == "daily" else ("spec", name, "weekly", "time")
    text = item.get(*path)
    if isinstance(text, str):
        start, _, end = text.partition("-")
        if start == end:
            report.error(item, path, f"{where}.{'daily' if form == 'daily' else 'weekly.time'}: `{text}` is empty (it "
                         "begins where it ends); a window crossing midnight ends earlier than it begins, e.g. "
                         "`23:00-02:00`")
