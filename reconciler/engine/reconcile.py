"""One reconcile pass, one walk down the layers: load -> open (store, backends: ``connect``) -> observe ->
plan -> (apply -> record -> read the fates of SMS sent by earlier passes) -> close.

The CLI and the daemon both call ``run_pass`` (or ``reconcile_desired``); it never raises for expected
failures: bad input, unresolvable secrets, unreadable backends and failed actions all come back inside
``PassResult``. Each step has its own home: opening in ``connect``, saved-plan comparison in
``planner.saved``, delivery fates in ``sms_fates``; ``reconcile status`` reads through ``status_read``.
"""

from __future__ import annotations

import getpass
import subprocess
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.actions import Action, Verb
from reconciler.backends.protocol import ConnectContext, RequestObserver
from reconciler.backends.sessions import BackendSessions
from reconciler.diagnostics import Diagnostic, has_errors
from reconciler.engine.connect import OpenPass, SmsSenders, connect, open_pass_store
from reconciler.engine.execute import ExecutionReport, Executor, ProgressSink
from reconciler.engine.observe import observe_all
from reconciler.engine.sms import stop_and_release
from reconciler.engine.sms_dispatch import SmsDispatcher
from reconciler.engine.sms_fates import read_fates
from reconciler.engine.sms_outlook import OutlookMemo, sms_outlooks
from reconciler.errors import PermanentBackendError, StateStoreError
from reconciler.load import load_desired_state
from reconciler.load.recipients import ScanMemo
from reconciler.model import DesiredState, ResourceKey
from reconciler.notify.enqueue import queue_notifications
from reconciler.notify.facts import DriftBaseline
from reconciler.observed import ObservedState
from reconciler.planner import Plan, PlanInput, PlanOptions, plan
from reconciler.planner.plan import SmsOutlook
from reconciler.planner.saved import compare_saved
from reconciler.planner.target import only_targets, resolve, unknown_targets
from reconciler.secrets import Redactor
from reconciler.state.database import this_host
from reconciler.state.history import DEFAULT_RETENTION_DAYS
from reconciler.state.lease import LeaseLostError
from reconciler.state.store import Store, StoreView

__all__ = ["PassRequest", "PassResult", "PlanFilter", "SendPerformers", "compare_saved", "git_revision",
           "reconcile_desired", "record_history", "run_pass"]


@dataclass(frozen=True)
class PassRequest:
    """What one pass is asked to do: which declarations, which store, plan only or apply."""

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
    drift: DriftBaseline | None = None  # the daemon's: what it changes on these resources corrects drift
    read_fates: bool = True  # after applying, ask the backends about queued messages (the daemon's --fates-every)


@dataclass(frozen=True)
class PassResult:
    """Everything a pass found and did; expected failures are in it, never raised (``ok`` sums it up)."""

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


PlanFilter = Callable[[Plan], Plan]
#: performs one action of a verb the writers do not (sends, task stops): ``Executor``'s performers
Performer = Callable[[Action], Awaitable[Mapping[str, Any]]]
#: builds the ``send-sms`` performer of one pass (the daemon's background sends); the default sends in the pass
SendPerformers = Callable[[DesiredState, Store, ConnectContext], Performer]


async def run_pass(request: PassRequest, *, now: datetime, environ: Mapping[str, str], redactor: Redactor,
                   base_dir: Path = Path("."), progress: ProgressSink | None = None,
                   store: Store | None = None, outlook_memo: OutlookMemo | None = None,
                   scans: ScanMemo | None = None) -> PassResult:
    """Load the declared state, then reconcile it (see ``reconcile_desired``); ``outlook_memo`` and
    ``scans`` are what a long-running caller keeps between passes (the daemon's)."""
    loaded = load_desired_state(list(request.paths), root=request.root, scans=scans)
    if loaded.desired is None:
        return PassResult(diagnostics=tuple(loaded.diagnostics), files=tuple(loaded.files))
    return await reconcile_desired(loaded.desired, request, now=now, environ=environ, redactor=redactor,
                                   base_dir=base_dir, progress=progress, diagnostics=tuple(loaded.diagnostics),
                                   files=tuple(loaded.files), store=store, outlook_memo=outlook_memo)


async def reconcile_desired(desired: DesiredState, request: PassRequest, *, now: datetime,
                            environ: Mapping[str, str], redactor: Redactor, base_dir: Path = Path("."),
                            progress: ProgressSink | None = None, diagnostics: tuple[Diagnostic, ...] = (),
                            files: tuple[str, ...] = (), hold: PlanFilter | None = None,
                            on_request: RequestObserver | None = None, store: Store | None = None,
                            send_performers: SendPerformers | None = None,
                            outlook_memo: OutlookMemo | None = None) -> PassResult:
    """Observe, plan and (unless a dry run) apply an already loaded desired state. ``hold`` may take
    actions out of the plan before it is applied (the daemon's backoff and stalled resources). ``store``:
    the caller's open store (its writer lease held for an apply); without it the store named by the
    request is opened (and closed) here. Either way the pass reads and records through that one handle.

    What became of SMS handed to a backend by earlier passes is asked afterwards (``read_fates``):
    those fates only move ledger counts on, nothing in a plan depends on them, and for a large campaign
    they are hundreds of requests, which must not delay carrying an edit to the backends. (What this
    pass sent is not asked about: it is still queued.) The counts a plan shows are therefore those of
    the ledger when the pass began.

    A writer that loses its lease mid-pass stops: the result carries one error, nothing more is sent."""
    owned = store is None
    try:
        if owned:
            store = open_pass_store(request.state_url, dry_run=request.dry_run, base_dir=base_dir, desired=desired)
    except StateStoreError as exc:
        return PassResult(diagnostics=diagnostics + (Diagnostic(redactor.scrub(str(exc))),), desired=desired,
                          files=files)
    lease = store.lease if store is not None else None
    ctx = ConnectContext(root=Path(desired.root), environ=environ, redactor=redactor, on_request=on_request,
                         before_write=lease.ensure_time if lease is not None else None, sessions=BackendSessions())
    opened = OpenPass(connect(desired, ctx, with_writers=not request.dry_run), SmsSenders(desired, ctx),
                      store, owns_store=owned, sessions=ctx.sessions)
    try:
        if opened.conns.diagnostics:
            failed = PassResult(diagnostics=diagnostics + tuple(opened.conns.diagnostics), desired=desired,
                                files=files)
            queue_notifications(store, request, failed, now=now, redactor=redactor)  # the events of this pass, in the outbox
            return failed
        pass_ = _Pass(desired, request, opened, ctx, now, redactor, progress, hold, send_performers, outlook_memo)
        sent_before = store.ledger.last_seq() if store is not None else 0
        result = await pass_.plan_and_apply(diagnostics, files)
        if store is not None and not request.dry_run and request.read_fates:
            problem = await read_fates(desired, store.ledger, opened.senders.queryable, redactor, up_to=sent_before)
            if problem and result.plan is not None:
                result = replace(result, plan=replace(result.plan, notes=result.plan.notes + (problem,)))
        queue_notifications(store, request, result, now=now, redactor=redactor)  # the events of this pass, in the outbox
        return result
    except LeaseLostError as exc:
        return PassResult(diagnostics=diagnostics + (Diagnostic(str(exc)),), desired=desired, files=files,
                          lease_lost=str(exc))
    finally:
        await opened.aclose()


@dataclass
class _Pass:
    """What one pass works with, between opening and closing."""

    desired: DesiredState
    request: PassRequest
    opened: OpenPass
    ctx: ConnectContext
    now: datetime
    redactor: Redactor
    progress: ProgressSink | None
    hold: PlanFilter | None
    send_performers: SendPerformers | None = None
    outlook_memo: OutlookMemo | None = None  # a daemon's: who is left to send, kept between its passes

    @property
    def store(self) -> Store | None:
        return self.opened.store

    async def plan_and_apply(self, diagnostics: tuple[Diagnostic, ...], files: tuple[str, ...]) -> PassResult:
        desired, request = self.desired, self.request
        observed, outlooks, decided = await self._observe_and_plan()
        base = PassResult(diagnostics, desired, observed, decided, files=files, sms=outlooks)
        if request.dry_run or decided.has_errors:
            return base
        if request.saved_actions is not None:
            stale = compare_saved(request.saved_actions, decided)
            if stale:
                return replace(base, stale=stale)
        return replace(base, report=await self._apply(decided))

    async def _observe_and_plan(self) -> tuple[ObservedState, dict[str, SmsOutlook], Plan]:
        """Read the store and the backends (one snapshot for a reader), then plan; held and targeted."""
        desired, request, store, conns = self.desired, self.request, self.store, self.opened.conns
        cannot_ask = {n for n, t in conns.traits.items() if not t.sms_queryable}
        if store is None:
            view = StoreView(available=False)
            observed = await observe_all(conns.readers, desired, redactor=self.redactor)
            outlooks = sms_outlooks(desired, None, cannot_ask=cannot_ask)
        else:
            with store.reading():
                view = store.view()
                observed = await observe_all(conns.readers, desired, redactor=self.redactor)
                outlooks = sms_outlooks(desired, store.ledger, established=store.established(),
                                        cannot_ask=cannot_ask, memo=self.outlook_memo)
        options = request.options if not request.dry_run else replace(request.options, reapply_unknown=False)
        decided = plan(PlanInput(desired, observed, conns.traits, view, self.now, options, outlooks))
        if self.hold is not None:
            decided = self.hold(decided)
        if request.targets:
            unknown = unknown_targets(request.targets, desired, decided)
            decided = only_targets(decided, resolve(request.targets, desired))
            if unknown:
                decided = replace(decided, diagnostics=decided.diagnostics + tuple(Diagnostic(u) for u in unknown))
        return observed, outlooks, decided

    async def _apply(self, decided: Plan) -> ExecutionReport:
        """Execute the plan and record who did what (the history)."""
        store = self.store
        if self.progress is not None:
            self.progress.planned(len(decided.actions), sum(int(a.params.get("to_send", 0))
                                                            for a in decided.actions if a.verb is Verb.SEND_SMS))
        executor = Executor(writers=self.opened.conns.writers, store=store.state if store is not None else None,
                            redactor=self.redactor, progress=self.progress,
                            performers=self._performers(decided))
        report = await executor.run(decided)
        if store is not None and report.outcomes:
            record_history(store, self.request, self.desired, report)
        return report

    async def _stop_task(self, action: Action) -> Mapping[str, Any]:
        """Stop a queued gateway task and release the rows the stop abandoned (they never left)."""
        sender = self.opened.senders.get(action.backend)
        assert sender is not None and self.store is not None
        released = await stop_and_release(self.store.ledger, sender, action.backend, action.key.name,
                                          [str(action.params["task_id"])])
        return {"released": released}

    def _performers(self, decided: Plan) -> dict[Verb, Performer]:
        verbs = {a.verb for a in decided.actions}
        store = self.store
        if store is None:
            return {Verb.SEND_SMS: _no_ledger}
        performers: dict[Verb, Performer] = {}
        if Verb.STOP_SMS_TASK in verbs:
            performers[Verb.STOP_SMS_TASK] = self._stop_task
        if self.send_performers is not None:
            performers[Verb.SEND_SMS] = self.send_performers(self.desired, store, self.ctx)
        elif Verb.SEND_SMS in verbs:
            senders = self.opened.senders
            for backend in {a.backend for a in decided.actions if a.verb is Verb.SEND_SMS}:
                senders.get(backend)
            tz = self.now.tzinfo
            performers[Verb.SEND_SMS] = SmsDispatcher(
                desired=self.desired, senders=senders.built, ledger=store.ledger, lease=store.lease,
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


async def _no_ledger(action: Action) -> Mapping[str, Any]:
    raise PermanentBackendError("SMS are only sent through the send ledger: run with a state store (--state URL)",
                                backend=action.backend, operation="send-sms")
