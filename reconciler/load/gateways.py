"""Gateway lists: the ids an assignment names, inline or in a file with one id per line.

A gateway file holds one id per line; blank lines and ``#`` comments (whole-line or trailing) are
skipped. Every bad id and every repeat is reported at its own line, capped per file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from reconciler.diagnostics import Diagnostic
from reconciler.load.schema_check import schema_for
from reconciler.model import Kind

MAX_PROBLEMS_PER_FILE = 50


@lru_cache(maxsize=None)
def gateway_id_rule() -> tuple[re.Pattern[str], str]:
    """The id pattern and its explanation, taken from the GatewayAssignment schema (one source)."""
    rule = schema_for(Kind.GATEWAY_ASSIGNMENT)["$defs"]["gatewayId"]
    return re.compile(rule["pattern"]), rule["patternErrorMessage"]


@dataclass
class GatewayScan:
    ids: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the line of each id
    diagnostics: list[Diagnostic] = field(default_factory=list)


def scan_gateway_file(path: Path, *, display: str, max_problems: int = MAX_PROBLEMS_PER_FILE) -> GatewayScan:
    """Read and check a gateway list file."""
    pattern, explanation = gateway_id_rule()
    scan = GatewayScan()
    first_line: dict[str, int] = {}
    hidden = 0
    first_hidden = (0, 0)

    def note(line: int, col: int, message: str) -> None:
        nonlocal hidden, first_hidden
        if len(scan.diagnostics) < max_problems:
            scan.diagnostics.append(Diagnostic(message, display, line, col))
            return
        hidden += 1
        if hidden == 1:
            first_hidden = (line, col)

    try:
        with open(path, "rb") as handle:
            for line_number, raw in enumerate(handle, start=1):
                if line_number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                if b"\x00" in raw:
                    note(line_number, raw.index(b"\x00") + 1, "line contains a NUL byte (binary file?)")
                    continue
                try:
                    text = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as exc:
                    col = len(raw[: exc.start].decode("utf-8", "replace")) + 1
                    note(line_number, col, f"not valid UTF-8 (byte 0x{raw[exc.start]:02X}); save the file as UTF-8")
                    continue
                content = text.split("#", 1)[0]
                gateway = content.strip()
                if not gateway:
                    continue
                col = len(content) - len(content.lstrip()) + 1
                if pattern.fullmatch(gateway) is None:
                    note(line_number, col, f"found `{gateway[:60]}`, expected {explanation}")
                elif gateway in first_line:
                    note(line_number, col, f"duplicate gateway `{gateway}` (first on line {first_line[gateway]})")
                else:
                    first_line[gateway] = line_number
                    scan.ids.append(gateway)
                    scan.lines.append(line_number)
    except OSError as exc:
        scan.diagnostics.append(Diagnostic(f"cannot read the gateway list: {exc.strerror or exc}", display))
        return scan
    if hidden:
        scan.diagnostics.append(Diagnostic(f"... and {hidden} more problems in this file from here on (only the "
                                           f"first {max_problems} are shown)", display, *first_hidden))
    return scan
