"""One reconcile pass: load -> validate -> connect -> observe -> plan -> (apply -> record -> read the fates
of SMS sent by earlier passes).

The CLI and the daemon both call ``run_pass``; it never raises for expected failures: bad input,
unresolvable secrets, unreadable backends and failed actions all come back inside ``PassResult``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.actions import Verb
from reconciler.backends.protocol import ConnectContext, RequestObserver, SmsSender
from reconciler.backends.registry import adapter_for
from reconciler.diagnostics import Diagnostic, Severity, has_errors
from reconciler.engine.connect import Connections, connect
from reconciler.engine.execute import ExecutionReport, Executor, ProgressSink
from reconciler.engine.observe import observe_all
from reconciler.errors import BackendError, PermanentBackendError
from reconciler.engine.sms import refresh_deliveries
from reconciler.engine.sms_dispatch import SmsDispatcher
from reconciler.engine.sms_outlook import sms_outlooks
from reconciler.load import load_desired_state
from reconciler.model import DesiredState
from reconciler.observed import ObservedState
from reconciler.planner import Plan, PlanInput, PlanOptions, plan
from reconciler.planner.plan import SmsOutlook
from reconciler.planner.serialize import action_json
from reconciler.secrets import Redactor
from reconciler.state.ledger import SendLedger
from reconciler.state.store import SqliteStateStore, StateStore, StoreView, open_state_store, state_file_path


@dataclass(frozen=True)
class PassRequest:
    paths: Sequence[Path]
    root: Path | None = None
    state_url: str | None = None  # None: no store at all
    options: PlanOptions = PlanOptions()
    dry_run: bool = True
    saved_actions: Sequence[Mapping[str, Any]] | None = None  # --plan FILE: apply exactly these


@dataclass(frozen=True)
class PassResult:
    diagnostics: tuple[Diagnostic, ...] = ()
    desired: DesiredState | None = None
    observed: ObservedState | None = None
    plan: Plan | None = None
    report: ExecutionReport | None = None
    stale: str = ""  # why a saved plan was refused
    files: tuple[str, ...] = field(default_factory=tuple)
    sms: Mapping[str, SmsOutlook] = field(default_factory=dict)  # SMS campaigns as they stood before applying

    @property
    def ok(self) -> bool:
        if has_errors(self.diagnostics) or self.stale or self.plan is None:
            return False
        if self.plan.has_errors or self.plan.unreadable:
            return False
        return self.report is None or self.report.ok


def open_store_for(request: PassRequest, base_dir: Path) -> StateStore | None:
    """The store, or None: a dry run never creates a store that does not exist yet."""
    if request.state_url is None:
        return None
    if request.dry_run and not state_file_path(request.state_url, base_dir=base_dir).exists():
        return None
    return open_state_store(request.state_url, base_dir=base_dir)


PlanFilter = Callable[[Plan], Plan]


async def run_pass(request: PassRequest, *, now: datetime, environ: Mapping[str, str], redactor: Redactor,
                   base_dir: Path = Path("."), progress: ProgressSink | None = None) -> PassResult:
    """Load the declared state, then reconcile it (see ``reconcile_desired``)."""
    loaded = load_desired_state(list(request.paths), root=request.root)
    if loaded.desired is None:
        return PassResult(diagnostics=tuple(loaded.diagnostics), files=tuple(loaded.files))
    return await reconcile_desired(loaded.desired, request, now=now, environ=environ, redactor=redactor,
                                   base_dir=base_dir, progress=progress, diagnostics=tuple(loaded.diagnostics),
                                   files=tuple(loaded.files))


async def reconcile_desired(desired: DesiredState, request: PassRequest, *, now: datetime,
                            environ: Mapping[str, str], redactor: Redactor, base_dir: Path = Path("."),
                            progress: ProgressSink | None = None, diagnostics: tuple[Diagnostic, ...] = (),
                            files: tuple[str, ...] = (), hold: PlanFilter | None = None,
                            on_request: RequestObserver | None = None) -> PassResult:
    """Observe, plan and (unless a dry run) apply an already loaded desired state. ``hold`` may take
    actions out of the plan before it is applied (the daemon's backoff and stalled resources).

    What became of SMS handed to a backend by earlier passes is asked afterwards (``refresh_deliveries``):
    those fates only move ledger counts on, nothing in a plan depends on them, and for a large campaign
    they are hundreds of requests, which must not delay carrying an edit to the backends. (What this
    pass sent is not asked about: it is still queued.) The counts a plan shows are therefore those of
    the ledger when the pass began."""
    ctx = ConnectContext(root=Path(desired.root), environ=environ, redactor=redactor, on_request=on_request)
    conns = connect(desired, ctx, with_writers=not request.dry_run)
    if conns.diagnostics:
        await conns.aclose()
        return PassResult(diagnostics=diagnostics + tuple(conns.diagnostics), desired=desired,
                          files=files)
    store = open_store_for(request, base_dir)
    ledger = SendLedger(store.path) if isinstance(store, SqliteStateStore) else None
    senders: dict[str, SmsSender] = {}
    pass_ = _Pass(desired, request, conns, store, ledger, senders, ctx, now, redactor, progress, hold)
    try:
        sent_before = ledger.last_key() if ledger is not None else 0
        result = await pass_.plan_and_apply(diagnostics, files)
        if ledger is not None and not request.dry_run:
            queryable = _sender_cache(desired, ctx, senders, queryable_only=True)
            problem = await _read_fates(desired, ledger, queryable, redactor, up_to=sent_before)
            if problem and result.plan is not None:
                result = replace(result, plan=replace(result.plan, notes=result.plan.notes + (problem,)))
        return result
    finally:
        await _close(senders, conns, ledger, store)


@dataclass
class _Pass:
    """What one pass works with, between connecting and closing."""

    desired: DesiredState
    request: PassRequest
    conns: Connections
    store: StateStore | None
    ledger: SendLedger | None
    senders: dict[str, SmsSender]
    ctx: ConnectContext
    now: datetime
    redactor: Redactor
    progress: ProgressSink | None
    hold: PlanFilter | None

    async def plan_and_apply(self, diagnostics: tuple[Diagnostic, ...], files: tuple[str, ...]) -> PassResult:
        desired, request, store, ledger = self.desired, self.request, self.store, self.ledger
        view = store.view() if store is not None else StoreView(available=False)
        observed = await observe_all(self.conns.readers, desired, redactor=self.redactor)
        outlooks = sms_outlooks(desired, ledger)
        decided = plan(PlanInput(desired, observed, self.conns.traits, view, self.now, request.options, outlooks))
        if self.hold is not None:
            decided = self.hold(decided)
        base = PassResult(diagnostics, desired, observed, decided, files=files, sms=outlooks)
        if request.dry_run or decided.has_errors:
            return base
        if request.saved_actions is not None:
            stale = compare_saved(request.saved_actions, decided)
            if stale:
                return replace(base, stale=stale)
        executor = Executor(writers=self.conns.writers, store=store, redactor=self.redactor, progress=self.progress,
                            performers=self._performers(decided))
        return replace(base, report=await executor.run(decided))

    def _performers(self, decided: Plan) -> dict[Verb, Any]:
        performers: dict[Verb, Any] = {}
        if self.ledger is None:
            performers[Verb.SEND_SMS] = _no_ledger
        elif any(a.verb is Verb.SEND_SMS for a in decided.actions):
            make = _sender_cache(self.desired, self.ctx, self.senders)
            for backend in {a.backend for a in decided.actions if a.verb is Verb.SEND_SMS}:
                make(backend)
            tz = self.now.tzinfo
            performers[Verb.SEND_SMS] = SmsDispatcher(desired=self.desired, senders=self.senders, ledger=self.ledger,
                                                      now=lambda: datetime.now(tz))
        return performers


async def _read_fates(desired: DesiredState, ledger: SendLedger, senders: Callable[[str], SmsSender | None],
                      redactor: Redactor, *, up_to: int | None = None) -> str:
    """Refresh the ledger from what backends say became of sent messages; '' or why that failed. A backend
    failing here must not throw away a pass already applied: its counts just stay as they were."""
    try:
        await refresh_deliveries(desired, ledger, senders, up_to=up_to)
    except BackendError as exc:
        return redactor.scrub(f"delivery results could not be read from backend {exc.backend or '?'} ({exc}); "
                              "the send ledger's counts stay as they were")
    return ""


async def _no_ledger(action: Any) -> Mapping[str, Any]:
    raise PermanentBackendError("SMS are only sent through the send ledger: run with a state store (--state URL)",
                                backend=action.backend, operation="send-sms")


def _sender_cache(desired: DesiredState, ctx: ConnectContext, senders: dict[str, SmsSender], *,
                  queryable_only: bool = False) -> Callable[[str], SmsSender | None]:
    """Senders built on first use and kept in ``senders`` (the caller closes them); with
    ``queryable_only``, none for a backend that cannot be asked about a sent message (its secret is not
    even resolved: a pass reads delivery states every time)."""
    def sender(backend: str) -> SmsSender | None:
        if backend not in senders:
            adapter = adapter_for(desired.backends[backend].type)
            make = getattr(adapter, "sms_sender", None)
            if make is None or (queryable_only and not adapter.traits.sms_queryable):
                return None
            senders[backend] = make(desired.backends[backend], ctx)
        return senders[backend]

    return sender


async def _none() -> str:
    return ""


def compare_saved(saved: Sequence[Mapping[str, Any]], current: Plan) -> str:
    """Why a saved plan no longer fits the world ('' if it still does): a plan is applied exactly or not at all."""
    now = [action_json(a) for a in current.actions]
    if json.dumps(list(saved), sort_keys=True) == json.dumps(now, sort_keys=True):
        return ""
    saved_ids = {a.get("id") for a in saved}
    now_ids = {a["id"] for a in now}
    return (f"the saved plan is stale: {len(saved_ids - now_ids)} of its actions are no longer needed and "
            f"{len(now_ids - saved_ids)} new ones are; run `reconcile --dry-run --out FILE` again")


async def observe_declared(paths: Sequence[Path], *, root: Path | None, environ: Mapping[str, str],
                           redactor: Redactor, state_url: str | None = None
                           ) -> tuple[PassResult, Mapping[str, SmsOutlook]]:
    """Load and observe without planning, and refresh SMS delivery states: what ``reconcile status`` shows."""
    loaded = load_desired_state(list(paths), root=root)
    if loaded.desired is None:
        return PassResult(diagnostics=tuple(loaded.diagnostics), files=tuple(loaded.files)), {}
    desired = loaded.desired
    ctx = ConnectContext(root=Path(desired.root), environ=environ, redactor=redactor)
    conns = connect(desired, ctx, with_writers=False)
    path = state_file_path(state_url) if state_url else None
    ledger = SendLedger(path) if path is not None and path.exists() else None
    senders: dict[str, SmsSender] = {}
    try:
        if conns.diagnostics:
            return PassResult(tuple(loaded.diagnostics) + tuple(conns.diagnostics), desired), {}
        reading = (_read_fates(desired, ledger, _sender_cache(desired, ctx, senders, queryable_only=True),
                               redactor)
                   if ledger is not None else _none())
        observed, problem = await asyncio.gather(observe_all(conns.readers, desired, redactor=redactor), reading)
        warnings = (Diagnostic(problem, severity=Severity.WARNING),) if problem else ()
        result = PassResult(tuple(loaded.diagnostics) + warnings, desired, observed, files=tuple(loaded.files))
        return result, sms_outlooks(desired, ledger)
    finally:
        await _close(senders, conns, ledger)


async def _close(senders: Mapping[str, SmsSender], conns: Connections, *files: SendLedger | StateStore | None) -> None:
    """Close what a pass opened: its SMS senders' and backends' connections, then its ledger and store."""
    for sender in senders.values():
        await sender.aclose()
    await conns.aclose()
    for file in files:
        if file is not None:
            file.close()
