"""A fifth backend type defined only here (adapter, simulator, descriptors) and registered at run time:
``validate``, a dry run and an apply work against it through the real CLI, over loopback HTTP to its
simulator, and its pushes reach the daemon's generic ``/webhooks/<type>/<token>`` route. No product module
knows this type: that is the proof that a backend is a plug-in (issue 18).

``toy-sms`` sends SMS (the SMS family: the planner, the send ledger and the engine treat it like any SMS
backend); it takes ``username``/``password`` auth and one option of its own, ``toyChannel``, whose JSON
Schema fragment comes with its descriptor.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.actions import Action, Verb
from reconciler.backends import registry
from reconciler.backends.descriptor import (
    SMS_CAMPAIGN_FIELDS, SMS_SCHEDULE_FIELDS, BackendDescriptor, CampaignFamily, PushedFate, PushError, PushReport,
)
from reconciler.backends.protocol import ConnectContext, MessageBound, OutgoingSms, SmsFate, SmsReceipt
from reconciler.cli.main import main
from reconciler.errors import PermanentBackendError, TemporaryBackendError
from reconciler.model import BackendSpec, DesiredState
from reconciler.observed import BackendObservation
from reconciler.sandbox import registry as sandbox_registry
from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.descriptor import SimulatorDescriptor
from reconciler.sandbox.harness import Simulator
from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from reconciler.secrets import SecretRef, resolve_secret
from reconciler.state.ledger import SendState
from reconciler.traits import BackendTraits
from tests.ledgers import ledger_counts, writer_ledger

TOY = "toy-sms"
USER, PASSWORD = "toy", "toy-password-123"


# --- the simulator --------------------------------------------------------------------------------------------


class ToySimulator:
    """Accepts SMS (``POST /v1/messages``, Basic auth), says which keys it holds (``POST /v1/lookup``)."""

    name = TOY

    def __init__(self) -> None:
        self.messages: dict[int, dict[str, Any]] = {}

    def routes(self) -> list[BaseRoute]:
        return [Route("/v1/status", self._status), Route("/v1/messages", self._send, methods=["POST"]),
                Route("/v1/lookup", self._lookup, methods=["POST"])]

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == httpx.BasicAuth(USER, PASSWORD)._auth_header

    async def _status(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"error": "who are you"}, status_code=401)
        return JSONResponse({"ok": True, "held": len(self.messages)})

    async def _send(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"error": "who are you"}, status_code=401)
        body = await request.json()
        for message in body["messages"]:
            self.messages[int(message["key"])] = {"to": message["to"], "text": message["text"]}
        return JSONResponse({"queued": [m["key"] for m in body["messages"]]})

    async def _lookup(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"error": "who are you"}, status_code=401)
        keys = (await request.json())["keys"]
        return JSONResponse({"held": [k for k in keys if int(k) in self.messages]})

    def advance(self, now: float) -> None:
        return None

    def reset(self) -> None:
        self.messages.clear()

    def snapshot(self) -> dict[str, Any]:
        return {"messages": {str(k): v for k, v in sorted(self.messages.items())}}

    def restore(self, data: dict[str, Any]) -> None:
        self.messages = {int(k): v for k, v in data.get("messages", {}).items()}

    def malformed(self, body: bytes) -> bytes:
        return body[: len(body) // 2]


def build_simulator(options: SandboxOptions, clock: SimClock) -> Simulator:
    return ToySimulator()


SIMULATOR = SimulatorDescriptor(type=TOY, title="Toy SMS", port_offset=9, build=build_simulator,
                                banner="{url}/v1   user toy")


# --- the adapter ----------------------------------------------------------------------------------------------


def _client(spec: BackendSpec, ctx: ConnectContext) -> httpx.AsyncClient:
    password = spec.auth.get("password")
    if not isinstance(password, SecretRef):
        raise PermanentBackendError("auth.password must be a secret reference", backend=spec.name, operation="connect")
    secret = ctx.redactor.register(resolve_secret(password, base_dir=ctx.root, environ=ctx.environ,
                                                  redactor=ctx.redactor), user=str(spec.auth.get("username")))
    return httpx.AsyncClient(base_url=spec.url, auth=(str(spec.auth.get("username")), secret.reveal()),
                             timeout=spec.limits.timeout_seconds)


@dataclass
class ToyReader:
    backend: str
    http: httpx.AsyncClient

    async def observe(self, desired: DesiredState) -> BackendObservation:
        try:
            (await self.http.get("/v1/status")).raise_for_status()
        except httpx.HTTPError as exc:
            return BackendObservation(backend=self.backend, readable=False, error=type(exc).__name__)
        return BackendObservation(backend=self.backend)

    async def aclose(self) -> None:
        await self.http.aclose()


@dataclass
class ToyWriter:
    backend: str
    http: httpx.AsyncClient

    async def apply(self, action: Action) -> Mapping[str, Any]:
        raise PermanentBackendError(f"{action.verb.value} is done through the send ledger", backend=self.backend,
                                    operation=action.verb.value)

    async def aclose(self) -> None:
        await self.http.aclose()


class ToySender:
    max_batch = 50
    in_flight = 1
    can_query = True

    def __init__(self, backend: str, http: httpx.AsyncClient) -> None:
        self.backend, self.http = backend, http

    async def send(self, text: str, batch: Sequence[OutgoingSms], *, sender: str | None, carrier: str | None,
                   ports: tuple[int, ...], encoding: str | None, reports: bool) -> list[SmsReceipt]:
        messages = [{"key": m.key, "to": m.number, "text": text.replace("#param#", m.params[0] if m.params else "")}
                    for m in batch]
        try:
            reply = await self.http.post("/v1/messages", json={"messages": messages})
            reply.raise_for_status()
        except httpx.HTTPError as exc:
            raise TemporaryBackendError(str(exc), backend=self.backend, operation="send-sms") from None
        return [SmsReceipt(int(key), SmsFate.ACCEPTED, remote_id=str(key)) for key in reply.json()["queued"]]

    async def query(self, keys: Sequence[int]) -> list[SmsReceipt]:
        reply = await self.http.post("/v1/lookup", json={"keys": list(keys)})
        reply.raise_for_status()
        return [SmsReceipt(int(key), SmsFate.ACCEPTED, remote_id=str(key)) for key in reply.json()["held"]]

    async def stop_tasks(self, task_ids: Sequence[str]) -> None:
        return None

    async def aclose(self) -> None:
        await self.http.aclose()


class ToyAdapter:
    traits = BackendTraits(type=TOY, verbs=frozenset({Verb.SEND_SMS}), sms_queryable=True)

    def reader(self, spec: BackendSpec, ctx: ConnectContext) -> ToyReader:
        return ToyReader(spec.name, _client(spec, ctx))

    def writer(self, spec: BackendSpec, ctx: ConnectContext) -> ToyWriter:
        return ToyWriter(spec.name, _client(spec, ctx))

    def sms_sender(self, spec: BackendSpec, ctx: ConnectContext) -> ToySender:
        return ToySender(spec.name, _client(spec, ctx))


def parse_toy_push(body: bytes) -> PushReport:
    """``{"delivered": [key, ...]}``: delivery reports by ledger key."""
    try:
        keys = json.loads(body)["delivered"]
        return PushReport(fates=tuple(PushedFate(int(k), SmsFate.DELIVERED, "toy push") for k in keys))
    except (ValueError, KeyError, TypeError):
        raise PushError("expected {\"delivered\": [key, ...]}") from None


DESCRIPTOR = BackendDescriptor(
    type=TOY, family=CampaignFamily.SMS, title="Toy SMS", campaign_label="SMS (toy)",
    adapter=lambda: ToyAdapter(), auth=("username", "password"), options=frozenset({"toyChannel"}),
    campaign_fields=SMS_CAMPAIGN_FIELDS, campaign_required=("text", "recipients"),
    campaign_states=("active", "paused", "stopped"), schedule_fields=SMS_SCHEDULE_FIELDS,
    message_bound=MessageBound(max_chars=160, max_bytes=160, max_segments=1), push=parse_toy_push,
    schema={"options": {"toyChannel": {"enum": ["blue", "green"], "description": "toy-sms: the channel."}}},
)


# --- the declarations -----------------------------------------------------------------------------------------

BACKEND = """\
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: toy}}
spec:
  type: toy-sms
  url: "{url}"
  auth: {{username: toy, password: {{env: TOY_PASSWORD}}}}
  options: {{toyChannel: {channel}}}
"""
CAMPAIGN = """\
apiVersion: reconciler/v1
kind: Campaign
metadata: {name: hello}
spec:
  backend: toy
  text: "Hello #param#"
  recipients:
    inline:
      - {number: "4915100000001", params: [Ada]}
      - {number: "4915100000002", params: [Grace]}
      - {number: "4915100000003", params: [Linus]}
"""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with registry.registered(DESCRIPTOR), sandbox_registry.registered(SIMULATOR), \
            running_sandbox(SandboxOptions(port_base=0, only=(TOY,))) as running:
        yield running


@pytest.fixture
def repo(sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    SandboxControls.of(sandbox)[TOY].reset()
    monkeypatch.setenv("TOY_PASSWORD", PASSWORD)
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "campaigns.d"
    folder.mkdir()
    (folder / "toy.yaml").write_text(BACKEND.format(url=sandbox.url(TOY), channel="blue") + "---\n" + CAMPAIGN)
    return folder


def received(sandbox: RunningSandbox) -> dict[str, dict[str, str]]:
    return dict(SandboxControls.of(sandbox)[TOY].state()["messages"])


def reconcile(*args: str) -> int:
    return main([*args, "--state", "sqlite:///state.db"])


def test_a_registered_type_validates_plans_and_applies_through_its_own_simulator(
        sandbox: RunningSandbox, repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(repo)]) == 0
    assert reconcile("--dry-run", "--detailed-exitcode", str(repo)) == 2
    assert "hello" in capsys.readouterr().out and received(sandbox) == {}  # planned, nothing sent
    assert reconcile(str(repo)) == 0
    texts = sorted((m["to"], m["text"]) for m in received(sandbox).values())
    assert texts == [("4915100000001", "Hello Ada"), ("4915100000002", "Hello Grace"),
                     ("4915100000003", "Hello Linus")]
    assert reconcile("--dry-run", "--detailed-exitcode", str(repo)) == 0  # every recipient handled
    assert reconcile(str(repo)) == 0
    assert len(received(sandbox)) == 3  # sent exactly once


def test_the_loader_checks_a_registered_type_by_its_descriptor(
        sandbox: RunningSandbox, repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Its option's schema fragment, its auth keys and its campaign fields, like any built-in type."""
    (repo / "toy.yaml").write_text(BACKEND.format(url=sandbox.url(TOY), channel="red").replace(
        "password: {env: TOY_PASSWORD}", "secret: {env: TOY_PASSWORD}") + "---\n"
        + CAMPAIGN.replace("  backend: toy\n", "  backend: toy\n  from: \"12345\"\n"))
    assert main(["validate", str(repo)]) == 1
    errors = capsys.readouterr().err
    assert "spec.options.toyChannel: found `red`, expected one of: blue, green" in errors
    assert "auth key `secret` does not apply to toy-sms backends; expected: username, password" in errors
    assert "`from` applies to ogangi campaigns; backend `toy` is of type toy-sms" in errors


def test_a_type_that_is_not_registered_is_refused_with_the_registered_ones_listed(
        sandbox: RunningSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "b.yaml").write_text(BACKEND.format(url="http://127.0.0.1:1", channel="blue").replace(
        "toy-sms", "toy-smss"))
    assert main(["validate", str(tmp_path)]) == 1
    assert "found `toy-smss`, expected one of: yateota, iot-campaigns, ogangi, sms-gateway, toy-sms" \
        in capsys.readouterr().err


def test_its_pushes_settle_the_ledger_through_the_generic_webhook_route(sandbox: RunningSandbox, repo: Path) -> None:
    from reconciler.daemon.http_api import ServerOptions, build_app, http_server
    from reconciler.daemon.metrics import DaemonMetrics
    from reconciler.daemon.webhooks import WebhookReceivers

    assert reconcile(str(repo)) == 0
    ledger = writer_ledger(repo.parent / "state.db")
    keys = [int(k) for k in received(sandbox)]
    metrics = DaemonMetrics()
    receivers = WebhookReceivers(token="s3cr3t-token", metrics=metrics, ledger=lambda: ledger, on_event=print)
    server = http_server(build_app(metrics=metrics, ready=lambda: (True, ""), status=dict, webhooks=receivers),
                         "127.0.0.1:0", ServerOptions())
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/webhooks"
        reply = httpx.post(f"{url}/{TOY}/s3cr3t-token", json={"delivered": keys[:2]}, timeout=10)
        assert reply.json() == {"accepted": True, "settled": 2}
        assert httpx.post(f"{url}/{TOY}/s3cr3t-token", content=b"[1]", timeout=10).status_code == 400
        assert httpx.post(f"{url}/{TOY}/wrong", json={"delivered": keys}, timeout=10).status_code == 404
        assert httpx.post(f"{url}/no-such-type/s3cr3t-token", json={}, timeout=10).status_code == 404
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert ledger_counts(repo.parent / "state.db", "toy", "hello") == {SendState.DELIVERED.value: 2,
                                                                         SendState.ACCEPTED.value: 1}
    assert metrics.registry.get_sample_value("reconcile_webhooks_total", {"source": TOY, "result": "accepted"}) == 1


def test_the_sandbox_banner_shows_a_registered_simulator(sandbox: RunningSandbox) -> None:
    from reconciler.cli.sandbox import banner

    assert f"  Toy SMS         {sandbox.url(TOY)}/v1   user toy\n" in banner(sandbox)
