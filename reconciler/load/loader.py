"""The loader's entry point: paths in, a typed ``DesiredState`` or every problem found, out.

Steps: find the YAML files (recursively, in a deterministic order), read each one safely (size limit,
binary and encoding checks), parse its documents with positions, check each against its kind's
schema, then the rules within documents, then references across them. The model is built only when
no error was found. Bad input never raises: it becomes diagnostics.
"""

from __future__ import annotations

import os
import stat
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.cyclic_gc import cyclic_gc_paused
from reconciler.diagnostics import Diagnostic, Severity, has_errors, sorted_diagnostics
from reconciler.load.build import build_desired_state
from reconciler.load.declared import Declared, Report
from reconciler.load.recipients import ScanMemo
from reconciler.load.references import Names, check_references
from reconciler.load.repo_files import choose_root
from reconciler.load.rules import DocumentRules
from reconciler.load.schema_check import check_document, did_you_mean, shown
from reconciler.load.windows import check_windows
from reconciler.load.positions import YamlDocument
from reconciler.load.yaml_scalars import describe_noun
from reconciler.load.yaml_source import FileParse, parse_documents
from reconciler.model import DesiredState, Kind

DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024
YAML_SUFFIXES = (".yaml", ".yml")
KINDS_TEXT = ", ".join(kind.value for kind in Kind)
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class LoadResult:
    """``desired`` is None when any error was found; ``files`` are the YAML files read, as given."""

    desired: DesiredState | None
    diagnostics: tuple[Diagnostic, ...]
    files: tuple[str, ...]
    resources: int = 0  # documents of a known kind, valid or not

    @property
    def valid(self) -> bool:
        return self.desired is not None


def load_desired_state(
    paths: Sequence[Path],
    *,
    root: Path | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    now: datetime | None = None,
    scans: ScanMemo | None = None,
) -> LoadResult:
    """Load and check every YAML file under ``paths``; never raises for bad input. ``now`` (default: the
    current time) is what a fixed schedule window is compared with: one that ended before it is a warning.
    ``scans``: recipient files checked by earlier loads of this process (a daemon's), kept by content."""
    with cyclic_gc_paused():  # loading makes no reference cycles
        return _load([Path(p) for p in paths] or [Path("campaigns.d")], root=root, max_file_bytes=max_file_bytes,
                     now=now or datetime.now(UTC), scans=scans)


def _load(paths: list[Path], *, root: Path | None, max_file_bytes: int, now: datetime,
          scans: ScanMemo | None) -> LoadResult:
    report = Report()
    repo_root = choose_root(paths, root)
    unlisted: list[str] = []
    files = find_yaml_files(paths, report, root=repo_root, unreadable=unlisted)
    items: list[Declared] = []
    unreadable = bool(unlisted)  # a folder that could not be read may declare what a reference names
    for display, path in files:
        data = read_yaml_bytes(display, path, max_file_bytes=max_file_bytes, report=report)
        if data is None:
            unreadable = True
            continue
        parsed = FileParse()
        for doc in parse_documents(data[0], data[1], file=display, problems=report.diagnostics, outcome=parsed):
            item = declare(doc, path, report)
            if item is not None:
                items.append(item)
        unreadable = unreadable or parsed.cut_short
    names = Names(items, report, unreadable_files=unreadable)
    rules = DocumentRules(root=repo_root, report=report, scans=scans)
    for item in items:
        rules.check(item)
        check_windows(item, report, now=now)
    check_references(items, names, rules.facts, report)
    desired = None
    if not has_errors(report.diagnostics):
        desired = build_desired_state(items, rules.facts, root=str(repo_root))
    diagnostics = _capped(sorted_diagnostics(report.diagnostics))
    return LoadResult(desired, tuple(diagnostics), tuple(display for display, _ in files), len(items))


MAX_PROBLEMS_PER_FILE = 200


def _capped(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """At most ``MAX_PROBLEMS_PER_FILE`` per file (in position order), then one line saying how many more."""
    kept: dict[str, int] = {}
    hidden: dict[str, list[Diagnostic]] = {}
    result: list[Diagnostic] = []
    for diagnostic in diagnostics:
        if kept.get(diagnostic.file, 0) < MAX_PROBLEMS_PER_FILE:
            kept[diagnostic.file] = kept.get(diagnostic.file, 0) + 1
            result.append(diagnostic)
        else:
            hidden.setdefault(diagnostic.file, []).append(diagnostic)
    for file, rest in hidden.items():
        result.append(Diagnostic(f"... and {len(rest)} more problems in this file from here on (only the first "
                                 f"{MAX_PROBLEMS_PER_FILE} are shown)", file, rest[0].line, rest[0].col))
    return sorted_diagnostics(result)


UNREADABLE_CONSEQUENCE = ("what it declares is unknown, so nothing is planned from this load (a campaign declared "
                          "there would otherwise count as removed from git, and --prune would stop or delete it)")


def find_yaml_files(paths: Sequence[Path], report: Report, *, root: Path,
                    unreadable: list[str] | None = None) -> list[tuple[str, Path]]:
    """``*.yaml``/``*.yml`` under each path (hidden entries skipped), sorted; a named file is always read.

    A file found in a folder that is a symlink leading outside ``root`` is reported, not read: a pull
    request must not be able to make CI print parts of, say, ``/etc/shadow`` in diagnostics.

    A folder that cannot be listed (permissions, I/O error) is an error naming it, never skipped: what it
    declares would otherwise look removed from git (``unreadable`` collects such paths, as shown). Files
    that cannot be read are reported when read.
    """
    unlisted = unreadable if unreadable is not None else []
    found: list[tuple[str, Path]] = []
    seen: set[str] = set()
    real_root = os.path.realpath(root)

    def add(display: str, path: Path) -> None:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            found.append((display, path))

    for path in paths:
        display = str(path)
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            mode = None
        except OSError as exc:  # e.g. a parent folder that may not be searched
            unlisted.append(display)
            report.add(Diagnostic(f"cannot read: {exc.strerror or exc.__class__.__name__}; {UNREADABLE_CONSEQUENCE}",
                                  display))
            continue
        if mode is not None and stat.S_ISDIR(mode):
            batch: list[tuple[str, Path]] = []
            listed_before = len(unlisted)

            def unlistable(exc: OSError, path: Path = path, display: str = display) -> None:
                where = os.fsdecode(exc.filename) if exc.filename is not None else str(path)
                shown_as = os.path.normpath(os.path.join(display, os.path.relpath(where, path)))
                unlisted.append(shown_as)
                report.add(Diagnostic(f"cannot read this folder: {exc.strerror or exc.__class__.__name__}; "
                                      f"{UNREADABLE_CONSEQUENCE}", shown_as))

            for folder, subfolders, names in os.walk(path, onerror=unlistable):
                subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
                for name in sorted(names):
                    if name.endswith(YAML_SUFFIXES) and not name.startswith("."):
                        full = Path(folder) / name
                        batch.append((os.path.normpath(os.path.join(display, os.path.relpath(full, path))), full))
            if not batch and len(unlisted) == listed_before:
                report.add(Diagnostic(f"no *.yaml or *.yml files under {display}", display,
                                      severity=Severity.WARNING))
            for shown_as, full in batch:
                real = os.path.realpath(full)
                if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
                    report.add(Diagnostic(f"not read: a symlink that leads outside the repository root {root}",
                                          shown_as))
                else:
                    add(shown_as, full)
        elif mode is not None and stat.S_ISREG(mode):
            add(display, path)
        elif os.path.lexists(path):
            report.add(Diagnostic("not a regular file or directory", display))
        else:
            report.add(Diagnostic("no such file or directory", display))
    return found


def read_yaml_bytes(display: str, path: Path, *, max_file_bytes: int, report: Report) -> tuple[bytes, str] | None:
    """The file's bytes and text, or None after reporting why it cannot be YAML."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
            report.add(Diagnostic("not a regular file (a pipe, socket or device is never read)", display))
            return None
        size = info.st_size
        if size > max_file_bytes:
            report.add(Diagnostic(f"file is {size:,} bytes, over the limit of {max_file_bytes:,} bytes "
                                  "(see --max-file-bytes)", display))
            return None
        with open(path, "rb") as handle:
            data = handle.read(max_file_bytes + 1)
    except OSError as exc:
        report.add(Diagnostic(f"cannot read the file: {exc.strerror or exc.__class__.__name__}; "
                              f"{UNREADABLE_CONSEQUENCE}", display))
        return None
    if len(data) > max_file_bytes:
        report.add(Diagnostic(f"file is over the limit of {max_file_bytes:,} bytes (see --max-file-bytes)", display))
        return None
    nul = data.find(b"\x00")
    if nul >= 0:
        line, col = _byte_position(data, nul)
        report.add(Diagnostic("file contains a NUL byte: binary files (and UTF-16 text) are not YAML; YAML files "
                              "must be UTF-8 text", display, line, col))
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _byte_position(data, exc.start)
        report.add(Diagnostic(f"not valid UTF-8: byte 0x{data[exc.start]:02X} cannot be decoded (Latin-1?); save the "
                              "file as UTF-8", display, line, col))
        return None
    return data, text


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, len(data[line_start:offset].decode("utf-8", "replace")) + 1


def declare(doc: YamlDocument, path: Path, report: Report) -> Declared | None:
    """Check the envelope (mapping, kind, name) and the schema; None when the kind is not known."""
    value: Any = doc.value
    if not isinstance(value, dict):
        line, col = doc.at(())
        report.add(Diagnostic(f"a document must be a mapping with apiVersion, kind, metadata and spec; found "
                              f"{describe_noun(value)}", doc.file, line, col))
        return None
    kind_value = value.get("kind")
    if kind_value is None or not isinstance(kind_value, str) or kind_value not in Kind._value2member_map_:
        if "kind" not in value:
            line, col = doc.at(())
            message = f"missing `kind`; expected one of: {KINDS_TEXT}"
        else:
            line, col = doc.at(("kind",))
            hint = did_you_mean(kind_value, [k.value for k in Kind]) if isinstance(kind_value, str) else ""
            message = f"kind: unknown kind {shown(kind_value)}{hint}; expected one of: {KINDS_TEXT}"
        report.add(Diagnostic(message, doc.file, line, col))
        return None
    kind = Kind(kind_value)
    metadata = value.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    item = Declared(kind, name if isinstance(name, str) and _NAME.fullmatch(name) and len(name) <= 63 else None,
                    doc, path, checkable=not doc.yaml_problems)
    if not item.checkable:
        return item
    problems = check_document(kind, value)
    for problem in problems:
        report.error(item, problem.path, problem.message, at_key=problem.at_key)
    item.problem_paths = tuple(problem.blame for problem in problems)
    return item
