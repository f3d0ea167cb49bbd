"""The IoT campaign manager sandbox: every endpoint of the seed (campaigns, gateways in campaigns,
per-gateway packages, schedules, callbacks, distribution lists, status, programs), bearer-token
auth with per-user permissions, and a simulated agent that moves gateways of started campaigns
through their states on the simulated clock and announces them to registered callbacks.

This module wires the parts together behind the harness's ``Simulator`` protocol:
``state`` (rules), ``agent`` (gateway lifecycle), ``routes``
(HTTP), ``callbacks`` (deliveries), ``auth`` (users and tokens).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from starlette.routing import BaseRoute

from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.iot_campaigns.auth import TokenBook, users_from_option
from reconciler.sandbox.iot_campaigns.callbacks import CallbackDispatcher
from reconciler.sandbox.iot_campaigns.model import (
    IotSimOptions,
    campaign_from_json,
    campaign_json,
    gateway_json,
    program_from_json,
    program_json,
)
from reconciler.sandbox.iot_campaigns.routes import api_routes
from reconciler.sandbox.iot_campaigns.state import IotCampaignsState


class IotCampaignsSimulator:
    """The IoT campaign manager on loopback.

    Options (keyword arguments):
    - ``approval_required``: the organisation setting; new campaigns are APPROVAL_NEEDED when on.
    - ``gateway_count``: enrolled gateways ``gw-00001`` .. (adding any other id is a 400).
    - ``step_seconds``: simulated seconds each step of a gateway's lifecycle takes.
    - ``failure_rate``: chance (0..1) that a download, execution or activation fails (seeded).
    - ``token_ttl_s``: lifetime of a bearer token on the simulated clock.
    - ``max_upload_bytes``: size limit of a multipart upload request (413 above it).
    - ``users``: name -> (password, permissions); default ``admin``/``admin`` with every permission.
    - ``destinations``: notification destination id -> URL that callbacks are POSTed to.
    - ``callback_timeout_s``: how long one callback POST may take before it counts as failed.
    """

    name = "iot-campaigns"

    def __init__(
        self,
        *,
        clock: SimClock,
        seed: int | None = None,
        approval_required: bool = False,
        gateway_count: int = 10_000,
        step_seconds: float = 60.0,
        failure_rate: float = 0.0,
        token_ttl_s: float = 3600.0,
        max_upload_bytes: int = 1 << 30,
        users: Mapping[str, tuple[str, frozenset[str]]] | None = None,
        destinations: Mapping[str, str] | None = None,
        callback_timeout_s: float = 2.0,
    ) -> None:
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError("failure_rate must be between 0 and 1")
        if gateway_count < 0 or step_seconds < 0 or token_ttl_s <= 0 or max_upload_bytes <= 0:
            raise ValueError("gateway_count and step_seconds must be >= 0, token_ttl_s and max_upload_bytes > 0")
        self.clock = clock
        self.options = IotSimOptions(
            approval_required=approval_required, gateway_count=gateway_count, step_seconds=step_seconds,
            failure_rate=failure_rate, token_ttl_s=token_ttl_s, max_upload_bytes=max_upload_bytes,
            destinations=dict(destinations or {}),
        )
        base_seed = random.Random(seed).getrandbits(32)
        self.dispatcher = CallbackDispatcher(timeout_s=callback_timeout_s)
        self.state = IotCampaignsState(options=self.options, seed=base_seed, dispatcher=self.dispatcher)
        self.tokens = TokenBook(users=users_from_option(users), ttl_s=token_ttl_s,
                                rng=random.Random(f"{base_seed}:tokens"))

    # --- Simulator protocol ---------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return api_routes(state=self.state, tokens=self.tokens, clock=self.clock)

    def advance(self, now: float) -> None:
        self.state.advance(now)

    def reset(self) -> None:
        """No campaigns, no packages, no tokens; the enrolled gateways are fixtures and stay."""
        self.state.clear()
        self.tokens.clear()
        self.dispatcher.reset()

    def snapshot(self) -> dict[str, Any]:
        now = self.clock.now()
        state = self.state
        campaigns = []
        for campaign in state.campaigns.values():
            gateways = []
            for run in campaign.gateways.values():
                at = state.position(campaign, run, now)
                gateways.append(gateway_json(run, at, state.is_closed(run, at)))
            campaigns.append(campaign_json(campaign, gateways))
        return {
            "options": {
                "approvalRequired": self.options.approval_required,
                "gatewayCount": self.options.gateway_count,
                "stepSeconds": self.options.step_seconds,
                "failureRate": self.options.failure_rate,
                "tokenTtlSeconds": self.options.token_ttl_s,
                "maxUploadBytes": self.options.max_upload_bytes,
                "destinations": dict(self.options.destinations),
            },
            "seed": state.seed,
            "issuedIds": state.issued_ids,
            "campaigns": campaigns,
            "packages": [program_json(p) for p in state.programs.values()],
            "notifications": list(state.notifications),
            "callbackDeliveries": self.dispatcher.snapshot(),
            "tokens": self.tokens.snapshot(),
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.reset()
        state = self.state
        state.restore_counters(seed=int(data["seed"]), issued_ids=int(data["issuedIds"]))
        state.campaigns.update((c["id"], campaign_from_json(c)) for c in data["campaigns"])
        state.programs.update((p["id"], program_from_json(p)) for p in data["packages"])
        state.notifications.extend(data["notifications"])
        self.dispatcher.restore(data["callbackDeliveries"])
        self.tokens.restore(data["tokens"])
        state.track_all(self.clock.now())

    def malformed(self, body: bytes) -> bytes:
        """Truncated JSON (a JSON object cut in half never parses)."""
        return body[: len(body) // 2] or b"{"
