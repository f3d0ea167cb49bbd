"""A parsed YAML document and where each of its nodes was written.

Positions are kept per container and looked up along a path only when a diagnostic needs one, which
keeps loading fast: most documents are valid and never ask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Path_ = tuple[str | int, ...]
"""A node's place in its document: keys and indexes from the root, e.g. ("spec", "packages", 0)."""


def pack(mark: Any) -> int:
    return (mark.line + 1) << 32 | (mark.column + 1)


def unpack(packed: int) -> tuple[int, int]:
    return packed >> 32, packed & 0xFFFFFFFF


@dataclass
class YamlDocument:
    """One document of a file: its value and where each of its nodes was written.

    Positions are kept per container (``marks``: id of a dict -> (dict, key marks, value marks); id of a
    list -> (list, item marks)) and looked up along a path only when a diagnostic needs one, which keeps
    loading fast. A node reached through an alias reports the position inside the anchored original.
    """

    file: str
    index: int
    value: Any
    root_mark: int = field(repr=False)
    marks: dict[int, tuple[Any, ...]] = field(repr=False)
    yaml_problems: bool = False  # duplicate keys, bad tags...: reported; the document is not checked further

    def _walk(self, path: Path_, want_key: bool) -> tuple[int, int]:
        node, found, marks = self.value, self.root_mark, self.marks
        last = len(path) - 1
        for depth, step in enumerate(path):
            entry = marks.get(id(node)) if isinstance(node, (dict, list)) else None
            if entry is None or entry[0] is not node:
                break
            if isinstance(node, dict):
                if step not in node:
                    break
                if want_key and depth == last:
                    mark = entry[1].get(step)
                else:
                    mark = entry[2].get(step)
                node = node[step]
            else:
                if not isinstance(step, int) or not 0 <= step < len(node):
                    break
                mark = entry[1][step] if step < len(entry[1]) else None
                node = node[step]
            if mark is None:
                break
            found = mark
        return unpack(found)

    def at(self, path: Path_) -> tuple[int, int]:
        """Position of the node at ``path``, or of the nearest ancestor with a known position."""
        return self._walk(path, False)

    def key_at(self, path: Path_) -> tuple[int, int]:
        """Position of the mapping key that names ``path`` (for an unknown or misplaced key)."""
        return self._walk(path, True)
