"""What the reconciler remembers between runs, as the planner sees it: beside what is declared (``model``)
and what the backends say (``observed``), what the state store holds (the inventory, last-applied values of
write-only fields, attempt counts), as plain data. The engine reads it from the store before planning
(``Store.view``); the planner imports this module, never ``reconciler.state``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class InventoryEntry:
    """An object this tool created: ``kind`` is "campaign" or "package"."""

    backend: str
    kind: str
    name: str
    remote_id: str


@dataclass(frozen=True)
class StoreView:
    """What the planner may know from the store. ``available`` is false without a store (a CI runner
    with nothing persisted): write-only values are then unknown, and the plan says so."""

    available: bool = True
    inventory: frozenset[InventoryEntry] = frozenset()
    applied: Mapping[tuple[str, str, str], str] = field(default_factory=dict)
    attempts: Mapping[tuple[str, str], int] = field(default_factory=dict)

    @cached_property
    def _owned(self) -> frozenset[tuple[str, str, str]]:
        return frozenset((e.backend, e.kind, e.remote_id) for e in self.inventory)

    def owns(self, backend: str, kind: str, remote_id: str) -> bool:
        return (backend, kind, remote_id) in self._owned

    def last_applied(self, backend: str, scope: str, key: str) -> str | None:
        return self.applied.get((backend, scope, key))


def canonical(value: Any) -> str:
    """The form in which applied values are stored and compared (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
