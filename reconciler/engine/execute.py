"""The executor: performs a plan's actions in dependency order, as concurrently as the dependencies and
each backend's limits allow, and turns every failure into an ``Outcome``.

- an action starts when all it depends on succeeded; if one did not, it is skipped (and says why);
- a failure affects only its dependents; unrelated actions go on. That holds for any exception an action
  raises, a bug included (an unexpected one is logged with its type and where it was raised, scrubbed of
  secrets), except those that must stop the whole run: a lost writer lease, and cancellation or interrupt
  (``CancelledError``, ``KeyboardInterrupt`` and ``SystemExit`` are not ``Exception``: never caught here);
  the run's other actions in flight are then cancelled;
- ``Produced`` references (e.g. the id of a campaign created earlier in the plan) are filled in first;
- what must be remembered (inventory, last-applied write-only values, attempts) is recorded in the
  state store as outcomes arrive.

Memory stays flat in the plan's size (a 100,000-gateway fleet plans some 215,000 actions): no task or event
per action, but Kahn's bookkeeping, an integer per action (dependencies not finished yet) and the list of
who waits on it. An action whose last dependency finished goes to its backend's ready queue, which a
bounded pool of workers drains (``WORKERS_PER_BACKEND``); what a backend is sent at once stays bounded by
its client (``limits.concurrency``, ``BackendHttp``), the workers only bound what waits for that gate. One
pool per backend: a slow backend never holds up another's actions.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections import Counter
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
#: workers draining one backend's ready queue: the most ``limits.concurrency`` allows (1-256), so the
#: client's gate, not the pool, is what bounds a backend's requests in flight
WORKERS_PER_BACKEND = 256
#: a worker lets the event loop run (signals, the daemon's endpoints) at least every so many actions
YIELD_EVERY = 64
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


class DependencyGraph:
    """Kahn's bookkeeping for one plan: per action (by its index in the plan) the number of dependencies
    not finished yet, and the actions that wait on it. A plan that names an action it does not hold is a
    planner bug: refused here rather than left waiting forever."""

    def __init__(self, actions: tuple[Action, ...]) -> None:
        self.index = {a.id: i for i, a in enumerate(actions)}
        if len(self.index) != len(actions):
            raise ValueError("the plan holds two actions with one id")
        self.waiting = [len(a.depends_on) for a in actions]
        self.dependents: dict[int, list[int]] = {}
        for i, action in enumerate(actions):
            for dep in action.depends_on:
                if dep not in self.index:
                    raise ValueError(f"action {action.id} depends on {dep}, which the plan does not hold")
                self.dependents.setdefault(self.index[dep], []).append(i)

    def finished(self, i: int) -> list[int]:
        """Action ``i`` finished: the actions whose last dependency it was, in plan order."""
        ready = []
        for j in self.dependents.pop(i, ()):
            self.waiting[j] -= 1
            if self.waiting[j] == 0:
                ready.append(j)
        return ready


class Executor:
    """Runs one plan. Create a new one per plan."""

    def __init__(self, *, writers: Mapping[str, Writer], store: StateStore | None, redactor: Redactor,
                 progress: ProgressSink | None = None,
                 performers: Mapping[Verb, Callable[[Action], Awaitable[Mapping[str, Any]]]] | None = None,
                 workers_per_backend: int = WORKERS_PER_BACKEND) -> None:
        self._writers = writers
        self._performers = dict(performers or {})
        self._store = store
        self._redactor = redactor
        self._progress = progress
        self._workers_per_backend = max(1, workers_per_backend)
        self._actions: tuple[Action, ...] = ()
        self._graph = DependencyGraph(())
        self._outcomes: list[Outcome | None] = []
        self._queues: dict[str, asyncio.Queue[int]] = {}
        self._unfinished = 0  # actions without an outcome yet
        self._in_hand = 0  # actions queued or being applied
        self._all_finished = asyncio.Event()
        self._fatal: BaseException | None = None  # what stops the run (a lost lease, cancellation, a bug)
        self._stopping = False
        self._applied: list[tuple[str, str, str, str]] = []

    async def run(self, plan: Plan) -> ExecutionReport:
        started = time.monotonic()
        self._start(plan.actions)
        if self._unfinished:
            await self._drain()
        self._flush_applied()
        ordered = tuple(o for o in self._outcomes if o is not None)
        return ExecutionReport(ordered, time.monotonic() - started)

    def _start(self, actions: tuple[Action, ...]) -> None:
        """The graph, one ready queue per backend, and the actions that depend on nothing queued."""
        self._actions, self._graph = actions, DependencyGraph(actions)
        self._outcomes = [None] * len(actions)
        self._unfinished = len(actions)
        self._queues = {a.backend: asyncio.Queue() for a in actions}
        for i, waiting in enumerate(self._graph.waiting):
            if waiting == 0:
                self._enqueue(i)
        self._check_progress()

    async def _drain(self) -> None:
        """Work until every action has an outcome, or something stops the run (then re-raised here)."""
        per_backend = Counter(a.backend for a in self._actions)
        workers = [asyncio.create_task(self._work(self._queues[backend]))
                   for backend, count in per_backend.items() for _ in range(min(count, self._workers_per_backend))]
        try:
            await self._all_finished.wait()
        finally:
            self._stopping = True
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        if self._fatal is not None:
            raise self._fatal

    async def _work(self, queue: asyncio.Queue[int]) -> None:
        """One worker of one backend: applies what its queue holds until cancelled by ``_drain``."""
        applied = 0
        try:
            while True:
                i = await queue.get()
                outcome = await self._apply(self._actions[i])
                self._in_hand -= 1
                self._settle(i, outcome)
                applied += 1
                if applied % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # actions that never wait (adopt) must not starve the loop
        except BaseException as exc:
            if not self._stopping:  # not the run's own end: an action or a bug stops the run
                self._halt(exc)
            raise

    def _settle(self, i: int, outcome: Outcome) -> None:
        """Record ``outcome`` of action ``i``; queue the dependents it was the last of, or skip them (and
        theirs) when a dependency did not succeed."""
        settled = [(i, outcome)]
        while settled:
            j, result = settled.pop()
            self._outcomes[j] = result
            self._unfinished -= 1
            if self._progress is not None:
                self._progress.done(result)
            skipped = []
            for ready in self._graph.finished(j):
                blocked = self._blocked(ready)
                if blocked is None:
                    self._enqueue(ready)
                else:
                    skipped.append((ready, Outcome(self._actions[ready], OutcomeStatus.SKIPPED,
                                                   f"skipped: {blocked} did not succeed")))
            settled.extend(reversed(skipped))
        self._check_progress()

    def _blocked(self, i: int) -> str | None:
        """The first dependency of action ``i`` that did not succeed, if any."""
        for dep in self._actions[i].depends_on:
            done = self._outcomes[self._graph.index[dep]]
            if done is None or done.status is not OutcomeStatus.SUCCEEDED:
                return dep
        return None

    def _enqueue(self, i: int) -> None:
        self._in_hand += 1
        self._queues[self._actions[i].backend].put_nowait(i)

    def _check_progress(self) -> None:
        """All done, or nothing left in hand while actions wait: a dependency cycle (a planner bug)."""
        if self._unfinished == 0:
            self._all_finished.set()
        elif self._in_hand == 0:
            self._halt(ValueError(f"{self._unfinished} actions wait on each other (a dependency cycle)"))

    def _halt(self, exc: BaseException) -> None:
        if self._fatal is None:
            self._fatal = exc
        self._all_finished.set()

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
        """``action`` with every value an earlier action produced filled in; the action itself when it
        takes none (most do): a copy per action was ~475 B of each outcome kept until the run ends."""
        if not any(_takes_produced(v) for v in action.params.values()):
            return action

        def value(v: Any) -> Any:
            if isinstance(v, Produced):
                earlier = self._outcomes[self._graph.index[v.action_id]]
                if earlier is None:
                    raise KeyError(f"{v.action_id} has not finished")
                return earlier.produced[v.field]
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


def _takes_produced(value: Any) -> bool:
    """A parameter that is, or lists, a value an earlier action produces."""
    return isinstance(value, Produced) or (isinstance(value, list) and any(_takes_produced(v) for v in value))
