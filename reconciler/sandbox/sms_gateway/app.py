"""The GSM/LTE SMS gateway simulator (backends.md section 4, seed 003): the multi-port SIM gateway's
JSON API, served over HTTPS by the sandbox harness, behind Digest (MD5, qop=auth) or Basic auth.

Every result is HTTP 200 with the gateway's own ``error_code`` in the body (202 accepted, 200 done,
400 bad format, 404 unknown task, 413 too many numbers / too long a text, 550 no port available);
only authentication answers 401. The rules of time (send rate, segments, ``ref_id``, delivery reports)
live in ``store``, request validation in ``requests``, auth in
``auth`` and pushes in ``push``.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.sms_gateway.auth import AuthVerdict, GatewayAuthenticator
from reconciler.sandbox.sms_gateway.push import PushSender
from reconciler.sandbox.sms_gateway.requests import (
    HIGHEST_PORT,
    GatewayRequestError,
    PortAction,
    PortChange,
    SendParam,
    SendRequest,
    parse_message_filter,
    parse_port_change,
    parse_port_info_request,
    parse_send_request,
    parse_task_id,
    parse_unread_only,
)
from reconciler.sandbox.sms_gateway.store import (
    DeliverReport,
    GatewayMessage,
    GatewayStore,
    IncomingMessage,
    MessageDraft,
)
from reconciler.sandbox.sms_gateway.text import choose_encoding, fill_params, format_time, segment_count

SERIAL_NUMBER = "dbc3-0d6b-8e2c-1f47"

Handler = Callable[[Request], Awaitable[dict[str, Any]]]


class SmsGatewaySimulator:
    """A Dinstar-style SMS gateway: ports 0..``port_count``-1, per-port send queues, pushes."""

    name = "sms-gateway"

    def __init__(
        self,
        *,
        clock: SimClock,
        seed: int | None = None,
        username: str = "admin",
        password: str = "admin",
        port_count: int = 32,
        unregistered_ports: Iterable[int] = (),
        send_rate_per_port: float = 10.0,
        failure_rate: float = 0.0,
        delivery_delay_s: float = 5.0,
        push_url: str | None = None,
        sn: str = SERIAL_NUMBER,
        nonce_ttl_s: float = 300.0,
    ) -> None:
        if not 1 <= port_count <= HIGHEST_PORT + 1:
            raise ValueError(f"port_count must be between 1 and {HIGHEST_PORT + 1}")
        if send_rate_per_port <= 0 or delivery_delay_s < 0 or not 0 <= failure_rate <= 1:
            raise ValueError("send_rate_per_port must be > 0, delivery_delay_s >= 0, failure_rate in 0..1")
        self.sn = sn
        self._clock = clock
        self._seed = seed
        self._port_count = port_count
        self._unregistered_ports = frozenset(unregistered_ports)
        self._send_rate_per_port = send_rate_per_port
        self._failure_rate = failure_rate
        self._delivery_delay_s = delivery_delay_s
        self._push_url = push_url
        self._auth = GatewayAuthenticator(username=username, password=password, now=clock.now,
                                          rng=random.Random(seed), nonce_ttl_s=nonce_ttl_s)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._store = self._new_store()
        self._pushes = PushSender(url=push_url)

    def _new_store(self) -> GatewayStore:
        return GatewayStore(
            port_count=self._port_count,
            unregistered_ports=self._unregistered_ports,
            send_rate_per_port=self._send_rate_per_port,
            delivery_delay_s=self._delivery_delay_s,
            failure_rate=self._failure_rate,
            rng=random.Random(self._seed),
        )

    # --- Simulator protocol ---------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        endpoints: list[tuple[str, str, Handler]] = [
            ("POST", "/api/send_sms", self._send_sms),
            ("POST", "/api/query_sms_result", self._query_sms_result),
            ("POST", "/api/query_sms_deliver_status", self._query_sms_deliver_status),
            ("GET", "/api/stop_sms", self._stop_sms),
            ("GET", "/api/query_sms_in_queue", self._query_sms_in_queue),
            ("GET", "/api/query_incoming_sms", self._query_incoming_sms),
            ("GET", "/api/get_port_info", self._get_port_info),
            ("GET", "/api/set_port_info", self._set_port_info),
        ]
        return [Route(path, self._guarded(handler), methods=[method]) for method, path, handler in endpoints]

    def advance(self, now: float) -> None:
        self._loop = _running_loop() or self._loop
        events = self._store.advance(now)
        if self._push_url is None:
            return
        if events.sent:
            self._pushes.push({"sn": self.sn, "sms_result": [self._result_item(m) for m in events.sent]})
        if events.reports:
            self._pushes.push({"sn": self.sn, "sms_deliver_status": [_report_item(r) for r in events.reports]})
        self._pushes.flush()

    def reset(self) -> None:
        self._store = self._new_store()
        self._pushes = PushSender(url=self._push_url)
        self._auth.forget_nonces()

    def snapshot(self) -> dict[str, Any]:
        return {"sn": self.sn, **self._store.snapshot(), "pushes": self._pushes.stats()}

    def restore(self, data: dict[str, Any]) -> None:
        self._store = self._new_store()
        self._store.restore(data)
        self._pushes.restore(data["pushes"])

    def malformed(self, body: bytes) -> bytes:
        return body[: len(body) // 2]

    # --- for tests ------------------------------------------------------------------------------

    def inject_incoming(self, port: int, number: str, text: str) -> int:
        """An SMS from ``number`` arrives on ``port``; returns its ``incoming_sms_id``. Safe to call
        from a test's thread while the server runs (the change is made on the server's loop)."""
        if port not in self._store.ports:
            raise ValueError(f"port {port} does not exist")
        loop = self._loop
        if loop is None or not loop.is_running() or _running_loop() is loop:
            return self._receive(port, number, text)

        async def receive_on_loop() -> int:
            return self._receive(port, number, text)

        return asyncio.run_coroutine_threadsafe(receive_on_loop(), loop).result(timeout=10)

    def _receive(self, port: int, number: str, text: str) -> int:
        message = self._store.receive(port, number, text, self._clock.now())
        self._pushes.push({"sn": self.sn, "sms": [_incoming_item(message)]})
        return message.incoming_sms_id

    # --- endpoints ------------------------------------------------------------------------------

    def _guarded(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            verdict = self._auth.check(method=request.method, target=_request_target(request),
                                       authorization=request.headers.get("authorization"))
            if verdict is not AuthVerdict.ACCEPTED:
                return self._challenge(stale=verdict is AuthVerdict.STALE)
            try:
                reply = await handler(request)
            except GatewayRequestError as exc:
                reply = {"error_code": exc.error_code, "reason": exc.reason}
            return JSONResponse({"error_code": reply.pop("error_code"), "sn": self.sn, **reply})

        return endpoint

    def _challenge(self, *, stale: bool) -> Response:
        response = JSONResponse({"error_code": 401, "reason": "authentication required"}, status_code=401)
        for value in self._auth.challenge_headers(stale=stale):
            response.headers.append("WWW-Authenticate", value)
        return response

    async def _send_sms(self, request: Request) -> dict[str, Any]:
        send = parse_send_request(await _json_body(request))
        ports = self._store.available_ports(send.ports)
        if not ports:
            raise GatewayRequestError(550, "no port available")
        drafts = [_draft(send, param) for param in send.params]
        task = self._store.accept(drafts, ports=ports, status_report=send.status_report, now=self._clock.now())
        return {"error_code": 202, "sms_in_queue": self._store.in_queue(), "task_id": task.task_id}

    async def _query_sms_result(self, request: Request) -> dict[str, Any]:
        wanted = parse_message_filter(await _json_body(request), with_user_id=True)
        return {"error_code": 200, "result": [self._result_item(m) for m in self._store.results(wanted)]}

    async def _query_sms_deliver_status(self, request: Request) -> dict[str, Any]:
        wanted = parse_message_filter(await _json_body(request), with_user_id=False)
        return {"error_code": 200, "result": [_report_item(r) for r in self._store.deliver_reports(wanted)]}

    async def _stop_sms(self, request: Request) -> dict[str, Any]:
        task_id = parse_task_id(request.query_params)
        if not self._store.stop_task(task_id, self._clock.now()):
            raise GatewayRequestError(404, f"task {task_id} does not exist")
        return {"error_code": 200}

    async def _query_sms_in_queue(self, request: Request) -> dict[str, Any]:
        return {"error_code": 200, "in_queue": self._store.in_queue()}

    async def _query_incoming_sms(self, request: Request) -> dict[str, Any]:
        unread_only = parse_unread_only(request.query_params)
        listed = self._store.incoming_messages(unread_only=unread_only)
        return {"error_code": 200, "sms": [_incoming_item(message) for message in listed]}

    async def _get_port_info(self, request: Request) -> dict[str, Any]:
        wanted = parse_port_info_request(request.query_params)
        ports = sorted(self._store.ports) if wanted.ports is None else list(wanted.ports)
        self._require_ports(ports)
        infos = (self._store.ports[port].info() for port in ports)
        return {"error_code": 200, "info": [{"port": i["port"], **{f: i[f] for f in wanted.fields}} for i in infos]}

    async def _set_port_info(self, request: Request) -> dict[str, Any]:
        change = parse_port_change(request.query_params)
        self._require_ports([change.port])
        self._change_port(change)
        return {"error_code": 200}

    def _require_ports(self, ports: Iterable[int]) -> None:
        missing = sorted(set(ports) - set(self._store.ports))
        if missing:
            raise GatewayRequestError(400, f"ports {missing} do not exist (this gateway has {self._port_count})")

    def _change_port(self, change: PortChange) -> None:
        """power on|off, switch SIM slot, reset the module or set the IMEI. Anything but an IMEI
        change or powering on loses what the port had queued (those messages fail)."""
        port = self._store.ports[change.port]
        if change.action is PortAction.IMEI:
            port.imei = change.param
            return
        if change.action is PortAction.POWER and change.param == "on":
            port.powered = True
            return
        self._store.lose_queue(change.port, self._clock.now())
        if change.action is PortAction.POWER:
            port.powered = False
        elif change.action is PortAction.SLOT:
            port.slot = int(change.param)
        else:
            port.powered = True

    def _result_item(self, message: GatewayMessage) -> dict[str, Any]:
        item: dict[str, Any] = {"port": message.port, "number": message.number}
        if message.user_id is not None:
            item["user_id"] = message.user_id
        item.update(time=format_time(message.time), status=message.status.value, count=message.count,
                    succ_count=message.succ_count, ref_id=message.ref_id, imsi=message.imsi)
        return item


def _draft(send: SendRequest, param: SendParam) -> MessageDraft:
    text = fill_params(send.text, param.text_param)
    encoding = choose_encoding(text, send.encoding)
    return MessageDraft(number=param.number, user_id=param.user_id, text=text, encoding=encoding.value,
                        count=segment_count(text, encoding))


def _report_item(report: DeliverReport) -> dict[str, Any]:
    return {"port": report.port, "number": report.number, "time": format_time(report.time),
            "ref_id": report.ref_id, "status_code": report.status_code, "imsi": report.imsi}


def _incoming_item(message: IncomingMessage) -> dict[str, Any]:
    return {"incoming_sms_id": message.incoming_sms_id, "port": message.port, "number": message.number,
            "smsc": message.smsc, "timestamp": format_time(message.timestamp), "text": message.text,
            "imsi": message.imsi}


async def _json_body(request: Request) -> object:
    raw = await request.body()
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise GatewayRequestError(400, "body is not JSON") from None


def _request_target(request: Request) -> str:
    """The request target as the client wrote it (what a Digest ``uri`` must equal)."""
    path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    query: bytes = request.scope.get("query_string", b"")
    return (path + (b"?" + query if query else b"")).decode("latin-1")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
