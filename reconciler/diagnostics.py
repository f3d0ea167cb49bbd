"""Diagnostics: expected problems as values, collected so one run reports every problem at once.

The text form ``FILE:LINE:COL: error: MESSAGE`` is a contract: editors and CI annotators parse it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from reconciler.escape import escape


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One problem. ``line``/``col`` are 1-based; 0 means the position is unknown."""

    message: str
    file: str = ""
    line: int = 0
    col: int = 0
    severity: Severity = Severity.ERROR
    resource: str = ""  # e.g. "Campaign/fw-2-4-rollout" when the problem belongs to one resource

    def format(self) -> str:
        """``FILE:LINE:COL: error: MESSAGE`` (position parts omitted when unknown), on one line whatever a
        file name or a backend's message contains (control characters escaped: no forged lines)."""
        where = escape(self.file) or "<input>"
        if self.line:
            where += f":{self.line}:{self.col or 1}"
        return f"{where}: {self.severity.value}: {escape(self.message)}"

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)


def sorted_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Stable, reader-friendly order: by file, then position, then message."""
    return sorted(diagnostics, key=lambda d: (d.file, d.line, d.col, d.message))
