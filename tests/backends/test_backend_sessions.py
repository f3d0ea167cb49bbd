"""One client per backend per pass (``reconciler.backends.sessions``), against the simulators over loopback:
an apply logs in to the IoT campaign manager once, and a backend's reader, writer and SMS sender working at
once never have more than ``limits.concurrency`` requests in flight between them (counted by the server).
Without a pass's sessions each role has a client of its own, and the same traffic goes over the limit.
A shared client stays open while any role holds it, so a send that outlives its pass keeps working."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.actions import Action, Verb
from reconciler.backends.protocol import ConnectContext
from reconciler.backends.sessions import BackendSessions
from reconciler.backends.sms_gateway.adapter import ADAPTER as SMS_GATEWAY
from reconciler.cli.main import main
from reconciler.model import BackendLimits, BackendSpec, DesiredState, Kind, ResourceKey, TlsSettings
from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import CONTROL_PREFIX, SandboxApp, SandboxServer, TlsFiles
from reconciler.sandbox.sms_gateway.app import SmsGatewaySimulator
from reconciler.sandbox.testing import SandboxControl
from reconciler.sandbox.tls import generate_tls_files
from reconciler.secrets import Redactor, SecretRef
from tests.backends.test_adapter_iot_campaigns_support import PASSWORD, USER, iot_sandbox

GATEWAY_SECRET = "gw-Sessions-pw"
CONCURRENCY = 2

IOT_REPO = """\
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: iot}}
spec:
  type: iot-campaigns
  url: "{url}"
  auth: {{username: {user}, password: {{env: IOT_PASSWORD}}}}
---
apiVersion: reconciler/v1
kind: Package
metadata: {{name: fw}}
spec: {{backend: iot, file: fw.bin, description: Firmware 2.4}}
---
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: rollout}}
spec: {{backend: iot, description: Rollout, packages: [fw], state: running}}
---
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {{name: rollout-gws}}
spec: {{campaign: rollout, gateways: [gw-00001, gw-00002, gw-00003]}}
"""


def test_an_apply_logs_in_to_the_iot_manager_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader lists, the writer uploads, creates, adds gateways and starts: one token for all of it."""
    with iot_sandbox(gateway_count=10) as server:
        (tmp_path / "decl").mkdir()
        (tmp_path / "decl" / "fw.bin").write_bytes(b"firmware 2.4\n" * 100)
        (tmp_path / "decl" / "iot.yaml").write_text(IOT_REPO.format(url=server.url, user=USER), encoding="utf-8")
        monkeypatch.setenv("IOT_PASSWORD", PASSWORD)
        monkeypatch.chdir(tmp_path)
        assert main([str(tmp_path / "decl"), "--state", "sqlite:///state.db"]) == 0
        served = SandboxControl.of(server).stats().requests
    writes = {route: n for route, n in served.items() if not route.startswith("GET")}
    assert writes["POST /api/tokens"] == 1, served
    assert writes.keys() > {"POST /api/tokens", "POST /api/campaigns"}  # reads and writes both happened


# --- concurrency per backend -------------------------------------------------------------------------


class InFlight(SandboxApp):
    """The simulator's app, counting the API requests it is serving at once (control calls aside)."""

    in_flight = 0
    peak = 0

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        counted = scope["type"] == "http" and not scope["path"].startswith(CONTROL_PREFIX)
        if counted:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            await super().__call__(scope, receive, send)
        finally:
            if counted:
                self.in_flight -= 1


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return generate_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def gateway(tls: TlsFiles) -> Iterator[tuple[SandboxServer, InFlight]]:
    """The SMS gateway simulator answering every request 50 ms late, so that requests overlap."""
    clock = SimClock()
    app = InFlight(SmsGatewaySimulator(clock=clock, seed=3, password=GATEWAY_SECRET), clock=clock)
    server = SandboxServer(app, tls=tls).start_in_thread()
    try:
        SandboxControl.of(server).faults(latency_ms=50)
        yield server, app
    finally:
        server.stop()


def gateway_spec(url: str, tls: TlsFiles) -> BackendSpec:
    return BackendSpec(name="gw", type="sms-gateway", url=url,
                       auth={"username": "admin", "password": SecretRef(env="GW_SECRET")},
                       limits=BackendLimits(concurrency=CONCURRENCY, timeout_seconds=10, max_retries=0),
                       tls=TlsSettings(ca_file=str(tls.ca_file)))


def context(root: Path, sessions: BackendSessions | None) -> ConnectContext:
    return ConnectContext(root=root, environ={"GW_SECRET": GATEWAY_SECRET}, redactor=Redactor(), sessions=sessions)


async def read_write_and_send_at_once(spec: BackendSpec, ctx: ConnectContext, rounds: int = 4) -> None:
    """Each role sends ``rounds`` requests, all three roles at the same time."""
    reader, writer = SMS_GATEWAY.reader(spec, ctx), SMS_GATEWAY.writer(spec, ctx)
    sender = SMS_GATEWAY.sms_sender(spec, ctx)
    stop = Action(id="stop", verb=Verb.STOP_SMS_TASK, key=ResourceKey(Kind.CAMPAIGN, "c"), backend="gw",
                  params={"task_id": 9})
    try:
        await asyncio.gather(*(reader.observe(DesiredState()) for _ in range(rounds)),
                             *(writer.apply(stop) for _ in range(rounds)),
                             *(sender.query([7]) for _ in range(rounds)))
    finally:
        for role in (reader, writer, sender):
            await role.aclose()


async def test_reader_writer_and_sender_of_a_pass_stay_within_the_backends_concurrency(
        gateway: tuple[SandboxServer, InFlight], tls: TlsFiles, tmp_path: Path) -> None:
    server, app = gateway
    sessions = BackendSessions()
    await read_write_and_send_at_once(gateway_spec(server.url, tls), context(tmp_path, sessions))
    await sessions.aclose()
    assert app.peak == CONCURRENCY  # reached, never passed


async def test_without_a_pass_each_role_has_its_own_limit(gateway: tuple[SandboxServer, InFlight], tls: TlsFiles,
                                                         tmp_path: Path) -> None:
    server, app = gateway
    await read_write_and_send_at_once(gateway_spec(server.url, tls), context(tmp_path, None))
    assert app.peak > CONCURRENCY


async def test_a_shared_client_stays_open_while_a_role_holds_it_past_the_end_of_its_pass(
        gateway: tuple[SandboxServer, InFlight], tls: TlsFiles, tmp_path: Path) -> None:
    server, _app = gateway
    spec, sessions = gateway_spec(server.url, tls), BackendSessions()
    ctx = context(tmp_path, sessions)
    reader, sender = SMS_GATEWAY.reader(spec, ctx), SMS_GATEWAY.sms_sender(spec, ctx)
    assert sender.client is reader._client  # one client for both roles
    await reader.aclose()  # the pass's reader is done ...
    await sessions.aclose()  # ... and so is the pass, but the sender still sends (a daemon's background send)
    assert await sender.query([7]) == [] and not sender.client.http.client.is_closed
    await sender.aclose()
    assert sender.client.http.client.is_closed
