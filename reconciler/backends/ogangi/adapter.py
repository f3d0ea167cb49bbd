"""The Ogangi Mobile Engagement adapter: a client with one method per REST method of the seed, and the
Reader / Writer the engine expects.

Ogangi cannot be asked about a sent message by our own key, so there is nothing to observe (the
Reader spends no request) and nothing for a plain Writer to do: SMS sends go through the send ledger,
which commits a row before calling ``writer.client.send(...)`` and records an
``UnknownOutcomeError`` (a reply lost after the request left) as ``unknown``, never as a failure.
Every send is therefore non-idempotent; only getMOMessages is retried after the request may have
arrived.

``auth``: ``instanceId``, ``publicKey`` (plain), ``privateKey`` (a secret reference).
``options``: ``base64Padding`` (default true), ``carrier`` (default none: ``null``), ``method``
(``sendSMS`` default, or ``sendMT``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, TypeVar, assert_never
from urllib.parse import quote

import httpx

from reconciler.actions import Action, Verb
from reconciler.backends.http import BackendHttp
from reconciler.backends.ogangi import TYPE
from reconciler.backends.ogangi.signing import OgangiSigner
from reconciler.backends.ogangi.wire import (
    FiredMessage,
    MOMessage,
    OgangiMessage,
    parse_fired,
    parse_message,
    parse_mo_list,
    parse_optional_message,
    parse_pin,
)
from reconciler.backends.protocol import ConnectContext
from reconciler.backends.sessions import shared_client
from reconciler.errors import PermanentBackendError
from reconciler.model import BackendSpec, DesiredState
from reconciler.observed import BackendObservation
from reconciler.secrets import SecretRef, resolve_secret
from reconciler.traits import BackendTraits

if TYPE_CHECKING:  # the sender imports this module
    from reconciler.backends.ogangi.sms import OgangiSmsSender

NULL_CARRIER = "null"
T = TypeVar("T")


class SendMethod(StrEnum):
    """Which REST method ``OgangiClient.send`` uses."""

    SEND_SMS = "sendSMS"
    SEND_MT = "sendMT"


@dataclass(frozen=True)
class OgangiOptions:
    """The adapter settings for what the docs leave open (``BackendSpec.options``)."""

    base64_padding: bool = True
    carrier: str | None = None
    method: SendMethod = SendMethod.SEND_SMS

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> OgangiOptions:
        options = spec.options
        padding = options.get("base64Padding", True)
        carrier = options.get("carrier")
        method = options.get("method", SendMethod.SEND_SMS.value)
        if not isinstance(padding, bool):
            raise _config_error(spec, "option base64Padding must be true or false")
        if carrier is not None and not isinstance(carrier, str):
            raise _config_error(spec, "option carrier must be a string")
        if method not in {m.value for m in SendMethod}:
            raise _config_error(spec, "option method must be sendSMS or sendMT")
        return cls(base64_padding=padding, carrier=carrier, method=SendMethod(str(method)))


class OgangiClient:
    """One async method per seed method; every call goes through ``BackendHttp.call``."""

    def __init__(self, http: BackendHttp, *, signer: OgangiSigner, instance_id: str, options: OgangiOptions) -> None:
        self.http = http
        self._signer = signer
        self._instance = quote(instance_id, safe="")
        self._options = options

    async def aclose(self) -> None:
        await self.http.aclose()

    async def send(
        self, number: str, text: str, *, sender: str, carrier: str | None = None
    ) -> OgangiMessage | None:
        """Send with the configured ``method`` (the SMS engine's entry point).

        A request that cannot be built (a value that cannot be encoded, a URL httpx refuses, e.g. too
        long) raises ``RequestNotBuiltError``: nothing was sent, so the message failed for good, with
        certainty; it is never an unknown outcome."""
        method = self._options.method
        parse: Callable[[httpx.Response], OgangiMessage | None]
        try:
            match method:
                case SendMethod.SEND_SMS:
                    api, parse = "tools/sendSMS", parse_message
                    segments = self._send_sms_segments(number, text, sender, carrier)
                case SendMethod.SEND_MT:
                    api, parse = "sendMT", parse_optional_message
                    segments = self._send_mt_segments(number, text, sender, carrier, None)
                case unreachable:
                    assert_never(unreachable)
        except ValueError as exc:  # UnicodeEncodeError included: a value that cannot go into a URL
            raise RequestNotBuiltError(exc, backend=self.http.backend, operation=method.value) from exc
        try:
            return await self._get(api, segments, parse, idempotent=False)
        except httpx.InvalidURL as exc:  # raised while httpx builds the request, before any byte is sent
            raise RequestNotBuiltError(exc, backend=self.http.backend, operation=method.value) from exc

    def _send_sms_segments(self, number: str, text: str, sender: str, carrier: str | None) -> list[str]:
        return [self._carrier(carrier), _plain(sender), self._base64(number), self._base64(text)]

    def _send_mt_segments(self, number: str, text: str, sender: str, carrier: str | None,
                          flags: str | None) -> list[str]:
        segments = [_plain(sender), self._carrier(carrier), _plain(number), self._base64(text)]
        if flags is not None:
            segments.append(_plain(flags))
        return segments

    async def send_sms(
        self, number: str, text: str, *, sender: str, carrier: str | None = None
    ) -> OgangiMessage:
        """``tools/sendSMS/{instanceId}/{carrier}/{from}/{mobileNumber}/{text}``: number and text Base64."""
        segments = self._send_sms_segments(number, text, sender, carrier)
        return await self._get("tools/sendSMS", segments, parse_message, idempotent=False)

    async def send_mt(
        self,
        number: str,
        text: str,
        *,
        sender: str,
        carrier: str | None = None,
        flags: str | None = None,
    ) -> OgangiMessage | None:
        """``sendMT/{instanceId}/{from}/{carrier}/{mobileNumber}/{text}[/{flags}]``: only text is
        Base64. The docs show an empty result; a message is returned if the platform sends one."""
        segments = self._send_mt_segments(number, text, sender, carrier, flags)
        return await self._get("sendMT", segments, parse_optional_message, idempotent=False)

    async def send_pin(
        self, number: str, text: str, *, sender: str, length: int, carrier: str | None = None
    ) -> str:
        """``tools/sendSMSPinMobileNumberConfirm/.../{length}``: sends a PIN and returns it."""
        segments = [self._carrier(carrier), _plain(sender), _plain(number), self._base64(text), str(length)]
        return await self._get("tools/sendSMSPinMobileNumberConfirm", segments, parse_pin, idempotent=False)

    async def fire_message(self, number: str, text: str) -> FiredMessage:
        """``fireMessage/{instanceId}/{mobileNumber}/{text}``: inject an MO (text Base64)."""
        segments = [_plain(number), self._base64(text)]
        return await self._get("fireMessage", segments, parse_fired, idempotent=False)

    async def fire_message_post(self, descriptor: Mapping[str, Any]) -> FiredMessage:
        """``POST fireMessage/{instanceId}`` with the JSON fire-message descriptor
        (ours: ``{"mobileNumber", "text", "carrier"?}``, text in clear)."""
        return await self.http.call(
            "POST",
            self._signer.sign(f"rest/api/fireMessage/{self._instance}"),
            operation="fireMessage",
            idempotent=False,
            parse=parse_fired,
            json=dict(descriptor),
        )

    async def get_mo_messages(
        self,
        page: int,
        results_per_page: int,
        *,
        from_: str | Sequence[str] | None = None,
        to: str | Sequence[str] | None = None,
        carrier: str | Sequence[str] | None = None,
        keyword: str | Sequence[str] | None = None,
        order: Literal["asc", "desc"] | None = None,
    ) -> tuple[int, list[MOMessage]]:
        """``tools/getMOMessages/{instanceId}/{page}/{resultsPerPage}/{parameters}``: one page of
        incoming messages and the total count. ``keyword`` is a regular expression."""
        search = search_string(from_=from_, to=to, carrier=carrier, keyword=keyword, order=order)
        segments = [str(page), str(results_per_page), search]
        return await self._get("tools/getMOMessages", segments, parse_mo_list, idempotent=True)

    async def _get(
        self, method: str, segments: Sequence[str], parse: Callable[[httpx.Response], T], *, idempotent: bool
    ) -> T:
        path = self._signer.sign("/".join([f"rest/api/{method}", self._instance, *segments]))
        return await self.http.call(
            "GET", path, operation=method.removeprefix("tools/"), idempotent=idempotent, parse=parse
        )

    def _carrier(self, carrier: str | None) -> str:
        return _plain(carrier or self._options.carrier or NULL_CARRIER)

    def _base64(self, value: str) -> str:
        encoded = base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii")
        return encoded if self._options.base64_padding else encoded.rstrip("=")


def search_string(
    *,
    from_: str | Sequence[str] | None,
    to: str | Sequence[str] | None,
    carrier: str | Sequence[str] | None,
    keyword: str | Sequence[str] | None,
    order: str | None,
) -> str:
    """The inline search string: ``name=v1,v2`` pairs joined by ``&``, each value percent-encoded.
    With no filter at all it is ``order=asc`` **[ours]**: the path segment cannot be empty."""
    filters = {"from": from_, "to": to, "carrier": carrier, "keyword": keyword, "order": order}
    pairs = [
        f"{name}={','.join(_plain(v) for v in ([value] if isinstance(value, str) else value))}"
        for name, value in filters.items()
        if value
    ]
    return "&".join(pairs) or "order=asc"


def _plain(value: str) -> str:
    """A path segment as Ogangi signs it: every reserved character percent-encoded."""
    return quote(value, safe="")


class RequestNotBuiltError(PermanentBackendError):
    """A request that could not even be built, so nothing was sent: a certain failure, never an unknown."""

    def __init__(self, cause: Exception, *, backend: str, operation: str) -> None:
        detail = str(cause).splitlines()[0][:120] if str(cause) else ""
        super().__init__(f"not sent: the request cannot be built ({cause.__class__.__name__}"
                         f"{': ' + detail if detail else ''})", backend=backend, operation=operation)


def _config_error(spec: BackendSpec, message: str) -> PermanentBackendError:
    return PermanentBackendError(message, backend=spec.name, operation="connect")


def _plain_auth(spec: BackendSpec, key: str) -> str:
    value = spec.auth.get(key)
    if isinstance(value, SecretRef) or value is None or str(value) == "":
        raise _config_error(spec, f"auth.{key} must be a plain, non-empty value")
    return str(value)


def connect_client(
    spec: BackendSpec, ctx: ConnectContext, *, transport: httpx.AsyncBaseTransport | None = None,
    **http_options: Any,
) -> OgangiClient:
    """Resolve the private key (registered with the run's redactor) and build the signed client
    (``transport`` and ``http_options``, e.g. ``sleep``, are for tests)."""
    private_ref = spec.auth.get("privateKey")
    if not isinstance(private_ref, SecretRef):
        raise _config_error(spec, "auth.privateKey must be a secret reference ({env: ...} or {file: ...})")
    private_key = resolve_secret(private_ref, base_dir=ctx.root, environ=ctx.environ, redactor=ctx.redactor)
    signer = OgangiSigner(public_key=_plain_auth(spec, "publicKey"), private_key=private_key)
    http = BackendHttp.for_backend(spec, ctx, headers={"Accept": "application/xml"}, transport=transport,
                                   **http_options)
    instance_id = _plain_auth(spec, "instanceId")
    return OgangiClient(http, signer=signer, instance_id=instance_id, options=OgangiOptions.from_spec(spec))


class OgangiReader:
    """Nothing about sent messages can be read back, so ``observe`` spends no request. The SMS engine
    reads incoming messages through ``client``."""

    def __init__(self, client: OgangiClient, *, backend: str) -> None:
        self.client = client
        self._backend = backend

    async def observe(self, desired: DesiredState) -> BackendObservation:
        return BackendObservation(backend=self._backend, readable=True)

    async def aclose(self) -> None:
        await self.client.aclose()


class OgangiWriter:
    """Refuses every verb: SMS sends go through the send ledger, which uses ``client`` directly."""

    def __init__(self, client: OgangiClient, *, backend: str) -> None:
        self.client = client
        self._backend = backend

    async def apply(self, action: Action) -> Mapping[str, Any]:
        raise PermanentBackendError(
            f"{action.verb.value} is not a plain write on Ogangi; SMS sends go through the send ledger",
            backend=self._backend,
            operation=action.verb.value,
        )

    async def aclose(self) -> None:
        await self.client.aclose()


TRAITS = BackendTraits(
    type=TYPE,
    verbs=frozenset({Verb.SEND_SMS}),
)


@dataclass(frozen=True)
class OgangiAdapter:
    """The registry's entry point for ``type: ogangi``."""

    traits: BackendTraits = field(default=TRAITS)

    def reader(self, spec: BackendSpec, ctx: ConnectContext) -> OgangiReader:
        return OgangiReader(shared_client(connect_client, spec, ctx), backend=spec.name)

    def writer(self, spec: BackendSpec, ctx: ConnectContext) -> OgangiWriter:
        return OgangiWriter(shared_client(connect_client, spec, ctx), backend=spec.name)

    def sms_sender(self, spec: BackendSpec, ctx: ConnectContext) -> OgangiSmsSender:
        from reconciler.backends.ogangi.sms import OgangiSmsSender

        return OgangiSmsSender(shared_client(connect_client, spec, ctx),
                               in_flight=int(str(spec.options.get("inFlight", 1))))


ADAPTER = OgangiAdapter()
