"""What was done, when, by whom: every apply and daemon pass that acted is recorded in the store, so
``reconcile history`` answers "who stopped this campaign, and when" from any checkout of a shared store.
Kept for a retention period (90 days by default); older entries are dropped as new ones are written."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reconciler.state.database import Database

DEFAULT_RETENTION_DAYS = 90.0


@dataclass(frozen=True)
class HistoryEntry:
    at: str  # ISO 8601, UTC
    revision: str  # the git revision applied ('' when unknown)
    who: str  # user@host
    command: str
    seconds: float
    ok: bool
    actions: tuple[Mapping[str, Any], ...]  # {verb, resource, outcome, message}

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at, "revision": self.revision, "who": self.who, "command": self.command,
                "seconds": self.seconds, "ok": self.ok, "actions": list(self.actions)}


class History:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, *, revision: str, who: str, command: str, seconds: float, ok: bool,
               actions: Sequence[Mapping[str, Any]], now: datetime | None = None,
               retention_days: float = DEFAULT_RETENTION_DAYS) -> None:
        """One entry (fenced like every write), and entries older than the retention are dropped."""
        at = now or datetime.now(UTC)
        campaigns = sorted({str(a["resource"]).split("/", 1)[1] for a in actions
                            if str(a["resource"]).startswith("Campaign/")})
        with self.db.write() as tx:
            tx.run("INSERT INTO history (at, at_epoch, revision, who, command, seconds, ok, actions, campaigns) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (at.isoformat(timespec="seconds"), at.timestamp(), revision, who, command, round(seconds, 3),
                    int(ok), json.dumps(list(actions), sort_keys=True), json.dumps(campaigns)))
            tx.run("DELETE FROM history WHERE at_epoch < ?", (at.timestamp() - retention_days * 86400,))

    def entries(self, *, campaign: str | None = None, limit: int = 20) -> list[HistoryEntry]:
        """Newest first; with ``campaign``, only entries that acted on it (and only its actions)."""
        query = "SELECT at, revision, who, command, seconds, ok, actions FROM history"
        args: list[Any] = []
        if campaign is not None:
            query += " WHERE instr(campaigns, ?) > 0"
            args.append(json.dumps(campaign))
        with self.db.read() as tx:
            rows = tx.rows(query + " ORDER BY seq DESC LIMIT ?", [*args, limit])
        out = []
        for at, revision, who, command, seconds, ok, actions in rows:
            acted = tuple(a for a in json.loads(actions)
                          if campaign is None or a["resource"] == f"Campaign/{campaign}")
            out.append(HistoryEntry(at, revision, who, command, float(seconds), bool(ok), acted))
        return out
