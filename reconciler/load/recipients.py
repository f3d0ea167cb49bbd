"""Recipient lists: CSV files streamed row by row, checked with their own line numbers.

Format: one recipient per line, ``number[,param...]``; an optional header line (recognised when its
first field holds no digit, e.g. ``number,city``); blank lines and lines starting with ``#`` are
skipped. A number is an optional ``+`` then 6 to 15 digits. Fields may be quoted CSV-style, but a
row is always one line, of at most ``MAX_LINE_BYTES``. Files are never loaded whole: the loader scans
them once to check and count, and the sender streams them again with ``iter_recipients``.

Parameters have no length limit of their own; what bounds them is the message each recipient gets,
which must fit the campaign's backend (``oversized_messages``, called once the backend is known).
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from reconciler.diagnostics import Diagnostic
from reconciler.model import Recipient

MAX_PROBLEMS_PER_FILE = 50
MAX_LINE_BYTES = 64 * 1024  # a number and its parameters; a longer line is refused, never read whole
NUMBER = re.compile(r"^\+?[0-9]{6,15}$")


def number_problem(number: str) -> str | None:
    """Why ``number`` is not a phone number, or None when it is one."""
    if NUMBER.fullmatch(number):
        return None
    if not number:
        return "empty phone number"
    digits = number[1:] if number.startswith("+") else number
    if not digits.isdigit() or not digits.isascii():
        bad = next(c for c in digits if not ("0" <= c <= "9")) if digits else "+"
        return f"phone number `{number[:40]}` contains `{bad}`; expected an optional '+' then 6 to 15 digits"
    return f"phone number `{number}` has {len(digits)} digits; expected 6 to 15"


def dedupe_key(number: str) -> int:
    """A compact key for duplicate detection: ``+49...`` and ``49...`` are the same number."""
    return int("1" + number.lstrip("+"))  # the leading 1 keeps leading zeros significant


@dataclass(frozen=True)
class _Row:
    line: int
    col: int  # column of the number
    number: str = ""
    params: tuple[str, ...] = ()
    problem: str | None = None


def _split(text: str) -> list[str]:
    if '"' not in text:
        return text.split(",")
    return next(csv.reader([text], strict=True), [""])


def _lines(handle: BinaryIO) -> Iterator[tuple[bytes, int]]:
    """The file's lines, each cut at ``MAX_LINE_BYTES + 1`` bytes, with its full length (the rest of an
    over-long line is skipped in chunks: memory stays bounded whatever the file holds)."""
    readline = handle.readline
    while raw := readline(MAX_LINE_BYTES + 1):
        size = len(raw)
        if size > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while rest := readline(1 << 20):
                size += len(rest)
                if rest.endswith(b"\n"):
                    break
        yield raw, size


def _rows(path: Path) -> Iterator[_Row]:
    """Every content row of the file (comments, blank lines and the header skipped), good or bad."""
    with open(path, "rb") as handle:
        header_possible = True
        for line_number, (raw, size) in enumerate(_lines(handle), start=1):
            if line_number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if size > MAX_LINE_BYTES:
                header_possible = False
                yield _Row(line_number, 1, problem=f"line is {size:,} bytes long, over the limit of "
                                                   f"{MAX_LINE_BYTES:,} bytes per row (a number and its parameters)")
                continue
            if b"\x00" in raw:
                yield _Row(line_number, raw.index(b"\x00") + 1, problem="line contains a NUL byte (binary file?)")
                continue
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                col = len(raw[: exc.start].decode("utf-8", "replace")) + 1
                yield _Row(line_number, col, problem=f"not valid UTF-8 (byte 0x{raw[exc.start]:02X}); save the file as UTF-8")
                continue
            stripped = text.strip()
            if not stripped or stripped.startswith("#"):
                continue
            try:
                fields = _split(text)
            except csv.Error as exc:
                yield _Row(line_number, 1, problem=f"cannot read the row as CSV: {exc}")
                continue
            first = fields[0] if fields else ""
            if header_possible:
                header_possible = False
                if not any(c.isdigit() for c in first):
                    continue  # a header line such as ``number,city``
            number = first.strip()
            col = len(first) - len(first.lstrip()) + 1
            problem = number_problem(number)
            yield _Row(line_number, col, number, tuple(f.strip() for f in fields[1:]), problem)


@dataclass
class RecipientScan:
    """The result of checking one file: how many good rows and what is wrong (capped)."""

    count: int = 0
    diagnostics: list[Diagnostic] = field(default_factory=list)
    params_chars: int = 0  # the most characters the parameters of one good row take together
    params_bytes: int = 0  # the same in UTF-8 bytes


def scan_recipients(path: Path, *, display: str, max_problems: int = MAX_PROBLEMS_PER_FILE) -> RecipientScan:
    """Check every row of a recipient file; duplicates are reported at the repeat, naming the first line."""
    scan = RecipientScan()
    problems: list[tuple[int, int, str]] = []
    hidden = 0
    first_hidden = (0, 0)
    seen: set[int] = set()
    repeats: list[tuple[int, int, str]] = []  # (line, col, number) of repeats, first lines found below

    def hide(line: int, col: int) -> None:
        nonlocal hidden, first_hidden
        hidden += 1
        if hidden == 1:
            first_hidden = (line, col)

    def note(line: int, col: int, message: str) -> None:
        if len(problems) + len(repeats) < max_problems:
            problems.append((line, col, message))
        else:
            hide(line, col)

    try:
        for row in _rows(path):
            if row.problem is not None:
                note(row.line, row.col, row.problem)
                continue
            key = dedupe_key(row.number)
            if key in seen:
                if len(problems) + len(repeats) < max_problems:
                    repeats.append((row.line, row.col, row.number))
                else:
                    hide(row.line, row.col)
                continue
            seen.add(key)
            scan.count += 1
            if row.params:
                chars = sum(map(len, row.params))
                size = chars if all(map(str.isascii, row.params)) else sum(len(p.encode()) for p in row.params)
                if chars > scan.params_chars:
                    scan.params_chars = chars
                if size > scan.params_bytes:
                    scan.params_bytes = size
    except OSError as exc:
        scan.diagnostics.append(Diagnostic(f"cannot read recipients: {exc.strerror or exc}", display))
        return scan
    seen.clear()
    if repeats:
        firsts = _first_lines(path, {dedupe_key(number) for _, _, number in repeats})
        for line, col, number in repeats:
            problems.append((line, col, f"duplicate recipient `{number}` (first on line {firsts.get(dedupe_key(number), '?')})"))
    problems.sort()
    scan.diagnostics.extend(Diagnostic(message, display, line, col) for line, col, message in problems)
    if hidden:
        scan.diagnostics.append(Diagnostic(f"... and {hidden} more problems in this file from here on (only the "
                                           f"first {max_problems} are shown)", display, *first_hidden))
    return scan


READ_BLOCK = 1 << 20
MEMO_FILES = 1000  # a memo holding more recipient files than this is emptied (a declaration names a few)


def file_digest(path: Path) -> str | None:
    """BLAKE2b of the file's bytes (None when it cannot be read): the cheap way to tell that a recipients
    file is the same as before, without reading its rows (a million rows: ~50 ms against ~6 s)."""
    digest = hashlib.blake2b(digest_size=32)
    try:
        with path.open("rb") as handle:
            while block := handle.read(READ_BLOCK):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


@dataclass
class ScanMemo:
    """Recipient files' checks kept by a long-running process (the daemon loads its declarations in every
    pass) under the file's content digest: a file whose bytes did not change is not checked row by row
    again. A scan is only kept when the file was the same before and after it (an operator may be writing
    it)."""

    found: dict[tuple[Path, str], tuple[str, RecipientScan]] = field(default_factory=dict)

    def scan(self, path: Path, *, display: str) -> RecipientScan:
        key, digest = (path, display), file_digest(path)
        kept = self.found.get(key)
        if digest is not None and kept is not None and kept[0] == digest:
            return kept[1]
        scan = scan_recipients(path, display=display)
        self.found.pop(key, None)
        if digest is not None and file_digest(path) == digest:
            if len(self.found) >= MEMO_FILES:
                self.found.clear()
            self.found[key] = (digest, scan)
        return scan


def _first_lines(path: Path, keys: set[int]) -> dict[int, int]:
    found: dict[int, int] = {}
    for row in _rows(path):
        if row.problem is None:
            key = dedupe_key(row.number)
            if key in keys and key not in found:
                found[key] = row.line
    return found


@dataclass
class OversizedMessages:
    """Rows whose message does not fit: ``rows`` holds ``(line, col, number, why)`` of the first ones,
    ``more`` counts the rest, ``first_more`` is where the rest begins."""

    rows: list[tuple[int, int, str, str]] = field(default_factory=list)
    more: int = 0
    first_more: tuple[int, int] = (0, 0)


def oversized_messages(path: Path, problem: Callable[[tuple[str, ...]], str | None], *,
                       max_problems: int = MAX_PROBLEMS_PER_FILE) -> OversizedMessages:
    """Rows whose message does not fit: ``problem(params)`` says why (or None when it fits).

    Streams the file once more; the caller asks only when ``RecipientScan`` says some row might not fit.
    """
    found = OversizedMessages()
    for row in _rows(path):
        if row.problem is not None or not row.params:
            continue
        why = problem(row.params)
        if why is None:
            continue
        if len(found.rows) < max_problems:
            found.rows.append((row.line, row.col, row.number, why))
        else:
            found.more += 1
            if found.more == 1:
                found.first_more = (row.line, row.col)
    return found


def iter_recipients(path: Path) -> Iterator[tuple[int, Recipient]]:
    """Stream the good rows of a recipient file as ``(line number, Recipient)``.

    Bad rows are skipped: a file with bad rows never passes the loader, so at send time there are none.
    """
    for row in _rows(path):
        if row.problem is None:
            yield row.line, Recipient(row.number, row.params)
