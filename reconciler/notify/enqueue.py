"""The pass's side of notifications: derive its events, route them to the Notifications that want them and
add them to the outbox, in one fenced transaction, before the pass ends (``queue_notifications``).

Only a writer queues (a dry run tells nobody), and only when some Notification is declared. A store
error propagates like any failed record of the pass (a lost lease stops the writer).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from reconciler.backends.registry import adapter_for
from reconciler.model import DesiredState, NotificationSpec
from reconciler.notify.event import PassEvents
from reconciler.notify.events import derive_events
from reconciler.notify.facts import DriftBaseline, PassFacts
from reconciler.secrets import Redactor
from reconciler.state.outbox import NewDelivery, Outbox
from reconciler.traits import BackendTraits

if TYPE_CHECKING:  # the engine calls this module
    from reconciler.engine.reconcile import PassRequest, PassResult
    from reconciler.state.store import Store

log = structlog.get_logger("reconciler.notify")


def queue_notifications(store: Store | None, request: PassRequest, result: PassResult, *, now: datetime,
                        redactor: Redactor) -> None:
    """Queue the events of the pass that produced ``result`` (nothing for a dry run or a reader). Every
    payload is scrubbed by the run's ``redactor`` before it is stored: the messages it quotes were scrubbed
    where they arose, and this makes sure."""
    desired = result.desired
    if store is None or store.lease is None or request.dry_run or desired is None or not desired.notifications:
        return
    derived = derive_events(facts_of(result, now=now, drift=request.drift))
    revision = _revision(request, desired) if derived.events else ""
    deliveries = [replace(d, payload=redactor.scrub(d.payload))
                  for d in route(derived, desired.notifications, occurred_at=now, revision=revision)]
    queued = Outbox(store.db).enqueue(deliveries, cleared=derived.cleared, now=time.time())
    if queued.added:
        log.info("notifications.queued", deliveries=queued.added,
                 events=sorted({e.kind.value for e in derived.events}))
    if queued.dropped:
        log.warning("notifications.dropped", deliveries=queued.dropped,
                    reason="the outbox is full: the receivers have not accepted events for a long time")


def _revision(request: PassRequest, desired: DesiredState) -> str:
    """The git revision applied, as the history records it (asked of git only when nobody said)."""
    if request.revision is not None:
        return request.revision
    from reconciler.engine.reconcile import git_revision  # noqa: PLC0415 - the engine imports this module

    return git_revision(Path(desired.root))


def facts_of(result: PassResult, *, now: datetime, drift: DriftBaseline | None = None) -> PassFacts:
    """What the event rules read from a pass's result."""
    desired = result.desired
    assert desired is not None
    return PassFacts(desired=desired, now=now, plan=result.plan, report=result.report, observed=result.observed,
                     sms=result.sms, diagnostics=result.diagnostics, drift=drift, traits=_traits(desired))


def _traits(desired: DesiredState) -> dict[str, BackendTraits]:
    return {name: adapter_for(spec.type).traits for name, spec in desired.backends.items()}


def route(derived: PassEvents, notifications: Mapping[str, NotificationSpec], *, occurred_at: datetime,
          revision: str = "") -> list[NewDelivery]:
    """One delivery per event and Notification that wants it (by event and campaign)."""
    stamp = occurred_at.isoformat(timespec="seconds")
    deliveries = []
    for event in derived.events:
        payload = json.dumps(event.as_json(occurred_at=stamp, revision=revision), sort_keys=True)
        for name in sorted(notifications):
            if notifications[name].wants(event.kind, event.campaign):
                deliveries.append(NewDelivery(name, event.id, event.kind.value, payload, event.subject))
    return deliveries
