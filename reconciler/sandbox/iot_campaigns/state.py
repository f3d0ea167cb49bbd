"""The rules of the IoT campaign manager sandbox: campaign status transitions, gateways in campaigns,
per-gateway packages, schedules, callbacks, distribution lists and programs.

Every operation takes already-parsed arguments and the simulated time, and raises ``ApiError`` for
what the API refuses (400 validation, 404 unknown id, 409 state conflict). HTTP parsing lives in
``routes``, reply shapes in ``views``.
"""

from __future__ import annotations

import itertools
import random
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.model import CallbackKind
from reconciler.sandbox.iot_campaigns.agent import (
    Checkpoint,
    FailureDraw,
    GatewayState,
    Span,
    Window,
    evolve,
    failure_draw,
    next_transition,
)
from reconciler.sandbox.iot_campaigns.callbacks import (
    CallbackDispatcher,
    TransitionQueue,
    fired_callbacks,
)
from reconciler.sandbox.iot_campaigns.model import (
    ApiError,
    Campaign,
    CallbackRegistration,
    CampaignStatus,
    DistributionListSetting,
    GatewayRun,
    IotSimOptions,
    Program,
    epoch_ms,
)

_GATEWAY_ID = re.compile(r"gw-(\d{5,})")
_STARTABLE = (CampaignStatus.CREATED, CampaignStatus.APPROVED, CampaignStatus.STOPPED)


@dataclass(frozen=True)
class CampaignFields:
    """The editable fields of a campaign; ``None`` means "not given" (an edit keeps the old value)."""

    name: str | None = None
    description: str | None = None
    packages: tuple[str, ...] | None = None
    settings: Mapping[str, str] | None = None


class IotCampaignsState:
    """Campaigns, programs and notifications, with the operations the API offers on them."""

    def __init__(self, *, options: IotSimOptions, seed: int, dispatcher: CallbackDispatcher) -> None:
        self.options = options
        self.dispatcher = dispatcher
        self.campaigns: dict[str, Campaign] = {}
        self.programs: dict[str, Program] = {}
        self.notifications: list[dict[str, Any]] = []
        self._seed = seed
        self._issued_ids = 0
        self._queue = TransitionQueue()
        self._versions = itertools.count(1)

    # --- ids and lookups --------------------------------------------------------------------------

    def new_id(self) -> str:
        """A UUID that depends only on the seed and how many ids were issued before (repeatable)."""
        self._issued_ids += 1
        bits = random.Random(f"{self._seed}:id:{self._issued_ids}").getrandbits(128)
        return str(uuid.UUID(int=bits, version=4))

    def campaign(self, campaign_id: str) -> Campaign:
        found = self.campaigns.get(campaign_id)
        if found is None:
            raise ApiError(404, f"campaign {campaign_id} not found")
        return found

    def program(self, program_id: str) -> Program:
        found = self.programs.get(program_id)
        if found is None:
            raise ApiError(404, f"package {program_id} not found")
        return found

    def is_enrolled(self, gateway_id: str) -> bool:
        match = _GATEWAY_ID.fullmatch(gateway_id)
        return match is not None and 1 <= int(match.group(1)) <= self.options.gateway_count and (
            gateway_id == f"gw-{int(match.group(1)):05d}"
        )

    def gateway(self, campaign: Campaign, gateway_id: str) -> GatewayRun:
        run = campaign.gateways.get(gateway_id)
        if run is None:
            raise ApiError(404, f"gateway {gateway_id} is not in campaign {campaign.id}")
        return run

    # --- where a gateway stands ---------------------------------------------------------------------

    def effective_now(self, campaign: Campaign, now: float) -> float:
        """Time as the campaign's gateways live it: it stands still while the campaign is not STARTED."""
        return now if campaign.status is CampaignStatus.STARTED else campaign.paused_since

    def position(self, campaign: Campaign, run: GatewayRun, now: float) -> Checkpoint:
        """The gateway's current state and when it entered it."""
        if run.closed:
            return run.at
        return evolve(run.at, self.effective_now(campaign, now), run.windows, self.options.step_seconds,
                      self._fails(campaign, run))

    @staticmethod
    def is_closed(run: GatewayRun, at: Checkpoint) -> bool:
        return run.closed or at.state is GatewayState.ACTIVATION_COMPLETE

    def effective_packages(self, campaign: Campaign, run: GatewayRun) -> list[str]:
        return list(campaign.packages if run.packages is None else run.packages)

    def _fails(self, campaign: Campaign, run: GatewayRun) -> FailureDraw:
        return failure_draw(rate=self.options.failure_rate, seed=self._seed,
                            campaign_id=campaign.id, gateway_id=run.gateway_id)

    def _materialize(self, campaign: Campaign, run: GatewayRun, now: float) -> Checkpoint:
        run.at = self.position(campaign, run, now)
        run.closed = self.is_closed(run, run.at)
        run.version = next(self._versions)
        return run.at

    # --- campaigns ----------------------------------------------------------------------------------

    def create_campaign(self, fields: CampaignFields, now: float) -> Campaign:
        self._check_packages(fields.packages or ())
        status = CampaignStatus.APPROVAL_NEEDED if self.options.approval_required else CampaignStatus.CREATED
        campaign = Campaign(
            id=self.new_id(), name=fields.name or "", description=fields.description or "",
            packages=list(fields.packages or ()), settings=dict(fields.settings or {}), status=status,
            created=now, modified=now, paused_since=now,
        )
        self.campaigns[campaign.id] = campaign
        return campaign

    def edit_campaign(self, campaign_id: str, fields: CampaignFields, now: float) -> Campaign:
        campaign = self.campaign(campaign_id)
        self._refuse_while_started(campaign, "edited")
        self._check_packages(fields.packages or ())
        if fields.name is not None:
            campaign.name = fields.name
        if fields.description is not None:
            campaign.description = fields.description
        if fields.packages is not None:
            campaign.packages = list(fields.packages)
        if fields.settings is not None:
            campaign.settings = dict(fields.settings)
        campaign.modified = now
        return campaign

    def delete_campaign(self, campaign_id: str) -> None:
        self._refuse_while_started(self.campaign(campaign_id), "deleted")
        del self.campaigns[campaign_id]

    def approve(self, campaign_id: str, now: float) -> None:
        campaign = self.campaign(campaign_id)
        self._require_status(campaign, "approve", (CampaignStatus.APPROVAL_NEEDED,))
        campaign.status = CampaignStatus.APPROVED
        campaign.modified = now

    def start(self, campaign_id: str, now: float) -> None:
        """Start, or restart after a stop (a stopped campaign restarts without a new approval); its
        gateways resume where they stood, the time it was not running does not count."""
        campaign = self.campaign(campaign_id)
        self._require_status(campaign, "start", _STARTABLE)
        shift = now - campaign.paused_since
        for run in campaign.gateways.values():
            at = self._materialize(campaign, run, now)
            if not run.closed:
                run.at = Checkpoint(at.state, min(at.entered + shift, now))
        campaign.status = CampaignStatus.STARTED
        campaign.run_epoch += 1
        campaign.modified = now
        if self._tracked(campaign):
            for run in campaign.gateways.values():
                self._enqueue_next(campaign, run)

    def stop(self, campaign_id: str, now: float) -> None:
        campaign = self.campaign(campaign_id)
        self._require_status(campaign, "stop", (CampaignStatus.STARTED,))
        campaign.status = CampaignStatus.STOPPED
        campaign.paused_since = now
        campaign.run_epoch += 1
        campaign.modified = now

    def _require_status(self, campaign: Campaign, verb: str, allowed: Sequence[CampaignStatus]) -> None:
        if campaign.status not in allowed:
            names = ", ".join(s.value for s in allowed)
            raise ApiError(409, f"cannot {verb} campaign {campaign.id}: it is {campaign.status.value} "
                                f"(needs {names})")

    def _refuse_while_started(self, campaign: Campaign, what: str) -> None:
        if campaign.status is CampaignStatus.STARTED:
            raise ApiError(409, f"campaign {campaign.id} is STARTED and cannot be {what}; stop it first")

    def _check_packages(self, package_ids: Iterable[str]) -> None:
        unknown = [p for p in package_ids if p not in self.programs]
        if unknown:
            raise ApiError(400, f"unknown package id(s): {', '.join(unknown[:10])}")

    # --- gateways in a campaign ---------------------------------------------------------------------

    def add_gateways(self, campaign_id: str, gateway_ids: Sequence[str], now: float) -> None:
        """Add enrolled gateways (already present ones are left as they are)."""
        campaign = self.campaign(campaign_id)
        self._check_enrolled(gateway_ids)
        for gateway_id in gateway_ids:
            if gateway_id in campaign.gateways:
                continue
            run = GatewayRun(gateway_id, Checkpoint(GatewayState.INSTANTIATED, now), added_at=now,
                             version=next(self._versions))
            campaign.gateways[gateway_id] = run
            if campaign.status is CampaignStatus.STARTED and self._tracked(campaign):
                self._enqueue_next(campaign, run)
        campaign.modified = now

    def remove_gateways(self, campaign_id: str, gateway_ids: Sequence[str], now: float) -> None:
        """Remove gateways (absent ones are ignored); a closed gateway stays (409, nothing removed)."""
        campaign = self.campaign(campaign_id)
        self._check_enrolled(gateway_ids)
        closed = [g for g in gateway_ids if g in campaign.gateways
                  and self.is_closed(campaign.gateways[g], self.position(campaign, campaign.gateways[g], now))]
        if closed:
            raise ApiError(409, f"closed gateway(s) cannot be removed: {', '.join(closed[:10])}")
        for gateway_id in gateway_ids:
            campaign.gateways.pop(gateway_id, None)
        campaign.modified = now

    def _check_enrolled(self, gateway_ids: Sequence[str]) -> None:
        unknown = [g for g in gateway_ids if not self.is_enrolled(g)]
        if unknown:
            raise ApiError(400, f"unknown gateway id(s): {', '.join(unknown[:10])}")

    def set_gateway_packages(self, campaign_id: str, gateway_id: str, packages: Sequence[str]) -> None:
        campaign = self.campaign(campaign_id)
        run = self.gateway(campaign, gateway_id)
        self._check_packages(packages)
        run.packages = list(packages)

    def schedule(self, campaign_id: str, gateway_id: str, window: Window, span: Span, now: float) -> None:
        campaign = self.campaign(campaign_id)
        run = self.gateway(campaign, gateway_id)
        self._materialize(campaign, run, now)
        run.windows[window] = span
        self._enqueue_next(campaign, run)

    def close_gateway(self, campaign_id: str, gateway_id: str, now: float) -> None:
        campaign = self.campaign(campaign_id)
        run = self.gateway(campaign, gateway_id)
        already = run.closed
        at = self._materialize(campaign, run, now)
        run.closed = True
        if not already:
            completed = campaign.callbacks.get(CallbackKind.COMPLETED)
            self._announce(campaign, gateway_id, at.state, now, [completed] if completed else [])

    def notify_gateway(self, campaign_id: str, gateway_id: str, now: float) -> None:
        """Record the notification; the gateway polls at once, so a step that only waited for its
        poll interval happens now (windows still apply)."""
        campaign = self.campaign(campaign_id)
        run = self.gateway(campaign, gateway_id)
        run.notifications += 1
        self.notifications.append({"campaignId": campaign_id, "gatewayId": gateway_id, "at": epoch_ms(now)})
        at = self._materialize(campaign, run, now)
        if campaign.status is CampaignStatus.STARTED and not run.closed:
            run.at = Checkpoint(at.state, min(at.entered, now - self.options.step_seconds))
            self._enqueue_next(campaign, run)
        wake_up = campaign.callbacks.get(CallbackKind.WAKE_UP)
        self._announce(campaign, gateway_id, at.state, now, [wake_up] if wake_up else [])

    def active_campaigns(self, gateway_id: str, now: float) -> list[str]:
        if not self.is_enrolled(gateway_id):
            raise ApiError(404, f"gateway {gateway_id} not found")
        active = []
        for campaign in self.campaigns.values():
            run = campaign.gateways.get(gateway_id)
            if run is None or campaign.status is not CampaignStatus.STARTED:
                continue
            if not self.is_closed(run, self.position(campaign, run, now)):
                active.append(campaign.id)
        return active

    # --- callbacks and distribution lists ---------------------------------------------------------

    def register_callback(self, campaign_id: str, registration: CallbackRegistration, now: float) -> None:
        campaign = self.campaign(campaign_id)
        was_tracked = self._tracked(campaign)
        campaign.callbacks[registration.kind] = registration
        if not was_tracked and self._tracked(campaign) and campaign.status is CampaignStatus.STARTED:
            for run in campaign.gateways.values():
                self._materialize(campaign, run, now)
                self._enqueue_next(campaign, run)

    def set_distribution_list(self, campaign_id: str, setting: DistributionListSetting, now: float) -> None:
        campaign = self.campaign(campaign_id)
        campaign.distribution_list = setting
        campaign.modified = now

    # --- programs -----------------------------------------------------------------------------------

    def add_program(self, *, name: str, description: str, size: int, sha256: str, user: str,
                    upload: str, now: float) -> Program:
        program = Program(self.new_id(), name, description, size, sha256, user, now, upload)
        self.programs[program.id] = program
        return program

    def delete_program(self, program_id: str) -> None:
        self.program(program_id)
        users = [c.id for c in self.campaigns.values() if program_id in c.packages or any(
            r.packages is not None and program_id in r.packages for r in c.gateways.values())]
        if users:
            raise ApiError(409, f"package {program_id} is used by campaign(s) {', '.join(users[:10])}")
        del self.programs[program_id]

    # --- the agent's clock and callbacks ------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Play the due transitions of campaigns with callbacks, in time order, announcing each."""
        while (item := self._queue.pop_due(now)) is not None:
            campaign = self.campaigns.get(item.campaign_id)
            run = campaign.gateways.get(item.gateway_id) if campaign else None
            if campaign is None or run is None or run.version != item.version or run.closed:
                continue
            if campaign.run_epoch != item.epoch or campaign.status is not CampaignStatus.STARTED:
                continue
            following = next_transition(run.at, run.windows, self.options.step_seconds, self._fails(campaign, run))
            if following is None:
                continue
            run.at = following
            run.closed = following.state is GatewayState.ACTIVATION_COMPLETE
            run.version = next(self._versions)
            registrations = fired_callbacks(campaign.callbacks, following.state)
            self._announce(campaign, run.gateway_id, following.state, following.entered, registrations)
            self._enqueue_next(campaign, run)

    def track_all(self, now: float) -> None:
        """Queue the next transitions of every started campaign with callbacks (after a restore)."""
        self._queue.clear()
        for campaign in self.campaigns.values():
            if campaign.status is CampaignStatus.STARTED and self._tracked(campaign):
                for run in campaign.gateways.values():
                    self._materialize(campaign, run, now)
                    self._enqueue_next(campaign, run)

    def _tracked(self, campaign: Campaign) -> bool:
        return any(r.destination in self.options.destinations for r in campaign.callbacks.values())

    def _enqueue_next(self, campaign: Campaign, run: GatewayRun) -> None:
        if run.closed or campaign.status is not CampaignStatus.STARTED or not self._tracked(campaign):
            return
        following = next_transition(run.at, run.windows, self.options.step_seconds, self._fails(campaign, run))
        if following is not None:
            self._queue.push(following.entered, campaign.id, run.gateway_id, version=run.version,
                             epoch=campaign.run_epoch)

    def _announce(self, campaign: Campaign, gateway_id: str, state: GatewayState, when: float,
                  registrations: Iterable[CallbackRegistration]) -> None:
        for registration in registrations:
            url = self.options.destinations.get(registration.destination)
            if url is None:
                continue
            self.dispatcher.enqueue(url, {
                "campaignId": campaign.id, "gatewayId": gateway_id, "event": registration.kind.value,
                "state": state.value, "timestamp": epoch_ms(when),
            })
        self.dispatcher.flush()

    # --- persistence --------------------------------------------------------------------------------

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def issued_ids(self) -> int:
        return self._issued_ids

    def restore_counters(self, *, seed: int, issued_ids: int) -> None:
        """Ids and failure draws depend on both, so a restored sandbox goes on exactly as it would have."""
        self._seed = seed
        self._issued_ids = issued_ids

    def clear(self) -> None:
        self.campaigns.clear()
        self.programs.clear()
        self.notifications.clear()
        self._queue.clear()
        self._issued_ids = 0
