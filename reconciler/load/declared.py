"""A declared resource on its way through the checks, and the report the checks write to.

Every document whose kind is known becomes a ``Declared``: it takes part in name resolution even
when its own fields have schema problems, so one mistake does not turn into a cascade of "does not
exist" errors elsewhere. Checks beyond the schema skip the fields whose paths had schema problems.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.diagnostics import Diagnostic
from reconciler.load.positions import Path_, YamlDocument, unpack
from reconciler.model import Kind, SourceRef


@dataclass(eq=False)
class Declared:
    """One document of a known kind."""

    kind: Kind
    name: str | None  # None when metadata.name is missing or not a valid name
    doc: YamlDocument
    file_path: Path  # the YAML file on disk; ``doc.file`` is the path as the user gave it
    problem_paths: tuple[Path_, ...] = ()  # where the schema check found problems
    checkable: bool = True  # False after YAML-level problems (duplicate keys, bad tags)

    @property
    def key(self) -> str:
        return f"{self.kind.value}/{self.name or '?'}"

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.doc.value.get("spec") if isinstance(self.doc.value, dict) else None
        return spec if isinstance(spec, dict) else {}

    def source(self) -> SourceRef:
        return SourceRef(self.doc.file, *unpack(self.doc.root_mark))

    def usable(self, *path: str | int) -> bool:
        """True when nothing at, above or below ``path`` had a schema problem."""
        if not self.checkable:
            return False
        size = len(path)
        for bad in self.problem_paths:
            common = min(size, len(bad))
            if bad[:common] == path[:common]:
                return False
        return True

    def get(self, *path: str | int) -> Any:
        """The value at ``path`` (from the document root), or None when absent or unusable."""
        if not self.usable(*path):
            return None
        node: Any = self.doc.value
        for step in path:
            if isinstance(node, dict) and isinstance(step, str):
                node = node.get(step)
            elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
                node = node[step]
            else:
                return None
        return node


@dataclass
class Report:
    """Diagnostics collected across the whole load."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    def error(self, item: Declared, path: Path_, message: str, *, at_key: bool = False) -> None:
        line, col = item.doc.key_at(path) if at_key else item.doc.at(path)
        self.diagnostics.append(Diagnostic(message, item.doc.file, line, col, resource=item.key))

    def add(self, diagnostic: Diagnostic) -> None:
        self.diagnostics.append(diagnostic)

    def where(self, item: Declared, path: Path_) -> str:
        """``FILE:LINE:COL`` of a node, to name the other side of a conflict in a message."""
        line, col = item.doc.at(path)
        return f"{item.doc.file}:{line}:{col}"
