"""``reconcile watch``: the long-running daemon.

Three triggers (file events, the resync interval that corrects drift, the earliest retry time) and the
webhooks feed one single-flight loop. A pass that only file or git changes triggered visits only the
backends whose declarations changed (``scope``); every other pass visits all. An invalid commit never stops it: the diagnostics are logged and
the last good declarations stay in force. SIGTERM/SIGINT stop taking work, let the pass in flight finish
(bounded by ``shutdown_grace``), and exit 0; SIGHUP re-reads everything.

One writer per state store: the daemon holds the store's writer lease for as long as it is active. With
``--standby`` it waits for the lease (another daemon is active) and takes over when that one releases it,
dies, or stops renewing it; a daemon that loses its lease (paused past its TTL) stops writing at once and
goes back to standby (or exits 1 without ``--standby``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from reconciler.daemon.dashboard.app import Dashboard
from reconciler.daemon.clock import SYSTEM_CLOCK, Clock, sleep_unless
from reconciler.daemon.git_source import GitSource, GitSourceError
from reconciler.daemon.health import ResourceHealth, fingerprints
from reconciler.daemon.http_api import build_app, http_server
from reconciler.daemon.metrics import DaemonMetrics
from reconciler.daemon.sends import BackgroundSends
from reconciler.daemon.scope import DECLARATION_TRIGGERS, LastSeen, backend_prints, changed_backends
from reconciler.daemon.triggers import PassTrigger, every, fire_after, watch_files
from reconciler.daemon.webhooks import WebhookReceivers
from reconciler.engine.execute import Outcome
from reconciler.engine.progress_report import campaign_progress
from reconciler.engine.reconcile import PassRequest, PassResult, reconcile_desired
from reconciler.engine.sms_outlook import OutlookMemo
from reconciler.load import load_desired_state
from reconciler.load.recipients import ScanMemo
from reconciler.notify.deliver import Deliverer
from reconciler.notify.drift import drift_baseline, drift_corrections
from reconciler.notify.enqueue import facts_of
from reconciler.notify.facts import DriftBaseline
from reconciler.model import DesiredState, Kind, ResourceKey
from reconciler.secrets import Redactor
from reconciler.engine.store_access import request_bound
from reconciler.errors import StateStoreError
from reconciler.state.lease import DEFAULT_TTL_SECONDS, LeaseHeldError, WriterLease
from reconciler.state.ledger import SendLedger
from reconciler.state.store import Store, open_store

log = structlog.get_logger("reconciler.daemon")


@dataclass(frozen=True)
class WatchSettings:
    paths: tuple[Path, ...]
    root: Path | None
    state_url: str
    listen: str = "127.0.0.1:8790"
    resync_seconds: float = 60.0
    debounce_ms: int = 200
    fates_every: float = 0.0  # seconds between asking backends about queued messages (0: every pass)
    shutdown_grace: float = 20.0
    webhook_token: str | None = None
    git_url: str | None = None
    git_branch: str = "main"
    git_interval: float = 30.0
    standby: bool = False
    lease_ttl: float = DEFAULT_TTL_SECONDS
    request: PassRequest = field(default_factory=lambda: PassRequest(paths=()))


class WatchService:
    def __init__(self, settings: WatchSettings, *, environ: dict[str, str], redactor: Redactor,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock  # when to resync and retry, and the time passes plan at (tests move it by hand)
        self.settings = settings
        self.environ = environ
        self.redactor = redactor
        self.metrics = DaemonMetrics()
        self.trigger = PassTrigger()
        self.stop = asyncio.Event()
        self.health = ResourceHealth()
        self.last_good: DesiredState | None = None
        self.seen = LastSeen()
        self.declared_prints: dict[str, str] | None = None  # per backend, as of the last pass that visited it
        self.last_error = ""
        self.declarations_invalid = False  # the last load failed: its error stays shown until one succeeds
        self.ready_flag = False
        self.passes = 0
        self.store: Store | None = None
        self.lease: WriterLease | None = None
        self.stranded: dict[str, dict[str, Any]] = {}  # campaign -> StrandedGateways.as_json()
        self.notify_wake = asyncio.Event()  # set after each pass: the outbox may hold new notifications
        self.last_pass_at: datetime | None = None  # when the last pass started (the drift baseline's time)
        self.fates_read_at: float | None = None  # when a pass last asked the backends about queued messages
        self.sends = BackgroundSends(on_lease_lost=self._lost_lease, on_done=self._send_done,
                                     now=clock.now)
        self.outlooks = OutlookMemo(busy=self.sends.sending)  # who is left to send, between passes
        self.scans = ScanMemo()  # recipient files checked by earlier loads, by content
        self.role = "starting"
        self.git = GitSource(settings.git_url, settings.git_branch, Path(".reconciler")) if settings.git_url else None
        self.dashboard = Dashboard(self, scrub=redactor.scrub)  # the read-only pages at / (reads, never writes)

    # --- what the endpoints show ------------------------------------------------------------------

    def ready(self) -> tuple[bool, str]:
        if not self.lock_held:
            return False, f"{self.role}: another daemon holds the state store's writer lease"
        return (True, "") if self.ready_flag else (False, self.last_error or "first pass not finished")

    def status(self) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        if self.last_good is not None and self.seen.observed:
            for row in campaign_progress(self.last_good, self.seen.observed_state(), self.seen.sms):
                key = f"Campaign/{row.campaign}"
                resources.append({"resource": key, "backend": row.backend,
                                  "desired": _desired_summary(self.last_good, row.campaign),
                                  "observed": {"state": row.state, "counts": row.counts, "detail": row.detail},
                                  "last_outcomes": self.seen.outcomes.get(key, []),
                                  "reason": self.seen.reasons.get(key, ""),
                                  "stranded": self.stranded.get(row.campaign, {"count": 0}),
                                  "blocked": self.health.blocked(ResourceKey(Kind.CAMPAIGN, row.campaign),
                                                                 self.clock.now().timestamp())})
        return {"ready": self.ready()[0], "role": self.role, "lease_token": self.lease.token if self.lease else None,
                "revision": self.git.revision if self.git else "",
                "passes": self.passes, "last_error": self.last_error, "resources": resources}

    @property
    def lock_held(self) -> bool:
        return self.role == "active"

    def ledger(self) -> SendLedger | None:
        return self.store.ledger if self.store is not None and self.lock_held else None

    # --- the loop -----------------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._shutdown, sig)
        loop.add_signal_handler(signal.SIGHUP, lambda: self.trigger.fire("reload (SIGHUP)"))
        webhooks = WebhookReceivers(token=self.settings.webhook_token, metrics=self.metrics, ledger=self.ledger,
                                    on_event=self.trigger.fire)
        server = http_server(build_app(metrics=self.metrics, ready=self.ready, status=self.status,
                                       webhooks=webhooks, dashboard=self.dashboard.routes()), self.settings.listen)
        server_task = asyncio.create_task(_serve(server))
        if not await _listening(server, server_task):
            log.error("daemon.cannot_listen", listen=self.settings.listen,
                      hint="the address is in use or cannot be bound here; choose another --listen HOST:PORT")
            return 1
        dashboard_task = asyncio.create_task(self.dashboard.run(), name="dashboard")
        try:
            self.store = open_store(self.settings.state_url, writer=True)
            assert self.store is not None
            while await self._acquire_lease():
                await self._loop()
                if self.stop.is_set() or not self.settings.standby:
                    break
            code = 0 if self.stop.is_set() or self.lock_held else 1
            log.info("daemon.exit", code=code, role=self.role)
            return code
        except StateStoreError as exc:
            log.error("daemon.store_failed", error=self.redactor.scrub(str(exc)))
            return 1
        finally:
            await self.dashboard.close()  # its event streams end, so the server's shutdown does not wait on them
            server.should_exit = True
            await server_task
            await dashboard_task
            if self.store is not None:
                self.store.close()

    async def _acquire_lease(self) -> bool:
        """Become the active writer (True), or wait as a standby until stopped (False)."""
        assert self.store is not None
        told = False
        while not self.stop.is_set():
            lease = WriterLease(self.store.db, command="reconcile watch", ttl=self.settings.lease_ttl)
            try:
                lease.acquire(timeout=0, request_bound=request_bound(self.last_good))
            except LeaseHeldError as exc:
                if not self.settings.standby:
                    log.error("daemon.locked", holder=exc.holder.describe(),
                              hint="another writer holds the state store's lease; use --standby to wait")
                    return False
                if not told:
                    log.info("daemon.standby", holder=exc.holder.describe())
                    told = True
                self.role = "standby"
                self.metrics.set_role("standby")
                await sleep_unless(self.clock, min(0.5, self.settings.lease_ttl / 3), self.stop)  # then a cheap read
                continue
            self.store.lease = self.lease = lease
            self.role = "active"
            self.metrics.set_role("active")
            if lease.taken_over:
                self.metrics.takeovers.inc()
            log.info("daemon.writer", token=lease.token, pid=os.getpid(), took_over=lease.taken_over)
            return True
        return False

    def _send_done(self, campaign: str) -> None:
        self.trigger.fire(f"send finished: {campaign}")  # counts, status and metrics read again

    def _lost_lease(self, why: str) -> None:
        """Another writer has the store: stop writing now; back to standby (or exit) after this pass."""
        if not self.lock_held:
            return
        log.error("daemon.lease_lost", reason=why)
        self.role = "standby" if self.settings.standby else "stopped"
        self.metrics.set_role("standby")
        self.ready_flag = False
        if self.store is not None:
            self.store.lease = None
        self.trigger.fire("lease lost")

    async def _loop(self) -> None:
        background = [asyncio.create_task(every(self.settings.resync_seconds, "resync", self.trigger, self.stop,
                                                clock=self.clock))]
        background.append(asyncio.create_task(self._deliverer().run(stop=self.stop, wake=self.notify_wake)))
        if self.git is not None:
            background.append(asyncio.create_task(every(self.settings.git_interval, "git", self.trigger, self.stop,
                                                        clock=self.clock)))
        else:
            # an event of its own: watchfiles sets the one it is given when its task is cancelled, and this
            # loop also ends when the lease is lost, which must not look like a shutdown
            background.append(asyncio.create_task(
                watch_files(self.settings.paths, self.trigger, asyncio.Event(), debounce_ms=self.settings.debounce_ms)))
        self.trigger.fire("start")
        retry_timer: asyncio.Task[None] | None = None
        try:
            while not self.stop.is_set() and self.lock_held:
                reasons = await self.trigger.wait()
                if self.stop.is_set() or not self.lock_held:
                    break
                await self._bounded_pass(reasons)
                if retry_timer is not None:
                    retry_timer.cancel()
                retry_timer = self._schedule_retry()
        finally:
            for task in background + ([retry_timer] if retry_timer is not None else []):
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self.sends.cancel_all()

    def _schedule_retry(self) -> asyncio.Task[None] | None:
        """A pass when the earliest backed-off resource is due again (None: nothing is backing off)."""
        now = self.clock.now().timestamp()
        when = self.health.next_retry(now)
        if when is None:
            return None
        return asyncio.create_task(fire_after(max(when - now, 0.05), "retry", self.trigger, clock=self.clock),
                                   name="retry")

    async def _bounded_pass(self, reasons: set[str]) -> None:
        task = asyncio.create_task(self.one_pass(reasons))
        stopping = asyncio.create_task(self.stop.wait())
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():  # SIGTERM during a pass: let it finish, but not forever
            log.info("daemon.draining", grace_seconds=self.settings.shutdown_grace)
            done, _ = await asyncio.wait({task}, timeout=self.settings.shutdown_grace)
            if not done:
                task.cancel()
                log.warning("daemon.pass_cancelled", note="dispatching sends are resolved at the next start")
        stopping.cancel()
        if task.done() and not task.cancelled() and task.exception() is not None:
            self.last_error = f"{type(task.exception()).__name__}: {task.exception()}"
            log.error("daemon.pass_crashed", error=self.redactor.scrub(self.last_error))

    def _shutdown(self, sig: int) -> None:
        log.info("daemon.stopping", signal=signal.Signals(sig).name)
        self.stop.set()
        self.trigger.fire("stop")

    async def one_pass(self, reasons: set[str]) -> None:
        started = time.monotonic()  # how long the pass's work takes: real time, whatever the clock says
        paths = self.settings.paths
        if self.git is not None:
            try:
                revision = await self.git.sync()
                self.metrics.set_revision(revision)
            except GitSourceError as exc:
                log.error("git.sync_failed", error=self.redactor.scrub(str(exc)))
            paths = tuple(self.git.checkout / p for p in paths)
        desired = self._load(paths)
        if desired is None:
            return
        self.sends.steer(desired)  # running sends read it before their next batch: the brake
        prints = fingerprints(desired)
        self.health.spec_changed(prints)
        declared = backend_prints(desired, prints)
        scope = self._scope(reasons, declared)
        if scope is not None and not scope:
            self.declared_prints = declared
            log.info("pass.skipped", reasons=sorted(reasons), note="no backend's declarations changed")
            return
        target = desired if scope is None else desired.only_backends(scope)
        now = self.clock.now().timestamp()
        drift = drift_baseline(previous=self.declared_prints, current=declared, resources=prints, desired=desired,
                               failing=self.health.failures.keys() | self.health.stalled.keys(), since=self.last_pass_at)
        self.last_pass_at = self.clock.now()
        read_fates = self._fates_due()
        request = replace(self.settings.request, paths=paths, dry_run=False, state_url=self.settings.state_url,
                          command="reconcile watch", revision=self.git.revision if self.git else None, drift=drift,
                          read_fates=read_fates)
        result = await reconcile_desired(target, request, now=self.clock.now(), environ=self.environ,
                                         redactor=self.redactor, hold=lambda p: self.health.hold(p, now),
                                         on_request=self.metrics.record_request, store=self.store,
                                         send_performers=self._send_performers, outlook_memo=self.outlooks)
        self.notify_wake.set()
        if result.lease_lost or (self.lease is not None and self.lease.lost):
            self._lost_lease(result.lease_lost or self.lease.lost if self.lease else result.lease_lost)
            return
        self.declared_prints = declared
        if read_fates and scope is None and result.plan is not None:  # a pass cut short asked nothing
            self.fates_read_at = self.clock.monotonic()
        self._record(result, prints, reasons, time.monotonic() - started, scope, drift)

    def _fates_due(self) -> bool:
        """Whether this pass asks the backends about messages still queued (``--fates-every``)."""
        every = self.settings.fates_every
        return every <= 0 or self.fates_read_at is None or self.clock.monotonic() - self.fates_read_at >= every

    def _deliverer(self) -> Deliverer:
        """Sends the outbox's notifications while this daemon is the writer (``reconciler.notify.deliver``)."""
        assert self.store is not None
        return Deliverer(db=self.store.db, lease=self.lease, desired=lambda: self.last_good, environ=self.environ,
                         redactor=self.redactor)

    def _send_performers(self, desired: DesiredState, store: Store, ctx: Any) -> Any:
        risk = self.settings.request.options.risk_duplicate_sms
        return self.sends.performer(desired, store, ctx, risk_duplicates=risk)

    def _scope(self, reasons: set[str], declared: dict[str, str]) -> set[str] | None:
        """The backends this pass visits; ``None`` for all of them."""
        if not reasons <= DECLARATION_TRIGGERS or self.declared_prints is None or not self.seen.complete:
            return None
        return changed_backends(self.declared_prints, declared) | (self.seen.changed & declared.keys())

    def _load(self, paths: tuple[Path, ...]) -> DesiredState | None:
        loaded = load_desired_state(list(paths), root=self.settings.root if self.git is None else self.git.checkout,
                                    scans=self.scans)
        self.declarations_invalid = loaded.desired is None
        if loaded.desired is not None:
            self.last_good = loaded.desired
            return loaded.desired
        self.metrics.invalid.inc()
        self.dashboard.feed.declarations_invalid(loaded.diagnostics, self.git.revision if self.git else "")
        for diagnostic in loaded.diagnostics:
            log.error("declarations.invalid", problem=diagnostic.format())
        self.last_error = f"{len(loaded.diagnostics)} problem(s) in the declarations; the last good state is kept"
        return self.last_good

    def _record(self, result: PassResult, prints: dict[Any, str], reasons: set[str], seconds: float,
                scope: set[str] | None, drift: DriftBaseline | None = None) -> None:
        self.passes += 1
        corrected = {o.action.id for o in self._drift_corrections(result, drift)}
        self._remember(result, scope)
        self.dashboard.feed.pass_done(result, reasons, seconds, scope, corrected)
        self.metrics.pass_seconds.observe(seconds)
        self.metrics.passes.labels("ok" if result.ok else "failed").inc()
        if result.report is not None:
            self.metrics.record_report(result.report)
            self.health.record(result.report, prints, self.clock.now().timestamp())
            if corrected:
                self.metrics.drift.inc()
        ledger = self.ledger()
        if ledger is not None and self.last_good is not None:
            self.metrics.set_ledger({c: ledger.counts(s.backend, c) for c, s in self.last_good.campaigns.items()})
        if result.plan is not None:
            self._remember_stranded(result, scope)
        if result.plan is not None and not result.plan.unreadable:
            self.ready_flag = True
            self.last_error = "" if result.ok and not self.declarations_invalid else self.last_error
        actions = len(result.report.outcomes) if result.report else 0
        for outcome in result.report.outcomes if result.report else ():  # what was done, by name, not a count
            log.info("action.done", verb=outcome.action.verb.value, resource=str(outcome.key),
                     outcome=outcome.status.value, reason=outcome.action.reason,
                     drift_correction=outcome.action.id in corrected, message=outcome.message[:300])
        log.info("pass.done", reasons=sorted(reasons), seconds=round(seconds, 3), actions=actions, ok=result.ok,
                 backends=sorted(scope) if scope is not None else "all",
                 diagnostics=[d.format() for d in result.diagnostics][:20])

    def _drift_corrections(self, result: PassResult, drift: DriftBaseline | None) -> tuple[Outcome, ...]:
        """The pass's actions that put back what changed outside git (``notify.drift``'s rule, the one its
        ``drift.corrected`` notifications use): not a send it steers, a wave step or an active period's edge."""
        if drift is None or result.report is None or result.desired is None:
            return ()
        return drift_corrections(facts_of(result, now=self.last_pass_at or self.clock.now(), drift=drift))

    def _remember_stranded(self, result: PassResult, scope: set[str] | None) -> None:
        """Stranded gateways per campaign, as the last pass that visited its backend found them."""
        assert result.plan is not None
        visited = set(result.desired.backends) if result.desired is not None else set()
        kept = {c: s for c, s in self.stranded.items() if scope is not None and s.get("backend") not in visited}
        self.stranded = kept | {s.campaign: s.as_json() for s in getattr(result.plan, "stranded", ())}
        self.metrics.set_stranded(self.stranded)

    def _remember(self, result: PassResult, scope: set[str] | None) -> None:
        if result.observed is None or result.desired is None:
            return
        outcomes: dict[str, list[dict[str, str]]] = {}
        for outcome in (result.report.outcomes if result.report else ()):
            outcomes.setdefault(str(outcome.key), []).append(
                {"verb": outcome.action.verb.value, "outcome": outcome.status.value, "message": outcome.message})
        reasons = {str(n.key): n.reason for n in (result.plan.noops if result.plan else ())}
        acted = {o.action.backend for o in (result.report.outcomes if result.report else ())}
        self.seen.absorb(result.desired, result.observed, result.sms, outcomes, reasons, scope, acted)


async def _serve(server: Any) -> None:
    """uvicorn's ``serve``, except that a failed start (it calls ``sys.exit``) ends only this task."""
    try:
        await server.serve()
    except SystemExit:
        return


async def _listening(server: Any, task: asyncio.Task[Any], timeout: float = 10.0) -> bool:
    """Whether the HTTP server is serving (its task ends at once when it cannot bind: port in use)."""
    deadline = time.monotonic() + timeout
    while not server.started and not task.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return bool(server.started) and not task.done()


def _desired_summary(desired: DesiredState, campaign: str) -> dict[str, Any]:
    spec = desired.campaigns[campaign]  # four fields read, not the whole spec copied (recipients included)
    summary = {k: getattr(spec, k) for k in ("backend", "state", "campaign_id", "description") if hasattr(spec, k)}
    return {k: (v.value if hasattr(v, "value") else v) for k, v in summary.items()}
