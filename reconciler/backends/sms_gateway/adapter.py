"""Adapter for the GSM/LTE SMS gateway (backends.md section 4, seed 003): JSON over HTTPS with Digest
(default) or Basic auth, results in the body's ``error_code``.

The Reader observes the SIM ports with one request; the Writer only stops tasks, because sends go
through the send ledger, which drives ``SmsGatewayClient`` (``client``) directly. Pushes
the gateway POSTs to the daemon are read with ``parse_push`` (``replies``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.actions import Action, Verb
from reconciler.backends.protocol import ConnectContext
from reconciler.backends.sessions import shared_client
from reconciler.backends.sms_gateway import TYPE
from reconciler.backends.sms_gateway.client import (
    AuthScheme,
    PortAction,
    SmsGatewayClient,
    in_batches,
)
from reconciler.backends.sms_gateway.replies import (
    DeliverStatus,
    GatewayPush,
    GatewayPushError,
    IncomingSms,
    OutgoingSms,
    PortInfo,
    PushKind,
    SendReceipt,
    SmsResult,
    SmsStatus,
    parse_push,
)
from reconciler.errors import BackendError, NotFoundError, PermanentBackendError
from reconciler.model import BackendSpec, DesiredState
from reconciler.observed import BackendObservation, ObservedSmsPort
from reconciler.traits import BackendTraits

if TYPE_CHECKING:  # the sender imports this package's client
    from reconciler.backends.sms_gateway.sms import SmsGatewaySmsSender

__all__ = [
    "ADAPTER", "TRAITS", "AuthScheme", "DeliverStatus", "GatewayPush", "GatewayPushError", "IncomingSms",
    "OutgoingSms", "PortAction", "PortInfo", "PushKind", "SendReceipt", "SmsGatewayAdapter",
    "SmsGatewayClient", "SmsGatewayReader", "SmsGatewayWriter", "SmsResult", "SmsStatus", "in_batches",
    "parse_push",
]

TRAITS = BackendTraits(
    type=TYPE,
    verbs=frozenset({Verb.SEND_SMS, Verb.STOP_SMS_TASK}),
    sms_queryable=True,
)


class SmsGatewayReader:
    """Observes the gateway's ports with one ``get_port_info``."""

    def __init__(self, client: SmsGatewayClient, *, backend: str) -> None:
        self._client = client
        self._backend = backend

    async def observe(self, desired: DesiredState) -> BackendObservation:
        try:
            infos = await self._client.get_port_info()
        except BackendError as exc:
            return BackendObservation(backend=self._backend, readable=False, error=str(exc))
        ports = tuple(ObservedSmsPort(port=i.port, registered=i.registered, state=i.reg) for i in infos)
        return BackendObservation(backend=self._backend, sms_ports=ports)

    async def aclose(self) -> None:
        await self._client.aclose()


class SmsGatewayWriter:
    """Performs ``stop-sms-task``; any other verb is refused (sends go through the send ledger)."""

    def __init__(self, client: SmsGatewayClient, *, backend: str) -> None:
        self._client = client
        self._backend = backend

    async def apply(self, action: Action) -> Mapping[str, Any]:
        if action.verb is not Verb.STOP_SMS_TASK:
            raise PermanentBackendError(
                f"the sms-gateway writer does not perform {action.verb.value} (sends go through the send ledger)",
                backend=self._backend, operation=action.verb.value,
            )
        try:
            task_id = int(action.params["task_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PermanentBackendError("stop-sms-task needs an integer task_id", backend=self._backend,
                                        operation=action.verb.value) from exc
        try:
            await self._client.stop_sms(task_id)
        except NotFoundError:  # finished (or forgotten by the gateway): nothing left to stop
            return {"task_id": task_id, "finished": True}
        return {"task_id": task_id}

    async def aclose(self) -> None:
        await self._client.aclose()


@dataclass(frozen=True)
class SmsGatewayAdapter:
    """The registry entry: traits plus Reader and Writer factories."""

    traits: BackendTraits = field(default=TRAITS)

    def reader(self, spec: BackendSpec, ctx: ConnectContext) -> SmsGatewayReader:
        return SmsGatewayReader(shared_client(SmsGatewayClient.connect, spec, ctx), backend=spec.name)

    def writer(self, spec: BackendSpec, ctx: ConnectContext) -> SmsGatewayWriter:
        return SmsGatewayWriter(shared_client(SmsGatewayClient.connect, spec, ctx), backend=spec.name)

    def sms_sender(self, spec: BackendSpec, ctx: ConnectContext) -> SmsGatewaySmsSender:
        from reconciler.backends.sms_gateway.sms import SmsGatewaySmsSender

        return SmsGatewaySmsSender(shared_client(SmsGatewayClient.connect, spec, ctx),
                                   in_flight=int(str(spec.options.get("inFlight", 4))))


ADAPTER = SmsGatewayAdapter()
