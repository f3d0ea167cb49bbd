"""SMS sends that outlive the pass that started them, steered by every later pass: the brake.

A pass that plans ``send-sms`` hands the campaign to a background task and goes on; it never waits for the
send. Every later pass gives this module the newest declarations (``steer``), and the send reads them
before each batch: a commit of ``paused`` or ``stopped``, a new text or a new rate takes effect for the
recipients not yet handed over, one batch (about a second of messages) at most after the pass that read
the commit, and ``paused``/``stopped`` also stop what the gateway still queues. Everything goes through
the send ledger and the writer lease as in one apply; one task per campaign at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import structlog

from reconciler.actions import Action
from reconciler.backends.protocol import ConnectContext, SmsSender
from reconciler.engine.connect import sms_sender_for
from reconciler.engine.sms import SmsCampaignRun
from reconciler.engine.sms_dispatch import raise_if_refused
from reconciler.errors import BackendError, PermanentBackendError, ReconcilerError
from reconciler.model import DesiredState, SmsCampaignSpec, SmsRunState
from reconciler.state.lease import LeaseLostError
from reconciler.state.store import Store

log = structlog.get_logger("reconciler.daemon.sends")
Performer = Callable[[Action], Awaitable[Mapping[str, Any]]]


class BackgroundSends:
    """The daemon's running sends, by campaign."""

    def __init__(self, *, on_lease_lost: Callable[[str], None], on_done: Callable[[str], None],
                 now: Callable[[], datetime]) -> None:
        self._on_lease_lost = on_lease_lost
        self._on_done = on_done
        self._now = now
        self._latest: DesiredState | None = None
        self._last_spec: dict[str, SmsCampaignSpec] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        #: a send that failed, by campaign, with the declaration it failed under: the next pass reports it as
        #: that action's failure (so the daemon backs off, or stalls until the declaration changes) instead
        #: of starting the same send again at once
        self.failed: dict[str, tuple[SmsCampaignSpec, BackendError]] = {}

    # --- steering -------------------------------------------------------------------------------------

    def steer(self, desired: DesiredState) -> None:
        """The newest valid declarations (the whole of them, whatever a pass visits)."""
        self._latest = desired

    def current(self, campaign: str) -> tuple[SmsCampaignSpec, DesiredState]:
        """What a running send is to do now; a campaign removed from git is stopped."""
        assert self._latest is not None
        spec = self._latest.campaigns.get(campaign)
        if isinstance(spec, SmsCampaignSpec):
            self._last_spec[campaign] = spec
            return spec, self._latest
        return replace(self._last_spec[campaign], state=SmsRunState.STOPPED), self._latest

    def sending(self, campaign: str) -> bool:
        task = self.tasks.get(campaign)
        return task is not None and not task.done()

    # --- starting ---------------------------------------------------------------------------------------

    def performer(self, desired: DesiredState, store: Store, ctx: ConnectContext, *,
                  risk_duplicates: bool) -> Performer:
        """The ``send-sms`` performer of one pass: starts the send in the background (or leaves the one
        already running, which reads the new declarations by itself) and returns at once."""
        async def perform(action: Action) -> Mapping[str, Any]:
            name = action.params["campaign"]
            if self.sending(name):
                return {"background": "already sending; steered by this pass"}
            spec = desired.campaigns[name]
            assert isinstance(spec, SmsCampaignSpec)
            failed = self.failed.pop(name, None)
            if failed is not None and failed[0] == spec:
                raise failed[1]  # the failure of the send this pass would start again
            self._last_spec[name] = spec
            if self._latest is None:
                self._latest = desired
            sender = sms_sender_for(desired.backends[spec.backend], ctx)
            if sender is None:
                raise PermanentBackendError("this backend sends no SMS", backend=spec.backend, operation="send-sms")
            ports = tuple(sorted({p for a in desired.assignments_of(name) for p in a.ports}))
            run = SmsCampaignRun(spec=spec, desired=desired, sender=sender, ledger=store.ledger, ports=ports,
                                 now=self._now, lease=store.lease, risk_duplicates=risk_duplicates, steering=self)
            self.tasks[name] = asyncio.create_task(self._run(name, run, sender), name=f"send:{name}")
            log.info("sms.background_started", campaign=name, to_send=action.params.get("to_send"))
            return {"background": "started", "to_send": action.params.get("to_send", 0)}

        return perform

    async def _run(self, name: str, run: SmsCampaignRun, sender: SmsSender) -> None:
        try:
            report = await run.run()
            raise_if_refused(report, run.backend)  # recorded below: the next pass reports it, the daemon backs off
            log.info("sms.background_done", campaign=name, sent=report.sent, accepted=report.accepted,
                     failed=report.failed, unknown=report.unknown, held=report.held)
        except LeaseLostError as exc:
            self._on_lease_lost(str(exc))
        except BackendError as exc:
            self.failed[name] = (run.spec, exc)
            log.error("sms.background_failed", campaign=name, error=str(exc))
        except ReconcilerError as exc:
            log.error("sms.background_failed", campaign=name, error=str(exc))
        finally:
            await sender.aclose()
            self._on_done(name)

    async def cancel_all(self) -> None:
        """Shutdown or a lost lease: stop at once; what is ``dispatching`` is resolved at the next start."""
        tasks = [t for t in self.tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.tasks.clear()
