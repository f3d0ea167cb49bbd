"""The executor: performs a plan's actions in dependency order, as concurrently as the dependencies and
each backend's limits allow, and turns every failure into an ``Outcome``.

- an action starts when all it depends on succeeded; if one did not, it is skipped (and says why);
- a failure affects only its dependents; unrelated actions go on. That holds for any exception an action
  raises, a bug included (an unexpected one is logged with its type and where it was raised, scrubbed of
  secrets), except those that must stop the whole run: a lost writer lease, and cancellation or interrupt
  (``CancelledError``, ``KeyboardInterrupt`` and ``SystemExit`` are not ``Exception``: never caught here);
- ``Produced`` references (e.g. the id of a campaign created earlier in the plan) are filled in first;
- what must be remembered (inventory, last-applied write-only values, attempts) is recorded in the
  state store as outcomes arrive.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import structlog

from reconciler.actions import Action, Produced, Verb
from reconciler.backends.protocol import Writer
from reconciler.errors import AuthError, PermanentBackendError, ReconcilerError, UnknownOutcomeError
from reconciler.model import ResourceKey
from reconciler.planner import memory
from reconciler.planner.plan import Plan
from reconciler.secrets import Redactor
from reconciler.state.lease import LeaseLostError
from reconciler.state.store import InventoryEntry, StateStore

log = structlog.get_logger("reconciler.engine")
APPLIED_FLUSH_EVERY = 500
#: characters of an unexpected exception's message an outcome keeps (a bug may put a whole reply in one)
MAX_UNEXPECTED_MESSAGE = 500


class OutcomeStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"  # the request may have taken effect; the next pass observes and decides
    SKIPPED = "skipped"  # a dependency did not succeed


@dataclass(frozen=True)
class Outcome:
    action: Action
    status: OutcomeStatus
    message: str = ""
    produced: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    permanent: bool = False  # failed in a way retrying cannot fix (refused, auth): stall until the spec changes

    @property
    def key(self) -> ResourceKey:
        return self.action.key


@dataclass(frozen=True)
class ExecutionReport:
    outcomes: tuple[Outcome, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(o.status is OutcomeStatus.SUCCEEDED for o in self.outcomes)

    def by_status(self, status: OutcomeStatus) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is status]


class ProgressSink(Protocol):
    """Who is told how an apply advances (the CLI's progress display)."""

    def planned(self, actions: int, messages: int) -> None:
        """The apply's totals: actions, and SMS messages the plan's sends hand over."""

    def done(self, outcome: Outcome) -> None:
        """One action finished, whatever its outcome."""

    def sent(self, messages: int) -> None:
        """``messages`` more SMS were handed to a backend."""


async def _adopt(action: Action) -> Mapping[str, Any]:
    """Adopting asks nothing of the backend: the campaign is recorded in the inventory (``_record``)."""
    return {"campaign_id": action.params["campaign_id"]}


class Executor:
    """Runs one plan. Create a new one per plan."""

    def __init__(self, *, writers: Mapping[str, Writer], store: StateStore | None, redactor: Redactor,
                 progress: ProgressSink | None = None,
                 performers: Mapping[Verb, Callable[[Action], Awaitable[Mapping[str, Any]]]] | None = None) -> None:
        self._writers = writers
        self._performers = dict(performers or {})
        self._store = store
        self._redactor = redactor
        self._progress = progress
        self._done: dict[str, asyncio.Event] = {}
        self._outcomes: dict[str, Outcome] = {}
        self._applied: list[tuple[str, str, str, str]] = []

    async def run(self, plan: Plan) -> ExecutionReport:
        started = time.monotonic()
        self._done = {a.id: asyncio.Event() for a in plan.actions}
        await asyncio.gather(*(self._run_one(a) for a in plan.actions))
        self._flush_applied()
        ordered = tuple(self._outcomes[a.id] for a in plan.actions)
        return ExecutionReport(ordered, time.monotonic() - started)

    async def _run_one(self, action: Action) -> None:
        for dep in action.depends_on:
            await self._done[dep].wait()
        blocked = [d for d in action.depends_on if self._outcomes[d].status is not OutcomeStatus.SUCCEEDED]
        if blocked:
            outcome = Outcome(action, OutcomeStatus.SKIPPED, f"skipped: {blocked[0]} did not succeed")
        else:
            outcome = await self._apply(action)
        self._outcomes[action.id] = outcome
        self._done[action.id].set()
        if self._progress is not None:
            self._progress.done(outcome)

    async def _apply(self, planned: Action) -> Outcome:
        started = time.monotonic()
        action = planned
        try:
            action = self._resolve(planned)
            produced = await self._perform(action)
            self._record(action, produced)
        except UnknownOutcomeError as exc:
            return self._finish(action, OutcomeStatus.UNKNOWN, str(exc), started)
        except LeaseLostError:
            raise  # not this action's failure: the whole run must stop
        except ReconcilerError as exc:  # backend refusals, store failures: reported per action
            permanent = isinstance(exc, PermanentBackendError | AuthError)
            return self._finish(action, OutcomeStatus.FAILED, str(exc), started, permanent=permanent)
        except Exception as exc:  # noqa: BLE001 - a bug or an unforeseen reply fails this action, not the run
            return self._unexpected(action, exc, started)
        return Outcome(action, OutcomeStatus.SUCCEEDED, "", dict(produced), time.monotonic() - started)

    async def _perform(self, action: Action) -> Mapping[str, Any]:
        if action.verb is Verb.RETRY_PARTICIPANT and self._store is not None:
            self._store.add_attempt(action.backend, memory.participant_key(
                int(action.params["campaign_id"]), int(action.params["participant_id"])))
        perform = self._performers.get(action.verb) or (
            _adopt if action.verb is Verb.ADOPT_CAMPAIGN else self._writers[action.backend].apply)
        return await perform(action)

    def _unexpected(self, action: Action, exc: Exception, started: float) -> Outcome:
        """An exception no layer below turned into a ``ReconcilerError``: its type and the line that raised
        it are logged, its message only scrubbed of every secret of the run (as every outcome's is)."""
        kind = type(exc).__name__
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""
        message = self._redactor.scrub(f"unexpected {kind}: {exc}")[:MAX_UNEXPECTED_MESSAGE]
        log.error("action.crashed", verb=action.verb.value, key=str(action.key), error_type=kind, at=where,
                  error=message)
        return Outcome(action, OutcomeStatus.FAILED, message, {}, time.monotonic() - started)

    def _finish(self, action: Action, status: OutcomeStatus, message: str, started: float, *,
                permanent: bool = False) -> Outcome:
        message = self._redactor.scrub(message)
        log.warning("action.failed", verb=action.verb.value, key=str(action.key), outcome=status.value,
                    error=message)
        return Outcome(action, status, message, {}, time.monotonic() - started, permanent)

    def _resolve(self, action: Action) -> Action:
        def value(v: Any) -> Any:
            if isinstance(v, Produced):
                return self._outcomes[v.action_id].produced[v.field]
            if isinstance(v, list):
                return [value(item) for item in v]
            return v

        params = {k: value(v) for k, v in action.params.items()}
        return Action(action.id, action.verb, action.key, action.backend, params, action.depends_on,
                      action.reason, action.destructive)

    def _record(self, action: Action, produced: Mapping[str, Any]) -> None:
        store = self._store
        if store is None:
            return
        if action.verb in (Verb.CREATE_CAMPAIGN, Verb.ADOPT_CAMPAIGN):
            store.record_created(InventoryEntry(action.backend, "campaign", action.params["name"],
                                                str(produced["campaign_id"])))
        elif action.verb is Verb.UPLOAD_PACKAGE:
            store.record_created(InventoryEntry(action.backend, "package", action.params["name"],
                                                str(produced["package_id"])))
        elif action.verb is Verb.DELETE_CAMPAIGN:
            store.forget(action.backend, "campaign", str(action.params["campaign_id"]))
        elif action.verb is Verb.DELETE_PACKAGE:
            store.forget(action.backend, "package", str(action.params["package_id"]))
        elif action.verb is Verb.REMOVE_GATEWAYS:
            for gateway in action.params["gateway_ids"]:
                store.forget_applied(action.backend, memory.SCHEDULE, f"{action.params['campaign_id']}/{gateway}/")
        for scope, key, value in memory.records_for(action, produced):
            self._applied.append((action.backend, scope, key, value))
        if len(self._applied) >= APPLIED_FLUSH_EVERY:
            self._flush_applied()

    def _flush_applied(self) -> None:
        if self._store is not None and self._applied:
            self._store.record_applied(self._applied)
        self._applied = []
