"""The YateOTA simulator: the JSON control API (``POST /api.php``) of a SIM OTA campaign server.

This module is the wire: authentication, the ``{"request", "node", "params"}`` envelope, parameter
parsing (numbers as JSON numbers or strings), and the reply shapes. The rules of campaigns and
participants live in ``fleet``, the starting fixtures in ``fixtures``.

Every well-formed call is answered HTTP 200 with ``{"code": 0, ...}`` or ``{"code": <non-zero>,
"message": ...}``; a missing or wrong secret is HTTP 401 with ``{"code": 401, "message": ...}``.
"""

from __future__ import annotations

import hmac
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.yateota.fixtures import (
    benchmark_fixtures,
    default_fixtures,
    extra_fixtures,
    populate,
)
from reconciler.sandbox.yateota.fleet import (
    Campaign,
    CampaignAction,
    ErrorCode,
    Participant,
    ParticipantAction,
    ParticipantState,
    YateOtaError,
    YateOtaFleet,
)

SECRET_HEADERS = ("X-Authentication", "Mobile-API-Secret")
NODE = "ota"
INVALID_CALL = "(invalid)"
_NUMBER = re.compile(r"[0-9]+")

Params = Mapping[str, Any]
Choice = TypeVar("Choice", CampaignAction, ParticipantAction, ParticipantState)
Item = TypeVar("Item")
Handler = Callable[[Params], dict[str, Any]]


class YateOtaSimulator:
    """Campaigns 142, 144, 147, 167, 176 (see ``fixtures``) behind the YateOTA JSON API.

    Options: ``secret`` (accepted in ``X-Authentication`` or ``Mobile-API-Secret``), ``content_type`` of
    replies (``application/json`` or ``text/x-json``), ``path`` of the endpoint, ``step_seconds`` and
    ``failure_rate`` of the lifecycle, ``participants_per_campaign`` of the default fixtures,
    ``extra_campaigns`` to add, and ``fleet`` to replace the defaults for benchmarks. The snapshot also
    counts calls by request name (``requests_by_name``; unparsable or unknown ones as ``(invalid)``),
    since every call is ``POST /api.php``.
    """

    name = "yateota"
    rng: random.Random
    fleet: YateOtaFleet
    requests_by_name: Counter[str]

    def __init__(
        self,
        *,
        clock: SimClock,
        seed: int | None = None,
        secret: str = "sandbox-secret",
        content_type: str = "application/json",
        path: str = "/api.php",
        step_seconds: float = 30.0,
        failure_rate: float = 0.05,
        participants_per_campaign: int = 20,
        extra_campaigns: int = 0,
        fleet: list[tuple[int, int, float]] | None = None,
    ) -> None:
        self.clock = clock
        self.seed = seed
        self.secret = secret
        self.content_type = content_type
        self.path = path
        self.step_seconds = step_seconds
        self.failure_rate = failure_rate
        self.participants_per_campaign = participants_per_campaign
        self.extra_campaigns = extra_campaigns
        self.fleet_spec = list(fleet) if fleet is not None else None
        self.handlers: dict[str, Handler] = {
            "query_campaigns": self._query_campaigns,
            "action_campaign": self._action_campaign,
            "query_participants": self._query_participants,
            "action_participant": self._action_participant,
            "trace": self._trace,
        }
        self.reset()

    # --- Simulator protocol ---------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [Route(self.path, self._api, methods=["POST"])]

    def advance(self, now: float) -> None:
        self.fleet.advance(now)

    def reset(self) -> None:
        self.rng = random.Random(self.seed)
        self.fleet = self._new_fleet()
        fixtures = (
            default_fixtures(self.participants_per_campaign)
            if self.fleet_spec is None
            else benchmark_fixtures(self.fleet_spec)
        )
        highest = max((f.campaign_id for f in fixtures), default=0)
        fixtures += extra_fixtures(highest, self.extra_campaigns, self.participants_per_campaign)
        populate(self.fleet, fixtures, now=self.clock.now())
        self.requests_by_name = Counter()

    def snapshot(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {
            **self.fleet.snapshot(),
            "requests_by_name": dict(sorted(self.requests_by_name.items())),
            "rng_state": [version, list(internal), gauss],
        }

    def restore(self, data: dict[str, Any]) -> None:
        version, internal, gauss = data["rng_state"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.fleet = self._new_fleet()
        self.fleet.restore(data)
        self.requests_by_name = Counter({str(k): int(v) for k, v in data["requests_by_name"].items()})

    def malformed(self, body: bytes) -> bytes:
        """Truncated JSON: what a proxy cutting the reply short would deliver."""
        return body[: len(body) // 2]

    def _new_fleet(self) -> YateOtaFleet:
        return YateOtaFleet(step_seconds=self.step_seconds, failure_rate=self.failure_rate, rng=self.rng)

    # --- the wire -------------------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        if not self._authenticated(request):
            message = f"missing or wrong pre-shared secret (header {' or '.join(SECRET_HEADERS)})"
            return self._reply({"code": int(ErrorCode.UNAUTHORIZED), "message": message}, status=401)
        try:
            name, params = self._call(await request.body())
            reply = {"code": 0, **self.handlers[name](params)}
        except YateOtaError as exc:
            reply = {"code": int(exc.code), "message": exc.message}
        return self._reply(reply)

    def _authenticated(self, request: Request) -> bool:
        expected = self.secret.encode()
        given = (request.headers.get(header) for header in SECRET_HEADERS)
        return any(value is not None and hmac.compare_digest(value.encode(), expected) for value in given)

    def _call(self, body: bytes) -> tuple[str, Params]:
        """The request name and params of a call (counted by name), or a ``YateOtaError``."""
        try:
            call = json.loads(body)
        except ValueError:
            self.requests_by_name[INVALID_CALL] += 1
            raise YateOtaError(ErrorCode.BAD_REQUEST, "request body is not valid JSON") from None
        name = call.get("request") if isinstance(call, dict) else None
        if not isinstance(name, str) or name not in self.handlers:
            self.requests_by_name[INVALID_CALL] += 1
            known = ", ".join(self.handlers)
            raise YateOtaError(ErrorCode.BAD_REQUEST, f"unknown or missing request {name!r}; known: {known}")
        self.requests_by_name[name] += 1
        if call.get("node") != NODE:
            raise YateOtaError(ErrorCode.BAD_REQUEST, f"unknown node {call.get('node')!r}; expected {NODE!r}")
        params = call.get("params", {})
        if not isinstance(params, dict):
            raise YateOtaError(ErrorCode.BAD_REQUEST, "params must be an object")
        return name, params

    def _reply(self, body: dict[str, Any], *, status: int = 200) -> Response:
        return Response(json.dumps(body).encode(), status_code=status, media_type=self.content_type)

    # --- the five requests ----------------------------------------------------------------------

    def _query_campaigns(self, params: Params) -> dict[str, Any]:
        campaign_id = _number(params, "campaign_id")
        if campaign_id is not None:
            return {"campaign": [_campaign_record(self.fleet.campaign(campaign_id))]}
        ordered = sorted(self.fleet.campaigns.values(), key=lambda c: c.campaign_id)
        return {"campaigns": [_campaign_record(c) for c in _page(ordered, params)]}

    def _action_campaign(self, params: Params) -> dict[str, Any]:
        campaign_id = _required_number(params, "campaign_id")
        action = _choice(params, "action", CampaignAction)
        self.fleet.act_on_campaign(campaign_id, action, self.clock.now())
        return {}

    def _query_participants(self, params: Params) -> dict[str, Any]:
        campaign_id = _required_number(params, "campaign_id")
        state = _choice(params, "state", ParticipantState) if params.get("state") is not None else None
        matching = self.fleet.participants_of(campaign_id, state)
        return {"participants": [_participant_record(p) for p in _page(matching, params)], "total": len(matching)}

    def _action_participant(self, params: Params) -> dict[str, Any]:
        participant_id = _required_number(params, "participant_id")
        action = _choice(params, "action", ParticipantAction)
        self.fleet.act_on_participant(participant_id, action, self.clock.now())
        return {}

    def _trace(self, params: Params) -> dict[str, Any]:
        campaign = self.fleet.campaign(_required_number(params, "campaign_id"))
        participant = self._traced(campaign, params)
        return {
            "campaign_id": campaign.campaign_id,
            "participant_id": participant.participant_id,
            "trace": [
                {"time": int(e.time), "event": e.event, "state": e.state.value} for e in participant.events
            ],
        }

    def _traced(self, campaign: Campaign, params: Params) -> Participant:
        participant_id = _number(params, "participant_id")
        if participant_id is not None:
            participant = self.fleet.participant(participant_id)
            if participant.campaign_id != campaign.campaign_id:
                raise YateOtaError(
                    ErrorCode.NOT_FOUND,
                    f"participant {participant_id} is not in campaign {campaign.campaign_id}",
                )
            return participant
        for key in ("msisdn", "imsi"):
            if params.get(key) not in (None, ""):
                wanted = str(params[key]).strip()
                for candidate in self.fleet.participants_of(campaign.campaign_id, None):
                    if getattr(candidate, key) == wanted:
                        return candidate
                raise YateOtaError(
                    ErrorCode.NOT_FOUND, f"no participant with {key} {wanted} in campaign {campaign.campaign_id}"
                )
        raise YateOtaError(ErrorCode.BAD_REQUEST, "trace needs one of participant_id, msisdn, imsi")


# --- parameters ---------------------------------------------------------------------------------


def _number(params: Params, name: str) -> int | None:
    """A non-negative integer sent as a JSON number or a string of digits; ``None`` when absent."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return int(value.strip())
    raise YateOtaError(ErrorCode.BAD_REQUEST, f"parameter {name} must be a non-negative number, not {value!r}")


def _required_number(params: Params, name: str) -> int:
    number = _number(params, name)
    if number is None:
        raise YateOtaError(ErrorCode.BAD_REQUEST, f"missing parameter {name}")
    return number


def _choice(params: Params, name: str, choices: type[Choice]) -> Choice:
    value = params.get(name)
    if value is None:
        raise YateOtaError(ErrorCode.BAD_REQUEST, f"missing parameter {name}")
    try:
        return choices(value)
    except ValueError:
        allowed = ", ".join(c.value for c in choices)
        raise YateOtaError(ErrorCode.BAD_REQUEST, f"unknown {name} {value!r}; one of: {allowed}") from None


def _page(items: list[Item], params: Params) -> list[Item]:
    offset = _number(params, "offset") or 0
    limit = _number(params, "limit")
    return items[offset:] if limit is None else items[offset : offset + limit]


# --- records ------------------------------------------------------------------------------------


def _campaign_record(campaign: Campaign) -> dict[str, Any]:
    return {
        "campaign_id": campaign.campaign_id,
        "campaign": campaign.name,
        "type": campaign.type,
        "state": campaign.state.value,
        "start_time": int(campaign.start_time),
        "participants": len(campaign.participant_ids),
        **{state.value: campaign.counts[state] for state in ParticipantState},
    }


def _participant_record(participant: Participant) -> dict[str, Any]:
    return {
        "participant_id": participant.participant_id,
        "campaign_id": participant.campaign_id,
        "msisdn": participant.msisdn,
        "imsi": participant.imsi,
        "state": participant.state.value,
        "attempts": participant.attempts,
        "last_update": int(participant.last_update),
        "error": participant.error,
    }
