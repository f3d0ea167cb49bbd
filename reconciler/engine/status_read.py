"""The read path of ``reconcile status``: load, observe, and read the store, without a lease and without
writing anything. One store handle serves it all: the send ledger (whose counts move on in memory with
what the backends say became of sent messages) and the store's view, from which a plan that is never
applied finds the gateways stranded by an ended schedule window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from reconciler.backends.protocol import ConnectContext
from reconciler.backends.sessions import BackendSessions
from reconciler.diagnostics import Diagnostic, Severity
from reconciler.engine.connect import OpenPass, SmsSenders, connect
from reconciler.engine.observe import observe_all
from reconciler.engine.sms_fates import read_fates
from reconciler.engine.sms_outlook import sms_outlooks
from reconciler.errors import StateStoreError
from reconciler.load import load_desired_state
from reconciler.model import DesiredState
from reconciler.observed import ObservedState
from reconciler.planner import PlanInput, PlanOptions, StrandedGateways, plan
from reconciler.planner.plan import SmsOutlook
from reconciler.secrets import Redactor
from reconciler.state.ledger import ReadOnlyLedger
from reconciler.state.store import Store, StoreView, open_store


@dataclass(frozen=True)
class StatusReading:
    """What ``reconcile status`` shows: ``desired`` and ``observed`` are None when the declarations or a
    backend's connection could not be made (``diagnostics`` say why)."""

    diagnostics: tuple[Diagnostic, ...] = ()
    desired: DesiredState | None = None
    observed: ObservedState | None = None
    sms: Mapping[str, SmsOutlook] = field(default_factory=dict)
    stranded: Mapping[str, StrandedGateways] = field(default_factory=dict)
    files: tuple[str, ...] = ()


async def read_status(paths: Sequence[Path], *, root: Path | None, environ: Mapping[str, str],
                      redactor: Redactor, state_url: str | None, now: datetime) -> StatusReading:
    """Load and observe without applying, refresh SMS delivery states and find stranded gateways. A missing
    store is not created; without one, SMS counts are unknown and only fixed windows strand a gateway."""
    loaded = load_desired_state(list(paths), root=root)
    diagnostics, files = tuple(loaded.diagnostics), tuple(loaded.files)
    if loaded.desired is None:
        return StatusReading(diagnostics, files=files)
    desired = loaded.desired
    ctx = ConnectContext(root=Path(desired.root), environ=environ, redactor=redactor, sessions=BackendSessions())
    opened = OpenPass(connect(desired, ctx, with_writers=False), SmsSenders(desired, ctx), owns_store=True,
                      sessions=ctx.sessions)
    try:
        try:
            opened.store = open_store(state_url, writer=False) if state_url else None
        except StateStoreError as exc:
            return StatusReading(diagnostics + (Diagnostic(redactor.scrub(str(exc))),), desired, files=files)
        if opened.conns.diagnostics:
            return StatusReading(diagnostics + tuple(opened.conns.diagnostics), desired, files=files)
        return await _read(desired, opened, redactor, diagnostics, files, now)
    finally:
        await opened.aclose()


async def _read(desired: DesiredState, opened: OpenPass, redactor: Redactor, diagnostics: tuple[Diagnostic, ...],
                files: tuple[str, ...], now: datetime) -> StatusReading:
    """Observe the backends while asking them about sent messages, then plan (never applied) for strandings."""
    store = opened.store
    ledger = ReadOnlyLedger(store.ledger) if store is not None else None
    observing = observe_all(opened.conns.readers, desired, redactor=redactor)
    if ledger is not None:
        observed, problem = await asyncio.gather(
            observing, read_fates(desired, ledger, opened.senders.queryable, redactor))
    else:
        observed, problem = await observing, ""
    warnings = (Diagnostic(problem, severity=Severity.WARNING),) if problem else ()
    sms = sms_outlooks(desired, ledger)
    decided = plan(PlanInput(desired, observed, opened.conns.traits, _view(store), now,
                             PlanOptions(reapply_unknown=False), sms))
    return StatusReading(diagnostics + warnings, desired, observed, sms, {s.campaign: s for s in decided.stranded},
                         files)


def _view(store: Store | None) -> StoreView:
    """The store's view; unavailable without a store or when it cannot be read (status still shows the
    rest)."""
    if store is None:
        return StoreView(available=False)
    try:
        return store.view()
    except StateStoreError:
        return StoreView(available=False)
