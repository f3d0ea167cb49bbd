"""The IoT campaign manager adapter: what the planner may assume (traits), how one pass observes the
backend with the fewest requests, and how each planned action becomes API calls.

Backend spec: ``auth: {username, password: {env|file}}``; options ``tokenPath`` (default
``/api/tokens``), ``pageSize`` (default 100, the sandbox's cap), ``uploadMode`` (``auto``: multipart
up to 1 GiB, streaming above; or ``multipart`` / ``streaming``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler.actions import Action, Verb
from reconciler.backends.http import BackendHttp
from reconciler.backends.iot_campaigns.auth import DEFAULT_TOKEN_PATH, IotTokenAuth, token_url
from reconciler.backends.iot_campaigns.client import IotCampaignsClient
from reconciler.backends.iot_campaigns.export import IotCampaignsExporter
from reconciler.backends.iot_campaigns.replies import CampaignSummary, DistributionListInfo
from reconciler.backends.protocol import ConnectContext
from reconciler.backends.sessions import shared_client
from reconciler.errors import BackendError, ConflictError, NotFoundError, PermanentBackendError
from reconciler.backends.iot_campaigns import TYPE
from reconciler.model import BackendSpec, CallbackKind, DesiredState, IotCampaignSpec
from reconciler.observed import BackendObservation, ObservedIotCampaign
from reconciler.secrets import SecretRef, resolve_secret
from reconciler.traits import BackendTraits, Lifecycle

MULTIPART_LIMIT = 1 << 30
UPLOAD_MODES = ("auto", "multipart", "streaming")
GATEWAY_BATCH = 1000

#: per schedule window, the gateway states in which a gateway has not yet begun the step it gates (it still
#: needs the window); states after it (or in progress in it), failures and unknown states are not waiting
_BEFORE_DOWNLOAD = frozenset({
    "INSTANTIATED", "INVENTORY_UP_TO_DATE", "WAITING_FOR_DOWNLOAD_APPROVAL", "SCHEDULED_DOWNLOAD",
    "WAITING_FOR_DOWNLOAD",
})
_BEFORE_EXECUTION = _BEFORE_DOWNLOAD | {"DOWNLOADING", "DOWNLOAD_COMPLETE", "WAITING_FOR_EXECUTION_APPROVAL"}
_BEFORE_ACTIVATION = _BEFORE_EXECUTION | {"EXECUTING", "EXECUTION_COMPLETE", "WAITING_FOR_ACTIVATION_APPROVAL"}

LIFECYCLE = Lifecycle(
    created="CREATED", started="STARTED", stopped="STOPPED",
    member_succeeded=frozenset({"ACTIVATION_COMPLETE"}),
    member_failed=frozenset({"DOWNLOAD_FAILED", "EXECUTION_FAILED", "ACTIVATION_FAILED"}),
    member_waiting={"download": _BEFORE_DOWNLOAD, "execution": _BEFORE_EXECUTION, "activation": _BEFORE_ACTIVATION},
)

TRAITS = BackendTraits(
    type=TYPE,
    lifecycle=LIFECYCLE,
    verbs=frozenset({
        Verb.UPLOAD_PACKAGE, Verb.DELETE_PACKAGE, Verb.CREATE_CAMPAIGN, Verb.UPDATE_CAMPAIGN,
        Verb.DELETE_CAMPAIGN, Verb.APPROVE_CAMPAIGN, Verb.START_CAMPAIGN, Verb.STOP_CAMPAIGN,
        Verb.ADD_GATEWAYS, Verb.REMOVE_GATEWAYS, Verb.SET_GATEWAY_PACKAGES, Verb.SCHEDULE_GATEWAY,
        Verb.SET_CALLBACK, Verb.SET_DISTRIBUTION_LIST, Verb.CLOSE_GATEWAY, Verb.ADOPT_CAMPAIGN,
    }),
    replace_fields=frozenset({"packages", "settings", "description"}),
    editable_states=frozenset({"CREATED", "APPROVAL_NEEDED", "APPROVED", "STOPPED"}),
    approval_states=frozenset({"APPROVAL_NEEDED"}),
    write_only=frozenset({"schedules", "callbacks", "settings"}),
)


def connect(spec: BackendSpec, ctx: ConnectContext, **http_options: Any) -> IotCampaignsClient:
    """A client for ``spec`` with its password resolved (``http_options`` go to ``BackendHttp``, e.g. a
    test transport)."""
    username = spec.auth.get("username")
    password = spec.auth.get("password")
    if not isinstance(username, str) or not username:
        raise PermanentBackendError("auth.username is required", backend=spec.name, operation="connect")
    if not isinstance(password, SecretRef):
        raise PermanentBackendError("auth.password must be a secret reference ({env: ...} or {file: ...})",
                                    backend=spec.name, operation="connect")
    secret = ctx.redactor.register(resolve_secret(password, base_dir=ctx.root, environ=ctx.environ,
                                                  redactor=ctx.redactor), user=username)  # and its Basic form
    token_path = str(spec.options.get("tokenPath", DEFAULT_TOKEN_PATH))
    auth = IotTokenAuth(username=username, password=secret, login_url=token_url(spec.url, token_path),
                        redactor=ctx.redactor, backend=spec.name)
    http = BackendHttp.for_backend(spec, ctx, auth=auth, **http_options)
    return IotCampaignsClient(http=http, auth=auth, page_size=_page_size(spec))


def _page_size(spec: BackendSpec) -> int:
    value = spec.options.get("pageSize", 100)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise PermanentBackendError("option pageSize must be a positive whole number", backend=spec.name,
                                    operation="connect")
    return value


class IotCampaignsReader:
    """Observes programs, every campaign, and the details of the declared ones."""

    def __init__(self, *, backend: str, client: IotCampaignsClient) -> None:
        self.backend = backend
        self.client = client

    def __repr__(self) -> str:
        return f"IotCampaignsReader({self.client!r})"

    async def aclose(self) -> None:
        await self.client.aclose()

    async def observe(self, desired: DesiredState) -> BackendObservation:
        """Requests: login if needed, every page of programs and of campaigns; then per declared
        campaign that exists: Get Campaign (only if the list lacked packages), every page of its
        gateways, its distribution list (if declared), and the packages of each gateway that an
        assignment gives an override."""
        declared = {c.name: c for c in desired.campaigns_of(self.backend) if isinstance(c, IotCampaignSpec)}
        try:
            await self.client.ensure_token()
            packages, summaries = await asyncio.gather(self.client.all_packages(), self.client.all_campaigns())
            campaigns: list[ObservedIotCampaign | None] = [s.campaign for s in summaries]
            detailed = [i for i, s in enumerate(summaries) if s.campaign.name in declared]  # a task only for these
            found = await asyncio.gather(*(
                self._detail(summaries[i], declared[summaries[i].campaign.name], desired) for i in detailed))
            for index, campaign in zip(detailed, found, strict=True):
                campaigns[index] = campaign
        except BackendError as exc:
            return BackendObservation(backend=self.backend, readable=False, error=str(exc))
        return BackendObservation(backend=self.backend, iot_packages=tuple(packages),
                                  iot_campaigns=tuple(c for c in campaigns if c is not None))

    async def _detail(self, summary: CampaignSummary, spec: IotCampaignSpec,
                      desired: DesiredState) -> ObservedIotCampaign | None:
        """The declared campaign in full; ``None`` if it vanished while being read."""
        campaign_id = summary.campaign.id
        try:
            campaign, gateways, listed = await asyncio.gather(
                _done(summary.campaign) if summary.packages_known else self.client.get_campaign(campaign_id),
                self.client.all_gateways(campaign_id),
                self.client.get_distribution_list(campaign_id) if spec.distribution_list else _done(None),
            )
            overridden = {g for a in desired.assignments_of(spec.name) if a.packages for g in a.gateways}
            readable = [g for g in gateways if g.gateway_id in overridden]
            overrides = await asyncio.gather(*(
                self.client.get_gateway_packages(campaign_id, g.gateway_id) for g in readable))
        except NotFoundError:
            return None
        by_gateway = dict(zip((g.gateway_id for g in readable), overrides, strict=True))
        gateways = [replace(g, packages=by_gateway.get(g.gateway_id)) for g in gateways]
        return replace(campaign, gateways=tuple(gateways), **_distribution_fields(listed))


def _distribution_fields(listed: DistributionListInfo | None) -> dict[str, Any]:
    if listed is None:
        return {}
    return {"distribution_list_id": listed.list_id, "distribution_list_interval": listed.interval_seconds}


async def _done(value: Any) -> Any:
    return value


class IotCampaignsWriter:
    """Performs one planned action with the calls it needs."""

    def __init__(self, *, backend: str, client: IotCampaignsClient, upload_mode: str = "auto") -> None:
        self.backend = backend
        self.client = client
        self._upload_mode = upload_mode
        self._handlers: Mapping[Verb, Callable[[Mapping[str, Any]], Awaitable[Mapping[str, Any]]]] = {
            Verb.UPLOAD_PACKAGE: self._upload, Verb.DELETE_PACKAGE: self._delete_package,
            Verb.CREATE_CAMPAIGN: self._create, Verb.UPDATE_CAMPAIGN: self._update,
            Verb.DELETE_CAMPAIGN: self._delete_campaign,
            Verb.APPROVE_CAMPAIGN: self._transition(client.approve_campaign, {"APPROVED", "STARTED"}),
            Verb.START_CAMPAIGN: self._transition(client.start_campaign, {"STARTED"}),
            Verb.STOP_CAMPAIGN: self._transition(client.stop_campaign, {"STOPPED"}),
            Verb.ADD_GATEWAYS: self._batched(client.add_gateways),
            Verb.REMOVE_GATEWAYS: self._batched(client.remove_gateways),
            Verb.SET_GATEWAY_PACKAGES: self._gateway_packages, Verb.SCHEDULE_GATEWAY: self._schedule,
            Verb.SET_CALLBACK: self._callback, Verb.SET_DISTRIBUTION_LIST: self._distribution_list,
            Verb.CLOSE_GATEWAY: self._close,
        }

    def __repr__(self) -> str:
        return f"IotCampaignsWriter({self.client!r})"

    async def aclose(self) -> None:
        await self.client.aclose()

    async def apply(self, action: Action) -> Mapping[str, Any]:
        handler = self._handlers.get(action.verb)
        if handler is None:
            raise PermanentBackendError(f"the IoT campaign manager does not support {action.verb.value}",
                                        backend=self.backend, operation=action.verb.value)
        await self.client.ensure_token()
        return await handler(action.params)

    async def _upload(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        """Multipart up to 1 GiB (or always / never, by ``uploadMode``), streaming above."""
        path = Path(params["file"])
        try:
            streaming = self._upload_mode == "streaming" or (
                self._upload_mode == "auto" and path.stat().st_size > MULTIPART_LIMIT)
            upload = self.client.upload_package_streaming if streaming else self.client.upload_package_multipart
            package_id = await upload(path, name=params["name"], description=params.get("description") or "")
        except OSError as exc:
            raise PermanentBackendError(f"cannot read package file {path}: {exc.strerror or exc}",
                                        backend=self.backend, operation=Verb.UPLOAD_PACKAGE.value) from exc
        return {"package_id": package_id}

    async def _delete_package(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        return await _gone_is_done(self.client.delete_package(params["package_id"]))

    async def _create(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        campaign_id = await self.client.create_campaign(
            name=params["name"], description=params.get("description") or "",
            packages=params.get("packages") or (), settings=params.get("settings") or {})
        return {"campaign_id": campaign_id}

    async def _update(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        await self.client.edit_campaign(
            params["campaign_id"], name=params["name"], description=params.get("description") or "",
            packages=params.get("packages") or (), settings=params.get("settings") or {})
        return {}

    async def _delete_campaign(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        return await _gone_is_done(self.client.delete_campaign(params["campaign_id"]))

    def _transition(self, call: Callable[[str], Awaitable[None]],
                    reached: set[str]) -> Callable[[Mapping[str, Any]], Awaitable[Mapping[str, Any]]]:
        """Start / stop / approve. A 409 is success when the campaign already is where the call leads
        (e.g. a start retried after a lost reply)."""

        async def transition(params: Mapping[str, Any]) -> Mapping[str, Any]:
            campaign_id = params["campaign_id"]
            try:
                await call(campaign_id)
            except ConflictError:
                status = (await self.client.get_campaign(campaign_id)).status
                if status not in reached:
                    raise
                return {"status": status, "already": True}
            return {}

        return transition

    def _batched(self, call: Callable[[str, Sequence[str]], Awaitable[None]]
                 ) -> Callable[[Mapping[str, Any]], Awaitable[Mapping[str, Any]]]:
        async def batched(params: Mapping[str, Any]) -> Mapping[str, Any]:
            ids = list(params["gateway_ids"])
            batches = [ids[i:i + GATEWAY_BATCH] for i in range(0, len(ids), GATEWAY_BATCH)]
            for batch in batches:
                await call(params["campaign_id"], batch)
            return {"batches": len(batches)}

        return batched

    async def _gateway_packages(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        await self.client.assign_gateway_packages(params["campaign_id"], params["gateway_id"],
                                                  list(params["packages"]))
        return {}

    async def _schedule(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        schedules = {"download": self.client.schedule_download, "activation": self.client.schedule_activation,
                     "execution": self.client.schedule_execution}
        window = params["window"]
        if window not in schedules:
            raise PermanentBackendError(f"unknown schedule window {window!r}", backend=self.backend,
                                        operation=Verb.SCHEDULE_GATEWAY.value)
        await schedules[window](params["campaign_id"], params["gateway_id"], int(params["begin_ms"]),
                                int(params["end_ms"]))
        return {}

    async def _callback(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        campaign_id, destination = params["campaign_id"], params["destination"]
        kind = CallbackKind(params["callback"])
        client = self.client
        match kind:
            case CallbackKind.COMPLETED:
                await client.register_completed_callback(campaign_id, destination)
            case CallbackKind.WAKE_UP:
                await client.register_wake_up_callback(campaign_id, destination)
            case CallbackKind.STATE_CHANGE:
                await client.register_state_change_callback(campaign_id, destination,
                                                            params.get("tracked_states") or ())
            case CallbackKind.EXECUTION_PROGRESS:
                await client.register_execution_progress_callback(campaign_id, destination)
            case CallbackKind.DOWNLOAD_PROGRESS:
                await client.register_download_progress_callback(campaign_id, destination)
        return {}

    async def _distribution_list(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        interval = params.get("interval")
        await self.client.set_distribution_list(params["campaign_id"], params["distribution_list_id"],
                                                None if interval is None else int(interval))
        return {}

    async def _close(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        await self.client.close_gateway(params["campaign_id"], params["gateway_id"])
        return {}


async def _gone_is_done(deletion: Awaitable[None]) -> Mapping[str, Any]:
    """A delete whose target is already gone (e.g. retried after a lost reply) has done its job."""
    try:
        await deletion
    except NotFoundError:
        return {"already_absent": True}
    return {}


class IotCampaignsAdapter:
    """The module's entry point for the backend registry."""

    traits = TRAITS

    def reader(self, spec: BackendSpec, ctx: ConnectContext) -> IotCampaignsReader:
        return IotCampaignsReader(backend=spec.name, client=shared_client(connect, spec, ctx))

    def writer(self, spec: BackendSpec, ctx: ConnectContext) -> IotCampaignsWriter:
        mode = spec.options.get("uploadMode", "auto")
        if mode not in UPLOAD_MODES:
            raise PermanentBackendError(f"option uploadMode must be one of {', '.join(UPLOAD_MODES)}",
                                        backend=spec.name, operation="connect")
        return IotCampaignsWriter(backend=spec.name, client=shared_client(connect, spec, ctx), upload_mode=str(mode))

    def exporter(self, spec: BackendSpec, ctx: ConnectContext) -> IotCampaignsExporter:
        """What ``reconcile import`` writes for this backend (``export``)."""
        return IotCampaignsExporter(backend=spec.name, client=shared_client(connect, spec, ctx))


ADAPTER = IotCampaignsAdapter()
