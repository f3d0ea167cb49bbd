"""One reconcile pass: load -> validate -> connect -> observe -> plan -> (apply -> record -> read the fates
of SMS sent by earlier passes).

The CLI and the daemon both call ``run_pass``; it never raises for expected failures: bad input,
unresolvable secrets, unreadable backends and failed actions all come back inside ``PassResult``.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import subprocess
from collections.abc import Awaitable, Callable, Mapping, Sequence
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
from reconciler.engine.sms import refresh_deliveries, stop_and_release
from reconciler.engine.sms_dispatch import SmsDispatcher
from reconciler.engine.sms_outlook import sms_outlooks
from reconciler.load import load_desired_state
from reconciler.model import DesiredState, ResourceKey
from reconciler.observed import ObservedState
from reconciler.planner import Plan, PlanInput, PlanOptions, plan
from reconciler.planner.plan import SmsOutlook
from reconciler.planner.target import only_targets, resolve, unknown_targets
from reconciler.planner.serialize import action_json
from reconciler.secrets import Redactor
from reconciler.engine.store_access import open_writer, reading, request_bound
from reconciler.errors import StateStoreError
from reconciler.state.database import this_host
from reconciler.state.history import DEFAULT_RETENTION_DAYS
from reconciler.state.lease import LeaseLostError, read_holder
from reconciler.state.ledger import ReadOnlyLedger, SendLedger
from reconciler.state.store import Store, StoreView, open_store


@dataclass(frozen=True)
class PassRequest:
    paths: Sequence[Path]
    root: Path | None = None
    state_url: str | None = None  # None: no store at all
    options: PlanOptions = PlanOptions()
    dry_run: bool = True
    saved_actions: Sequence[Mapping[str, Any]] | None = None  # --plan FILE: apply exactly these
    command: str = "reconcile apply"  # what the history calls whoever applied
    revision: str | None = None  # the git revision applied (None: asked of git in the repository)
    history_days: float = DEFAULT_RETENTION_DAYS
    targets: tuple[ResourceKey, ...] = ()  # --target: only these resources and what they depend on


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
    lease_lost: str = ""  # why the writer stopped: another writer took the store over

    @property
    def ok(self) -> bool:
        if has_errors(self.diagnostics) or self.stale or self.plan is None:
            return False
        if self.plan.has_errors or self.plan.unreadable:
            return False
        return self.report is None or self.report.ok


def open_store_for(request: PassRequest, base_dir: Path, desired: DesiredState | None = None) -> Store | None:
    """The store, or None: a dry run never creates a store that does not exist yet; an apply holds the
    writer lease (refused at once when another writer has it: the CLI and the daemon open the store
    themselves, with ``--lock-timeout``, and pass it in)."""
    if request.state_url is None:
        return None
    if request.dry_run:
        return open_store(request.state_url, base_dir=base_dir, writer=False)
    return open_writer(request.state_url, base_dir=base_dir, command="reconcile apply",
                       bound=request_bound(desired))


PlanFilter = Callable[[Plan], Plan]
#: builds the ``send-sms`` performer of one pass (the daemon's background sends); the default sends in the pass
SendPerformers = Callable[[DesiredState, Store, ConnectContext], Callable[[Any], Awaitable[Mapping[str, Any]]]]


async def run_pass(request: PassRequest, *, now: datetime, environ: Mapping[str, str], redactor: Redactor,
                   base_dir: Path = Path("."), progress: ProgressSink | None = None,
                   store: Store | None = None) -> PassResult:
    """Load the declared state, then reconcile it (see ``reconcile_desired``)."""
    loaded = load_desired_state(list(request.paths), root=request.root)
    if loaded.desired is None:
        return PassResult(diagnostics=tuple(loaded.diagnostics), files=tuple(loaded.files))
    return await reconcile_desired(loaded.desired, request, now=now, environ=environ, redactor=redactor,
                                   base_dir=base_dir, progress=progress, diagnostics=tuple(loaded.diagnostics),
                                   files=tuple(loaded.files), store=store)


async def reconcile_desired(desired: DesiredState, request: PassRequest, *, now: datetime,
                            environ: Mapping[str, str], redactor: Redactor, base_dir: Path = Path("."),
                            progress: ProgressSink | None = None, diagnostics: tuple[Diagnostic, ...] = (),
                            files: tuple[str, ...] = (), hold: PlanFilter | None = None,
                            on_request: RequestObserver | None = None, store: Store | None = None,
                            send_performers: SendPerformers | None = None) -> PassResult:
    """Observe, plan and (unless a dry run) apply an already loaded desired state. ``hold`` may take
    actions out of the plan before it is applied (the daemon's backoff and stalled resources). ``store``:
    the caller's open store (its writer lease held for an apply); without it the store named by the
    request is opened (and closed) here.

    What became of SMS handed to a backend by earlier passes is asked afterwards (``refresh_deliveries``):
    those fates only move ledger counts on, nothing in a plan depends on them, and for a large campaign
    they are hundreds of requests, which must not delay carrying an edit to the backends. (What this
    pass sent is not asked about: it is still queued.) The counts a plan shows are therefore those of
    the ledger when the pass began.

    A writer that loses its lease mid-pass stops: the result carries one error, nothing more is sent."""
    owned = store is None
    try:
        if owned:
            store = open_store_for(request, base_dir, desired)
    except StateStoreError as exc:
        return PassResult(diagnostics=diagnostics + (Diagnostic(redactor.scrub(str(exc))),), desired=desired,
                          files=files)
    lease = store.lease if store is not None else None
    ctx = ConnectContext(root=Path(desired.root), environ=environ, redactor=redactor, on_request=on_request,
                         before_write=lease.ensure_time if lease is not None else None)
    conns = connect(desired, ctx, with_writers=not request.dry_run)
    if conns.diagnostics:
        await _close({}, conns, store if owned else None)
        return PassResult(diagnostics=diagnostics + tuple(conns.diagnostics), desired=desired,
                          files=files)
    senders: dict[str, SmsSender] = {}
    pass_ = _Pass(desired, request, conns, store, senders, ctx, now, redactor, progress, hold, send_performers)
    try:
        ledger = store.ledger if store is not None else None
        sent_before = ledger.last_seq() if ledger is not None else 0
        result = await pass_.plan_and_apply(diagnostics, files)
        if ledger is not None and not request.dry_run:
            queryable = _sender_cache(desired, ctx, senders, queryable_only=True)
            problem = await _read_fates(desired, ledger, queryable, redactor, up_to=sent_before)
            if problem and result.plan is not None:
                result = replace(result, plan=replace(result.plan, notes=result.plan.notes + (problem,)))
        return result
    except LeaseLostError as exc:
        return PassResult(diagnostics=diagnostics + (Diagnostic(str(exc)),), desired=desired, files=files,
                          lease_lost=str(exc))
    finally:
        await _close(senders, conns, store if owned else None)


@dataclass
class _Pass:
    """What one pass works with, between connecting and closing."""

    desired: DesiredState
    request: PassRequest
    conns: Connections
    store: Store | None
    senders: dict[str, SmsSender]
    ctx: ConnectContext
    now: datetime
    redactor: Redactor
    progress: ProgressSink | None
    hold: PlanFilter | None
    send_performers: SendPerformers | None = None

    async def plan_and_apply(self, diagnostics: tuple[Diagnostic, ...], files: tuple[str, ...]) -> PassResult:
        desired, request, store = self.desired, self.request, self.store
        with reading(store):
            view = store.state.view() if store is not None else StoreView(available=False)
            observed = await observe_all(self.conns.readers, desired, redactor=self.redactor)
            outlooks = sms_outlooks(desired, store.ledger if store is not None else None,
                                    established=store_established(store),
                                    cannot_ask={n for n, t in self.conns.traits.items() if not t.sms_queryable})
        options = request.options if not request.dry_run else replace(request.options, reapply_unknown=False)
        decided = plan(PlanInput(desired, observed, self.conns.traits, view, self.now, options, outlooks))
        if self.hold is not None:
            decided = self.hold(decided)
        if request.targets:
            unknown = unknown_targets(request.targets, desired, decided)
            decided = only_targets(decided, resolve(request.targets, desired))
            if unknown:
                decided = replace(decided, diagnostics=decided.diagnostics + tuple(Diagnostic(u) for u in unknown))
        base = PassResult(diagnostics, desired, observed, decided, files=files, sms=outlooks)
        if request.dry_run or decided.has_errors:
            return base
        if request.saved_actions is not None:
            stale = compare_saved(request.saved_actions, decided)
            if stale:
                return replace(base, stale=stale)
        if self.progress is not None:
            self.progress.planned(len(decided.actions), sum(int(a.params.get("to_send", 0))
                                                            for a in decided.actions if a.verb is Verb.SEND_SMS))
        executor = Executor(writers=self.conns.writers, store=store.state if store is not None else None,
                            redactor=self.redactor, progress=self.progress,
                            performers=self._performers(decided))
        report = await executor.run(decided)
        if store is not None and report.outcomes:
            record_history(store, request, desired, report)
        return replace(base, report=report)

    async def _stop_task(self, action: Any) -> Mapping[str, Any]:
        """Stop a queued gateway task and release the rows the stop abandoned (they never left)."""
        sender = _sender_cache(self.desired, self.ctx, self.senders)(action.backend)
        assert sender is not None and self.store is not None
        campaign = action.key.name
        released = await stop_and_release(self.store.ledger, sender, action.backend, campaign,
                                          [str(action.params["task_id"])])
        return {"released": released}

    def _performers(self, decided: Plan) -> dict[Verb, Any]:
        verbs = {a.verb for a in decided.actions}
        store = self.store
        if store is None:
            return {Verb.SEND_SMS: _no_ledger}
        performers: dict[Verb, Any] = {}
        if Verb.STOP_SMS_TASK in verbs:
            performers[Verb.STOP_SMS_TASK] = self._stop_task
        if self.send_performers is not None:
            performers[Verb.SEND_SMS] = self.send_performers(self.desired, store, self.ctx)
        elif Verb.SEND_SMS in verbs:
            make = _sender_cache(self.desired, self.ctx, self.senders)
            for backend in {a.backend for a in decided.actions if a.verb is Verb.SEND_SMS}:
                make(backend)
            tz = self.now.tzinfo
            performers[Verb.SEND_SMS] = SmsDispatcher(
                desired=self.desired, senders=self.senders, ledger=store.ledger, lease=store.lease,
                now=lambda: datetime.now(tz), risk_duplicates=self.request.options.risk_duplicate_sms,
                on_sent=self.progress.sent if self.progress is not None else None)
        return performers


def record_history(store: Store, request: PassRequest, desired: DesiredState, report: ExecutionReport) -> None:
    """Who did what, when, from which revision (``reconcile history``)."""
    actions = [{"verb": o.action.verb.value, "resource": str(o.key), "outcome": o.status.value,
                "message": o.message[:500]} for o in report.outcomes]
    revision = request.revision if request.revision is not None else git_revision(Path(desired.root))
    store.history.record(revision=revision, who=f"{getpass.getuser()}@{this_host()}", command=request.command,
                         seconds=report.seconds, ok=report.ok, actions=actions, retention_days=request.history_days)


def git_revision(root: Path) -> str:
    """The commit checked out in the repository ('' outside git): what the history says was applied."""
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def store_established(store: Store | None) -> bool:
    """Whether the store had a writer before the current one (for a reader: before the next one, whose
    token will follow the stored one), so a campaign with no record in it is new, not lost."""
    if store is None:
        return False
    if store.lease is not None:
        return (store.lease.token or 0) > 1
    return read_holder(store.db) is not None


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
    try:
        store = open_store(state_url, writer=False) if state_url else None
    except StateStoreError as exc:
        await conns.aclose()
        return PassResult(tuple(loaded.diagnostics) + (Diagnostic(redactor.scrub(str(exc))),), desired), {}
    ledger = ReadOnlyLedger(store.ledger) if store is not None else None
    senders: dict[str, SmsSender] = {}
    try:
        if conns.diagnostics:
            return PassResult(tuple(loaded.diagnostics) + tuple(conns.diagnostics), desired), {}
        fates = (_read_fates(desired, ledger, _sender_cache(desired, ctx, senders, queryable_only=True),  # type: ignore[arg-type]
                             redactor)
                 if ledger is not None else _none())
        observed, problem = await asyncio.gather(observe_all(conns.readers, desired, redactor=redactor), fates)
        warnings = (Diagnostic(problem, severity=Severity.WARNING),) if problem else ()
        result = PassResult(tuple(loaded.diagnostics) + warnings, desired, observed, files=tuple(loaded.files))
        return result, sms_outlooks(desired, ledger)  # type: ignore[arg-type]
    finally:
        await _close(senders, conns, store)


async def _close(senders: Mapping[str, SmsSender], conns: Connections, store: Store | None) -> None:
    """Close what a pass opened: its SMS senders' and backends' connections, then its store."""
    for sender in senders.values():
        await sender.aclose()
    await conns.aclose()
    if store is not None:
        store.close()
