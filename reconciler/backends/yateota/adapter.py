"""The YateOTA adapter: SIM OTA campaigns driven through Yate's JSON control API.

YateOTA cannot create campaigns; they are adopted by id, and the reconciler drives their run state
(pause / stop / restart) and their participants (retry / cancel / hurry). Everything is one endpoint,
``POST {url}{path}`` with ``{"request", "node": "ota", "params"}``; the reply's ``code`` decides (0 is
success, any other value a ``PermanentBackendError`` carrying ``message``), whatever its content type
says (``application/json`` or ``text/x-json``). Numbers are read with ``int()`` so that strings and
booleans parse. The pre-shared secret travels in a header (``authHeader``, default ``X-Authentication``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx

from reconciler.actions import Action, Verb
from reconciler.backends.http import BackendHttp, ListingBudget
from reconciler.backends.protocol import ConnectContext
from reconciler.backends.sessions import shared_client
from reconciler.backends.yateota import TYPE
from reconciler.backends.yateota.export import YateOtaExporter
from reconciler.errors import BackendError, MalformedReplyError, PermanentBackendError, SecretError
from reconciler.model import BackendSpec, DesiredState, SimCampaignSpec
from reconciler.observed import BackendObservation, ObservedParticipant, ObservedSimCampaign
from reconciler.secrets import SecretRef, SecretValue, resolve_secret
from reconciler.traits import BackendTraits, Lifecycle

NODE = "ota"
COUNT_KEYS = ("participants", "pending_build", "pending_send", "waiting_por", "finished", "failed", "canceled")
ALL_STATES = None  # a participants read without a state filter
CAMPAIGN_VERBS = {
    Verb.PAUSE_CAMPAIGN: ("pause", "paused"),
    Verb.STOP_CAMPAIGN: ("stop", "stopped"),
    Verb.RESTART_CAMPAIGN: ("restart", "started"),
}
PARTICIPANT_VERBS = {
    Verb.RETRY_PARTICIPANT: "retry",
    Verb.CANCEL_PARTICIPANT: "cancel",
    Verb.HURRY_PARTICIPANT: "hurry",
}


@dataclass(frozen=True)
class TraceEvent:
    """One event of a participant's trace; ``time`` is kept as the backend wrote it."""

    time: str
    event: str
    state: str


@dataclass(frozen=True)
class YateOtaOptions:
    """The backend's ``options``: ``authHeader``, ``pageSize``, ``path``."""

    auth_header: str = "X-Authentication"
    page_size: int = 500
    path: str = "/api.php"

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> YateOtaOptions:
        raw = spec.options.get("pageSize", cls.page_size)
        try:
            page_size = int(str(raw))
        except ValueError:
            page_size = 0
        if page_size < 1:
            raise PermanentBackendError(f"option pageSize must be a positive integer, not {raw!r}", backend=spec.name)
        return cls(
            auth_header=str(spec.options.get("authHeader", cls.auth_header)),
            page_size=page_size,
            path=str(spec.options.get("path", cls.path)),
        )


class SecretHeaderAuth(httpx.Auth):
    """Puts the pre-shared secret in one header of every request; its repr never shows the value."""

    def __init__(self, header: str, secret: SecretValue) -> None:
        self.header = header
        self._secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self.header] = self._secret.reveal()
        yield request

    def __repr__(self) -> str:
        return f"SecretHeaderAuth(header={self.header!r}, secret={self._secret!r})"


class YateOtaClient:
    """One async method per request of the YateOTA JSON API, plus a participants pager."""

    def __init__(self, http: BackendHttp, *, path: str = "/api.php", page_size: int = 500) -> None:
        self.http = http
        self.path = path
        self.page_size = page_size

    @classmethod
    def connect(
        cls,
        spec: BackendSpec,
        ctx: ConnectContext,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> YateOtaClient:
        """A client for ``spec``, its secret resolved now (``transport``/``sleep`` are for tests)."""
        options = YateOtaOptions.from_spec(spec)
        ctx.redactor.register_header(options.auth_header)
        http = BackendHttp.for_backend(spec, ctx, auth=SecretHeaderAuth(options.auth_header, _secret(spec, ctx)),
                                       transport=transport, sleep=sleep)
        return cls(http, path=options.path, page_size=options.page_size)

    def __repr__(self) -> str:
        return f"YateOtaClient(backend={self.http.backend!r}, path={self.path!r})"

    async def aclose(self) -> None:
        await self.http.aclose()

    async def query_campaigns(
        self, limit: int | None = None, offset: int | None = None, campaign_id: int | None = None
    ) -> tuple[ObservedSimCampaign, ...]:
        params = {"limit": limit, "offset": offset, "campaign_id": campaign_id}
        body = await self._request("query_campaigns", params, idempotent=True)
        return tuple(_campaign(record) for record in _records(body, "campaigns", "campaign"))

    async def action_campaign(self, campaign_id: int, action: str) -> Mapping[str, Any]:
        params = {"campaign_id": campaign_id, "action": action}
        return _payload(await self._request("action_campaign", params, idempotent=True))

    async def query_participants(
        self,
        campaign_id: int,
        limit: int | None = None,
        offset: int | None = None,
        state: str | None = None,
    ) -> tuple[ObservedParticipant, ...]:
        params = {"campaign_id": campaign_id, "limit": limit, "offset": offset, "state": state}
        body = await self._request("query_participants", params, idempotent=True)
        return tuple(_participant(record, campaign_id) for record in _records(body, "participants"))

    async def action_participant(self, participant_id: int, action: str) -> Mapping[str, Any]:
        params = {"participant_id": participant_id, "action": action}
        return _payload(await self._request("action_participant", params, idempotent=False))

    async def trace(
        self,
        campaign_id: int,
        participant_id: int | None = None,
        msisdn: str | None = None,
        imsi: str | None = None,
    ) -> tuple[TraceEvent, ...]:
        params = {"campaign_id": campaign_id, "participant_id": participant_id, "msisdn": msisdn, "imsi": imsi}
        body = await self._request("trace", params, idempotent=True)
        return tuple(_trace_event(record) for record in _records(body, "trace", "events"))

    async def all_participants(self, campaign_id: int, state: str | None = None) -> tuple[ObservedParticipant, ...]:
        """Every participant (in ``state``), page by page of ``page_size`` until a shorter page, within
        ``limits.maxListPages`` and ``maxListItems`` (a ``ReplyLimitError`` naming the backend beyond)."""
        budget = ListingBudget(self.http, "query_participants")
        collected: list[ObservedParticipant] = []
        while True:
            page = await self.query_participants(
                campaign_id, limit=self.page_size, offset=len(collected), state=state
            )
            budget.add(len(page))
            collected.extend(page)
            if len(page) < self.page_size:
                return tuple(collected)

    async def _request(self, name: str, params: Mapping[str, Any], *, idempotent: bool) -> Mapping[str, Any]:
        body = {"request": name, "node": NODE, "params": {k: v for k, v in params.items() if v is not None}}
        return await self.http.call(
            "POST", self.path, operation=name, idempotent=idempotent, parse=_envelope, json=body
        )


class YateOtaReader:
    """Observes the declared YateOTA campaigns with the fewest requests: one campaign listing, and
    participants only where the planner needs them (failed ones for ``retryFailed``; all of them for
    ``cancel`` / ``hurry``)."""

    def __init__(self, backend: str, client: YateOtaClient) -> None:
        self.backend = backend
        self.client = client

    def __repr__(self) -> str:
        return f"YateOtaReader(backend={self.backend!r})"

    async def aclose(self) -> None:
        await self.client.aclose()

    async def observe(self, desired: DesiredState) -> BackendObservation:
        declared = [
            c for c in desired.campaigns.values() if isinstance(c, SimCampaignSpec) and c.backend == self.backend
        ]
        try:
            listed = await self.client.query_campaigns()
            listed_ids = {campaign.campaign_id for campaign in listed}
            reads = {cid: state for cid, state in participant_reads(declared).items() if cid in listed_ids}
            participants = await self._read_participants(reads)
        except BackendError as exc:
            return BackendObservation(backend=self.backend, readable=False, error=str(exc))
        campaigns = tuple(replace(c, participants=participants.get(c.campaign_id, ())) for c in listed)
        return BackendObservation(backend=self.backend, sim_campaigns=campaigns)

    async def _read_participants(
        self, reads: Mapping[int, str | None]
    ) -> dict[int, tuple[ObservedParticipant, ...]]:
        results = await asyncio.gather(
            *(self.client.all_participants(cid, state=state) for cid, state in reads.items()),
            return_exceptions=True,
        )
        read: dict[int, tuple[ObservedParticipant, ...]] = {}
        for campaign_id, result in zip(reads, results):
            if isinstance(result, BaseException):
                raise result
            read[campaign_id] = result
        return read


def participant_reads(declared: list[SimCampaignSpec]) -> dict[int, str | None]:
    """Which participants to read per campaign id: ``"failed"`` only, or ``ALL_STATES``."""
    reads: dict[int, str | None] = {}
    for spec in declared:
        if spec.cancel_msisdns or spec.cancel_imsis or spec.hurry_msisdns:
            reads[spec.campaign_id] = ALL_STATES
        elif spec.retry_failed_max_attempts is not None:
            reads.setdefault(spec.campaign_id, "failed")
    return reads


class YateOtaWriter:
    """Performs campaign run-state changes and participant actions."""

    def __init__(self, backend: str, client: YateOtaClient) -> None:
        self.backend = backend
        self.client = client

    def __repr__(self) -> str:
        return f"YateOtaWriter(backend={self.backend!r})"

    async def aclose(self) -> None:
        await self.client.aclose()

    async def apply(self, action: Action) -> Mapping[str, Any]:
        if action.verb in CAMPAIGN_VERBS:
            return await self._change_run_state(action)
        if action.verb in PARTICIPANT_VERBS:
            participant_id = self._number(action, "participant_id")
            return await self.client.action_participant(participant_id, PARTICIPANT_VERBS[action.verb])
        raise PermanentBackendError(
            f"yateota does not support {action.verb.value}", backend=self.backend, operation=action.verb.value
        )

    async def _change_run_state(self, action: Action) -> Mapping[str, Any]:
        """Pause / stop / restart. A refusal because the campaign is already in the target state (say
        a repeated request whose first reply was lost) counts as done."""
        campaign_id = self._number(action, "campaign_id")
        request, target = CAMPAIGN_VERBS[action.verb]
        try:
            return await self.client.action_campaign(campaign_id, request)
        except PermanentBackendError:
            if await self._state_of(campaign_id) == target:
                return {"campaign_id": campaign_id, "state": target}
            raise

    async def _state_of(self, campaign_id: int) -> str | None:
        try:
            found = await self.client.query_campaigns(campaign_id=campaign_id)
        except BackendError:
            return None
        return found[0].state if found else None

    def _number(self, action: Action, name: str) -> int:
        try:
            return int(action.params[name])
        except (KeyError, TypeError, ValueError):
            raise PermanentBackendError(
                f"{action.verb.value} needs a numeric parameter {name}",
                backend=self.backend,
                operation=action.verb.value,
            ) from None


class YateOtaAdapter:
    """The registry entry for ``type: yateota``."""

    traits = BackendTraits(
        type=TYPE,
        verbs=frozenset(CAMPAIGN_VERBS) | frozenset(PARTICIPANT_VERBS),
        lifecycle=Lifecycle(
            started="started", paused="paused", stopped="stopped", finished="finished",
            member_failed=frozenset({"failed"}),
            member_final=frozenset({"finished", "failed", "canceled"}),
            member_hurriable=frozenset({"pending_build", "pending_send"}),
        ),
    )

    def reader(self, spec: BackendSpec, ctx: ConnectContext) -> YateOtaReader:
        return YateOtaReader(spec.name, shared_client(YateOtaClient.connect, spec, ctx))

    def writer(self, spec: BackendSpec, ctx: ConnectContext) -> YateOtaWriter:
        return YateOtaWriter(spec.name, shared_client(YateOtaClient.connect, spec, ctx))

    def exporter(self, spec: BackendSpec, ctx: ConnectContext) -> YateOtaExporter:
        """What ``reconcile import`` writes for this backend: its Reader's listing is all it needs."""
        return YateOtaExporter(spec.name)


ADAPTER = YateOtaAdapter()


# --- connecting ---------------------------------------------------------------------------------


def _secret(spec: BackendSpec, ctx: ConnectContext) -> SecretValue:
    ref = spec.auth.get("secret")
    if not isinstance(ref, SecretRef):
        raise SecretError(
            f"backend {spec.name}: auth.secret must be a secret reference ({{env: NAME}} or {{file: PATH}})"
        )
    return resolve_secret(ref, base_dir=ctx.root, environ=ctx.environ, redactor=ctx.redactor)


# --- replies ------------------------------------------------------------------------------------


def _envelope(response: httpx.Response) -> Mapping[str, Any]:
    """The reply object when ``code`` is 0; ``PermanentBackendError`` with ``message`` otherwise."""
    label = response.headers.get("content-type", "no content type")
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise MalformedReplyError(f"reply is not JSON ({label})", status=response.status_code) from exc
    if not isinstance(body, dict) or "code" not in body:
        raise MalformedReplyError(f"reply is not a YateOTA envelope ({label})", status=response.status_code)
    code = body["code"]
    if not _is_zero(code):
        message = str(body.get("message") or f"error code {code}")
        raise PermanentBackendError(message, status=response.status_code, code=str(code))
    return body


def _is_zero(code: object) -> bool:
    """Success is a code that reads as 0 (``0``, ``"0"``); any other value is a refusal."""
    try:
        return int(code) == 0  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False


def _payload(body: Mapping[str, Any]) -> Mapping[str, Any]:
    return {key: value for key, value in body.items() if key != "code"}


def _records(body: Mapping[str, Any], *keys: str) -> list[Mapping[str, Any]]:
    """The list under the first of ``keys`` present (a single object counts as a list of one)."""
    for key in keys:
        value = body.get(key)
        if value is None:
            continue
        items = [value] if isinstance(value, dict) else value
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise MalformedReplyError(f"reply field {key} is not a list of objects")
        return items
    return []


def _campaign(record: Mapping[str, Any]) -> ObservedSimCampaign:
    return ObservedSimCampaign(
        campaign_id=int(record["campaign_id"]),
        name=_text(record.get("campaign")),
        state=_text(record.get("state")),
        type=_text(record.get("type")),
        counts={key: int(record[key]) for key in COUNT_KEYS if record.get(key) is not None},
    )


def _participant(record: Mapping[str, Any], campaign_id: int) -> ObservedParticipant:
    return ObservedParticipant(
        participant_id=int(record["participant_id"]),
        campaign_id=int(record.get("campaign_id") or campaign_id),
        state=_text(record.get("state")),
        msisdn=_text(record.get("msisdn")),
        imsi=_text(record.get("imsi")),
        attempts=int(record.get("attempts") or 0),
        error=_text(record.get("error")),
    )


def _trace_event(record: Mapping[str, Any]) -> TraceEvent:
    return TraceEvent(
        time=_text(record.get("time")), event=_text(record.get("event")), state=_text(record.get("state"))
    )


def _text(value: object) -> str:
    return "" if value is None else str(value)
