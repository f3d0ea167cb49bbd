"""The low-level client of the GSM/LTE SMS gateway (seed 003): one method per endpoint, the body's
``error_code`` translated into the exception tree, the API's batch limits (128 numbers per send, 32
filter values per query) enforced or chunked.

The send ledger uses this client directly: sending is never a plain Writer call, because every
message is recorded before it leaves. ``user_id`` is our idempotency key: after a crash,
``query_sms_result(user_ids=...)`` tells whether a message was queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from itertools import islice, product
from types import MappingProxyType
from typing import Any, TypeVar

import httpx

from reconciler.backends.http import BackendHttp, fetch_in_order
from reconciler.backends.protocol import ConnectContext
from reconciler.backends.sms_gateway.replies import (
    DeliverStatus,
    IncomingSms,
    ItemFormatError,
    OutgoingSms,
    PortInfo,
    SendReceipt,
    SmsResult,
    format_time,
    parse_deliver_status,
    parse_incoming_sms,
    parse_items,
    parse_port_info,
    parse_sms_result,
)
from reconciler.errors import (
    BackendError,
    MalformedReplyError,
    NotFoundError,
    PermanentBackendError,
    TemporaryBackendError,
)
from reconciler.model import BackendSpec
from reconciler.secrets import SecretRef, resolve_secret

T = TypeVar("T")
SEND_BATCH_LIMIT = 128
QUERY_FILTER_LIMIT = 32
PORT_INFO_TYPES = "type,imei,imsi,iccid,smsc,reg"

#: what each documented ``error_code`` means (from the seed and the gateway's HTTP API manual)
ERROR_CODES: Mapping[int, str] = MappingProxyType({
    400: "request format is not valid",
    404: "no such task",
    413: "too many numbers (send: 128, query: 32) or text longer than 1500 bytes",
    500: "other error",
    550: "no port available",
})


class AuthScheme(StrEnum):
    """``options.authScheme``."""

    DIGEST = "digest"
    BASIC = "basic"


class PortAction(StrEnum):
    """``set_port_info`` actions (ours: the seed names the endpoint only)."""

    SLOT = "slot"
    RESET = "reset"
    POWER = "power"
    IMEI = "imei"


def in_batches(items: Iterable[T], size: int = SEND_BATCH_LIMIT) -> Iterator[list[T]]:
    """Split any iterable (streamed, never loaded whole) into lists of at most ``size`` items."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _chunks(values: Sequence[T] | None) -> list[list[T] | None]:
    """Query filter values in chunks of 32; ``[None]`` (one unfiltered request) when not filtering."""
    return [None] if values is None else list(in_batches(values, QUERY_FILTER_LIMIT))


# --- replies ---------------------------------------------------------------------------------------


def _error_for(error_code: int, body: Mapping[str, Any]) -> BackendError:
    meaning = ERROR_CODES.get(error_code, "undocumented error code")
    reason = body.get("reason")
    message = f"error_code {error_code}: {meaning}" + (f" ({reason})" if isinstance(reason, str) else "")
    code = str(error_code)
    if error_code == 550:
        return TemporaryBackendError(message, not_processed=True, code=code)
    if error_code == 500:
        return TemporaryBackendError(message, code=code)
    if error_code == 404:
        return NotFoundError(message, code=code)
    return PermanentBackendError(message, code=code)


def _body(response: httpx.Response, success: int) -> Mapping[str, Any]:
    """The reply object when its ``error_code`` is ``success``; else the matching ``BackendError``."""
    try:
        body = response.json()
    except ValueError as exc:
        raise MalformedReplyError("reply is not JSON", status=response.status_code) from exc
    error_code = body.get("error_code") if isinstance(body, dict) else None
    if isinstance(error_code, bool) or not isinstance(error_code, int):
        raise MalformedReplyError("reply has no integer error_code", status=response.status_code)
    if error_code != success:
        raise _error_for(error_code, body)
    return body


def _parsed(response: httpx.Response, key: str, parse: Callable[[Mapping[str, Any]], T]) -> list[T]:
    body = _body(response, 200)
    try:
        return parse_items(body.get(key, []), parse, key)
    except ItemFormatError as exc:
        raise MalformedReplyError(f"unreadable reply: {exc}", status=response.status_code) from exc


def _receipt(response: httpx.Response) -> SendReceipt:
    body = _body(response, 202)
    try:
        return SendReceipt(task_id=int(body["task_id"]), sn=str(body.get("sn", "")),
                           sms_in_queue=int(body.get("sms_in_queue", 0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedReplyError(f"send reply without a task_id: {exc!r}") from exc


def _in_queue(response: httpx.Response) -> int:
    body = _body(response, 200)
    try:
        return int(body["in_queue"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedReplyError(f"queue reply without in_queue: {exc!r}") from exc


def _accepted(response: httpx.Response) -> None:
    _body(response, 200)


# --- client ----------------------------------------------------------------------------------------


class SmsGatewayClient:
    """One method per gateway endpoint, every call through ``BackendHttp.call``."""

    def __init__(self, http: BackendHttp) -> None:
        self._http = http

    @property
    def http(self) -> BackendHttp:
        """The backend's HTTP policy (shared by the roles of a pass: ``reconciler.backends.sessions``)."""
        return self._http

    @classmethod
    def connect(
        cls,
        spec: BackendSpec,
        ctx: ConnectContext,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> SmsGatewayClient:
        """Resolve ``auth.password`` and build the HTTP client (``transport``/``sleep`` for tests)."""
        username, password = spec.auth.get("username"), spec.auth.get("password")
        if not isinstance(username, str) or not isinstance(password, SecretRef):
            raise PermanentBackendError("auth needs username (a string) and password (a secret reference)",
                                        backend=spec.name, operation="connect")
        scheme_name = str(spec.options.get("authScheme", AuthScheme.DIGEST.value))
        if scheme_name not in {s.value for s in AuthScheme}:
            raise PermanentBackendError(f"options.authScheme must be digest or basic, not {scheme_name!r}",
                                        backend=spec.name, operation="connect")
        secret = ctx.redactor.register(resolve_secret(password, base_dir=ctx.root, environ=ctx.environ,
                                                      redactor=ctx.redactor), user=username)  # and its Basic form
        auth: httpx.Auth = (httpx.DigestAuth(username, secret.reveal()) if scheme_name == AuthScheme.DIGEST
                            else httpx.BasicAuth(username, secret.reveal()))
        return cls(BackendHttp.for_backend(spec, ctx, auth=auth, transport=transport, sleep=sleep))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, url: str, *, operation: str, idempotent: bool,
                    parse: Callable[[httpx.Response], T], **request: Any) -> T:
        return await self._http.call(method, url, operation=operation, idempotent=idempotent, parse=parse,
                                     **request)

    async def send_sms(
        self,
        messages: Sequence[OutgoingSms],
        *,
        text: str,
        ports: Sequence[int] | None = None,
        encoding: str | None = None,
        request_status_report: bool = False,
    ) -> SendReceipt:
        """Queue up to 128 messages in exactly one request (``in_batches`` splits larger sets).

        Not idempotent: a lost reply raises ``UnknownOutcomeError`` (resolve it by ``user_id``);
        ``error_code`` 550 (no port available) means nothing was queued and is retried.
        """
        if not 1 <= len(messages) <= SEND_BATCH_LIMIT:
            raise ValueError(f"send_sms takes 1 to {SEND_BATCH_LIMIT} messages, not {len(messages)}")
        body: dict[str, Any] = {"text": text, "param": [_param(message) for message in messages]}
        if ports is not None:
            body["port"] = list(ports)
        if encoding is not None:
            body["encoding"] = encoding
        if request_status_report:
            body["request_status_report"] = True
        return await self._call("POST", "/api/send_sms", operation="send-sms", idempotent=False,
                                parse=_receipt, json=body)

    async def query_sms_result(
        self,
        *,
        user_ids: Sequence[int] | None = None,
        numbers: Sequence[str] | None = None,
        ports: Sequence[int] | None = None,
        time_after: datetime | None = None,
        time_before: datetime | None = None,
    ) -> list[SmsResult]:
        """Sending results; ``user_ids`` and ``numbers`` go 32 per request (one request per chunk), the
        requests as many at a time as the backend's concurrency limit allows, the results in chunk order."""
        bodies = []
        for user_chunk, number_chunk in product(_chunks(user_ids), _chunks(numbers)):
            body = _filters(numbers=number_chunk, ports=ports, time_after=time_after, time_before=time_before)
            if user_chunk is not None:
                body["user_id"] = user_chunk
            bodies.append(body)
        return await self._each(bodies, "/api/query_sms_result", "query-sms-result",
                                lambda response: _parsed(response, "result", parse_sms_result))

    async def query_sms_deliver_status(
        self,
        *,
        numbers: Sequence[str] | None = None,
        ports: Sequence[int] | None = None,
        time_after: datetime | None = None,
        time_before: datetime | None = None,
    ) -> list[DeliverStatus]:
        """Delivery reports; ``numbers`` go 32 per request, as ``query_sms_result``'s."""
        bodies = [_filters(numbers=chunk, ports=ports, time_after=time_after, time_before=time_before)
                  for chunk in _chunks(numbers)]
        return await self._each(bodies, "/api/query_sms_deliver_status", "query-sms-deliver-status",
                                lambda response: _parsed(response, "result", parse_deliver_status))

    async def _each(self, bodies: Sequence[dict[str, Any]], path: str, operation: str,
                    parse: Callable[[httpx.Response], list[T]]) -> list[T]:
        """One query per body, ``limits.concurrency`` of them in flight (one after the other, a key set of
        a few chunks took a round trip per chunk), their results joined in the order of the bodies."""
        results: list[T] = []

        async def fetch(index: int) -> list[T]:
            return await self._call("POST", path, operation=operation, idempotent=True, parse=parse,
                                    json=bodies[index])

        await fetch_in_order(fetch, range(len(bodies)), self._http.limits.concurrency, results.extend)
        return results

    async def stop_sms(self, task_id: int) -> None:
        """Stop what is still queued of a task (repeating it is harmless). Unknown task: ``NotFoundError``."""
        await self._call("GET", "/api/stop_sms", operation="stop-sms", idempotent=True,
                         parse=_accepted, params={"task_id": task_id})

    async def query_sms_in_queue(self) -> int:
        """How many messages wait in the gateway's queues."""
        return await self._call("GET", "/api/query_sms_in_queue", operation="query-sms-in-queue",
                                idempotent=True, parse=_in_queue)

    async def query_incoming_sms(self, *, unread_only: bool = False) -> list[IncomingSms]:
        """Received SMS. ``unread_only`` marks them read on the gateway, so it is never retried."""
        return await self._call(
            "GET", "/api/query_incoming_sms", operation="query-incoming-sms", idempotent=not unread_only,
            parse=lambda response: _parsed(response, "sms", parse_incoming_sms),
            params={"flag": "unread" if unread_only else "all"},
        )

    async def get_port_info(self, ports: Sequence[int] | None = None) -> list[PortInfo]:
        """Every port (or the given ones) with its registration state and SIM identity."""
        params = {"info_type": PORT_INFO_TYPES}
        if ports is not None:
            params["port"] = ",".join(str(port) for port in ports)
        return await self._call("GET", "/api/get_port_info", operation="get-port-info", idempotent=True,
                                parse=lambda response: _parsed(response, "info", parse_port_info),
                                params=params)

    async def set_port_info(self, port: int, action: PortAction, param: str | None = None) -> None:
        """Power a port on/off, switch its SIM slot, set its IMEI (repeatable) or reset it (not)."""
        params: dict[str, Any] = {"port": port, "action": action.value}
        if param is not None:
            params["param"] = param
        await self._call("GET", "/api/set_port_info", operation="set-port-info",
                         idempotent=action is not PortAction.RESET, parse=_accepted, params=params)


def _param(message: OutgoingSms) -> dict[str, Any]:
    param: dict[str, Any] = {"number": message.number, "user_id": message.user_id}
    if message.text_param:
        param["text_param"] = list(message.text_param)
    return param


def _filters(*, numbers: Sequence[str] | None, ports: Sequence[int] | None,
             time_after: datetime | None, time_before: datetime | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if numbers is not None:
        body["number"] = list(numbers)
    if ports is not None:
        body["port"] = list(ports)
    if time_after is not None:
        body["time_after"] = format_time(time_after)
    if time_before is not None:
        body["time_before"] = format_time(time_before)
    return body
