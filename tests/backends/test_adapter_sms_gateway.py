"""The SMS gateway adapter against the simulator over real HTTPS: the client's endpoints and limits,
error translation, auth, TLS verification, how ``user_id`` resolves an unknown outcome, the Reader, the
Writer, and push parsing (the faults every adapter survives alike: ``test_adapter_contract.py``)."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from reconciler.actions import Action, Verb
from reconciler.backends.protocol import ConnectContext
from reconciler.backends.sms_gateway.adapter import (
    ADAPTER,
    GatewayPushError,
    OutgoingSms,
    PortAction,
    PushKind,
    SmsGatewayClient,
    SmsStatus,
    in_batches,
    parse_push,
)
from reconciler.errors import (
    AuthError,
    BackendError,
    MalformedReplyError,
    NotFoundError,
    PermanentBackendError,
    TemporaryBackendError,
    UnknownOutcomeError,
)
from reconciler.model import BackendLimits, BackendSpec, DesiredState, Kind, ResourceKey, TlsSettings
from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import SandboxServer, TlsFiles
from reconciler.sandbox.sms_gateway.app import SmsGatewaySimulator
from reconciler.sandbox.testing import SandboxControl, running_simulator
from reconciler.sandbox.tls import generate_tls_files
from reconciler.secrets import Redactor
from tests.backends.support import gateway_spec
from tests.sandbox.test_sim_sms_gateway import PushReceiver, frozen_clock

SECRET = "gw-Pa55-word"
KEY = ResourceKey(Kind.CAMPAIGN, "outage-notice")


async def no_sleep(_: float) -> None:
    """Backoff without waiting, so retry tests take no time."""


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return generate_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def served(tls: TlsFiles) -> Iterator[tuple[SandboxServer, SmsGatewaySimulator]]:
    clock = frozen_clock()
    simulator = SmsGatewaySimulator(clock=clock, seed=3, password=SECRET)
    with running_simulator(simulator, clock=clock, tls=tls) as server:
        yield server, simulator


@pytest.fixture
def gateway(served: tuple[SandboxServer, SmsGatewaySimulator]) -> SandboxServer:
    return served[0]


@pytest.fixture
def control(gateway: SandboxServer) -> SandboxControl:
    """The sandbox control API (no credentials needed), gateway reset to its fixtures."""
    control = SandboxControl.of(gateway)
    control.reset()
    return control


def spec_for(url: str, tls: TlsFiles | None, **options: Any) -> BackendSpec:
    """A spec trusting the sandbox CA (``tls=None``: default verification against the public roots)."""
    return gateway_spec(url, name="b1", password_env="B1_SECRET",
                        limits=BackendLimits(max_retries=2, timeout_seconds=5),
                        tls=TlsSettings() if tls is None else TlsSettings(ca_file=str(tls.ca_file)), **options)


def context(tmp_path: Path, password: str = SECRET) -> ConnectContext:
    return ConnectContext(root=tmp_path, environ={"B1_SECRET": password}, redactor=Redactor())


@pytest.fixture
async def client(gateway: SandboxServer, tls: TlsFiles, tmp_path: Path,
                 control: SandboxControl) -> AsyncIterator[SmsGatewayClient]:
    connected = SmsGatewayClient.connect(spec_for(gateway.url, tls), context(tmp_path), sleep=no_sleep)
    yield connected
    await connected.aclose()


def recipients(count: int, first_user_id: int = 1) -> list[OutgoingSms]:
    return [OutgoingSms(number=f"+4917000{i:05d}", user_id=first_user_id + i) for i in range(count)]


def mock_client(tmp_path: Path, handler: Any) -> SmsGatewayClient:
    """A client whose replies come from ``handler`` (byte-level cases the sandbox cannot produce)."""
    return SmsGatewayClient.connect(spec_for("https://gateway.invalid", None), context(tmp_path),
                                    transport=httpx.MockTransport(handler), sleep=no_sleep)


# --- traits and helpers --------------------------------------------------------------------------


def test_traits_declare_send_and_stop_and_a_gateway_that_can_be_asked() -> None:
    traits = ADAPTER.traits
    assert (traits.type, traits.verbs) == ("sms-gateway", {Verb.SEND_SMS, Verb.STOP_SMS_TASK})
    assert traits.sms_queryable


def test_in_batches_splits_any_iterable_into_lists_of_128() -> None:
    assert [len(batch) for batch in in_batches(iter(range(300)))] == [128, 128, 44]


# --- client endpoints ----------------------------------------------------------------------------


async def test_send_sms_returns_the_task_and_queue_size(client: SmsGatewayClient) -> None:
    receipt = await client.send_sms(recipients(3), text="hello")
    assert (receipt.task_id, receipt.sms_in_queue, receipt.sn) == (1, 3, "dbc3-0d6b-8e2c-1f47")


async def test_send_sms_queues_every_message_with_its_user_id_and_params(
    client: SmsGatewayClient, control: SandboxControl
) -> None:
    await client.send_sms([OutgoingSms("1", 41, ("Ana",)), OutgoingSms("2", 42, ("Bo",))], text="Hi #param#")
    assert [(m["user_id"], m["text"]) for m in control.state()["messages"]] == [(41, "Hi Ana"), (42, "Hi Bo")]


async def test_send_sms_passes_ports_encoding_and_status_report(
    client: SmsGatewayClient, control: SandboxControl
) -> None:
    await client.send_sms(recipients(1), text="a", ports=[7], encoding="unicode", request_status_report=True)
    message = control.state()["messages"][0]
    assert (message["port"], message["encoding"], message["status_report"]) == (7, "unicode", True)


async def test_send_sms_refuses_more_than_128_messages_without_a_request(
    client: SmsGatewayClient, control: SandboxControl
) -> None:
    with pytest.raises(ValueError):
        await client.send_sms(recipients(129), text="hello")
    assert control.requests("POST /api/send_sms") == 0


async def test_query_sms_result_sends_one_request_per_32_user_ids(
    client: SmsGatewayClient, control: SandboxControl
) -> None:
    await client.send_sms(recipients(70), text="x")
    found = await client.query_sms_result(user_ids=list(range(1, 71)))
    assert (len(found), control.requests("POST /api/query_sms_result")) == (70, 3)


async def test_query_sms_result_chunks_numbers_as_well(client: SmsGatewayClient, control: SandboxControl) -> None:
    await client.send_sms(recipients(40), text="x")
    found = await client.query_sms_result(numbers=[r.number for r in recipients(40)])
    assert (len(found), control.requests("POST /api/query_sms_result")) == (40, 2)


@pytest.mark.parametrize("concurrency", [16, 2])
async def test_the_chunks_of_one_query_are_in_flight_together_up_to_the_concurrency_limit(
    tmp_path: Path, concurrency: int
) -> None:
    """Asking about 160 keys is five requests at once (one after the other, a send group's probe took a
    round trip per 32 keys), never more than ``limits.concurrency``, and the results keep chunk order."""
    flying = {"now": 0, "most": 0}

    async def reply(request: httpx.Request) -> httpx.Response:
        flying["now"] += 1
        flying["most"] = max(flying["most"], flying["now"])
        await asyncio.sleep(0.02)
        flying["now"] -= 1
        ids = json.loads(request.content)["user_id"]
        return httpx.Response(200, json={"error_code": 200, "result": [
            {"port": 0, "number": str(i), "time": "2026-01-01 00:00:00", "status": "SENDING", "count": 1,
             "succ_count": 0, "ref_id": i, "imsi": "", "user_id": i} for i in reversed(ids)]})

    spec = gateway_spec("https://gateway.invalid", name="b1", password_env="B1_SECRET",
                        limits=BackendLimits(max_retries=0, concurrency=concurrency))
    client = SmsGatewayClient.connect(spec, context(tmp_path), transport=httpx.MockTransport(reply), sleep=no_sleep)
    try:
        found = await client.query_sms_result(user_ids=list(range(1, 161)))
    finally:
        await client.aclose()
    assert flying["most"] == min(5, concurrency)
    assert [r.user_id for r in found] == [i for start in range(1, 161, 32) for i in reversed(range(start, start + 32))]


async def test_query_sms_result_returns_typed_results(client: SmsGatewayClient, control: SandboxControl) -> None:
    await client.send_sms(recipients(1), text="x", ports=[2])
    control.advance(1)
    [result] = await client.query_sms_result(user_ids=[1])
    assert (result.port, result.user_id, result.status, result.ref_id, result.count) == (2, 1, SmsStatus.SENT_OK, 0, 1)


async def test_query_sms_result_reports_queued_messages_without_a_ref_id(client: SmsGatewayClient) -> None:
    await client.send_sms(recipients(1), text="x")
    [result] = await client.query_sms_result()
    assert (result.status, result.ref_id) == (SmsStatus.SENDING, None)


async def test_query_sms_deliver_status_reports_delivery(client: SmsGatewayClient, control: SandboxControl) -> None:
    await client.send_sms(recipients(1), text="x", request_status_report=True)
    control.advance(6)
    [status] = await client.query_sms_deliver_status(numbers=["+491700000000"])
    assert (status.delivered, status.permanent_failure, status.ref_id) == (True, False, 0)


async def test_stop_sms_stops_what_is_queued(client: SmsGatewayClient) -> None:
    receipt = await client.send_sms(recipients(5), text="x", ports=[0])
    await client.stop_sms(receipt.task_id)
    assert await client.query_sms_in_queue() == 0


async def test_stop_sms_of_an_unknown_task_raises_not_found(client: SmsGatewayClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        await client.stop_sms(999)
    assert caught.value.code == "404"


async def test_query_sms_in_queue_counts_queued_messages(client: SmsGatewayClient) -> None:
    await client.send_sms(recipients(4), text="x", ports=[0])
    assert await client.query_sms_in_queue() == 4


async def test_query_incoming_sms_lists_received_sms(
    client: SmsGatewayClient, served: tuple[SandboxServer, SmsGatewaySimulator]
) -> None:
    served[1].inject_incoming(4, "+491701234567", "STOP")
    [sms] = await client.query_incoming_sms()
    assert (sms.port, sms.number, sms.text, sms.incoming_sms_id) == (4, "+491701234567", "STOP", 1)


async def test_query_incoming_sms_unread_only_lists_each_sms_once(
    client: SmsGatewayClient, served: tuple[SandboxServer, SmsGatewaySimulator]
) -> None:
    served[1].inject_incoming(4, "+491701234567", "STOP")
    first = await client.query_incoming_sms(unread_only=True)
    assert (len(first), await client.query_incoming_sms(unread_only=True)) == (1, [])


async def test_get_port_info_lists_every_port(client: SmsGatewayClient) -> None:
    ports = await client.get_port_info()
    assert [(p.port, p.registered, p.reg) for p in ports] == [(n, True, "REGISTER_OK") for n in range(32)]


async def test_set_port_info_powers_a_port_off(client: SmsGatewayClient) -> None:
    await client.set_port_info(3, PortAction.POWER, "off")
    [port] = await client.get_port_info([3])
    assert (port.registered, port.reg) == (False, "POWER_OFF")


# --- error translation ---------------------------------------------------------------------------


async def test_bad_format_is_a_permanent_error(client: SmsGatewayClient) -> None:
    with pytest.raises(PermanentBackendError) as caught:
        await client.send_sms([OutgoingSms("1" * 25, 1)], text="x")
    assert (caught.value.code, caught.value.operation) == ("400", "send-sms")


async def test_text_over_1500_bytes_is_a_permanent_error(client: SmsGatewayClient) -> None:
    with pytest.raises(PermanentBackendError) as caught:
        await client.send_sms(recipients(1), text="x" * 1501)
    assert caught.value.code == "413"


async def test_no_port_available_is_retried_as_not_processed(
    client: SmsGatewayClient, control: SandboxControl
) -> None:
    await client.set_port_info(5, PortAction.POWER, "off")
    with pytest.raises(TemporaryBackendError) as caught:
        await client.send_sms(recipients(1), text="x", ports=[5])
    assert (caught.value.not_processed, caught.value.code) == (True, "550")
    assert control.requests("POST /api/send_sms") == 3


async def test_body_error_500_on_a_query_is_retried(tmp_path: Path) -> None:
    replies = iter([{"error_code": 500}, {"error_code": 200, "in_queue": 9}])
    client = mock_client(tmp_path, lambda request: httpx.Response(200, json=next(replies)))
    assert await client.query_sms_in_queue() == 9
    await client.aclose()


async def test_body_error_500_on_send_is_an_unknown_outcome(tmp_path: Path) -> None:
    client = mock_client(tmp_path, lambda request: httpx.Response(200, json={"error_code": 500}))
    with pytest.raises(UnknownOutcomeError):
        await client.send_sms(recipients(1), text="x")
    await client.aclose()


async def test_reply_without_error_code_is_malformed(tmp_path: Path) -> None:
    client = mock_client(tmp_path, lambda request: httpx.Response(200, json={"result": []}))
    with pytest.raises(MalformedReplyError):
        await client.query_sms_result()
    await client.aclose()


async def test_result_with_an_unknown_status_is_malformed(tmp_path: Path) -> None:
    item = {"port": 0, "number": "1", "time": "2026-01-01 00:00:00", "status": "LOST", "count": 1,
            "succ_count": 0, "ref_id": 1, "imsi": ""}
    client = mock_client(tmp_path, lambda request: httpx.Response(200, json={"error_code": 200, "result": [item]}))
    with pytest.raises(MalformedReplyError, match="unknown status 'LOST'"):
        await client.query_sms_result()
    await client.aclose()


# --- authentication, secrets, TLS ----------------------------------------------------------------


async def test_wrong_password_with_digest_is_an_auth_error(gateway: SandboxServer, tls: TlsFiles,
                                                           tmp_path: Path) -> None:
    client = SmsGatewayClient.connect(spec_for(gateway.url, tls), context(tmp_path, "wrong"))
    with pytest.raises(AuthError):
        await client.query_sms_in_queue()
    await client.aclose()


async def test_wrong_password_with_basic_is_an_auth_error(gateway: SandboxServer, tls: TlsFiles,
                                                          tmp_path: Path) -> None:
    spec = spec_for(gateway.url, tls, authScheme="basic")
    client = SmsGatewayClient.connect(spec, context(tmp_path, "wrong"))
    with pytest.raises(AuthError):
        await client.query_sms_in_queue()
    await client.aclose()


async def test_basic_auth_scheme_works(gateway: SandboxServer, tls: TlsFiles, tmp_path: Path,
                                       control: SandboxControl) -> None:
    client = SmsGatewayClient.connect(spec_for(gateway.url, tls, authScheme="basic"), context(tmp_path))
    assert await client.query_sms_in_queue() == 0
    await client.aclose()


def test_a_password_that_is_not_a_secret_reference_is_refused(tmp_path: Path) -> None:
    spec = BackendSpec(name="b1", type="sms-gateway", url="https://gateway.invalid",
                       auth={"username": "admin", "password": "admin"})
    with pytest.raises(PermanentBackendError, match="secret reference"):
        SmsGatewayClient.connect(spec, context(tmp_path))


def test_an_unknown_auth_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PermanentBackendError, match="authScheme"):
        SmsGatewayClient.connect(spec_for("https://gateway.invalid", None, authScheme="ntlm"), context(tmp_path))


async def test_the_password_appears_in_no_repr_error_or_log(gateway: SandboxServer, tls: TlsFiles,
                                                            tmp_path: Path, control: SandboxControl) -> None:
    reader = ADAPTER.reader(spec_for(gateway.url, tls), context(tmp_path, "wrong-" + SECRET))
    writer = ADAPTER.writer(spec_for(gateway.url, tls), context(tmp_path, "wrong-" + SECRET))
    control.faults(retry_after_s=0, error_rate=0.5, seed=1)
    with capture_logs() as logs:
        observation = await reader.observe(DesiredState())
        with pytest.raises(BackendError) as caught:
            await writer.apply(Action("a1", Verb.STOP_SMS_TASK, KEY, "b1", {"task_id": 1}))
    shown = " ".join([repr(reader), repr(writer), repr(vars(reader)), observation.error, str(caught.value),
                      repr(caught.value), repr(logs)])
    assert SECRET not in shown
    await reader.aclose()
    await writer.aclose()


async def test_default_verification_refuses_the_self_signed_gateway(gateway: SandboxServer,
                                                                    tmp_path: Path) -> None:
    sleeps: list[float] = []

    async def record(delay: float) -> None:
        sleeps.append(delay)

    client = SmsGatewayClient.connect(spec_for(gateway.url, None), context(tmp_path), sleep=record)
    with pytest.raises(PermanentBackendError, match="certificate verification failed"):
        await client.query_sms_in_queue()
    await client.aclose()
    assert sleeps == []  # a refused certificate is not retried


async def test_ca_file_makes_the_gateway_trusted(client: SmsGatewayClient) -> None:
    assert await client.query_sms_in_queue() == 0


async def test_verify_false_accepts_the_self_signed_gateway(gateway: SandboxServer, tmp_path: Path,
                                                            control: SandboxControl) -> None:
    unverified = gateway_spec(gateway.url, name="b1", password_env="B1_SECRET", tls=TlsSettings(verify=False))
    client = SmsGatewayClient.connect(unverified, context(tmp_path))
    assert await client.query_sms_in_queue() == 0
    await client.aclose()


# --- recovery by user_id -------------------------------------------------------------------------


async def test_query_by_user_id_tells_what_happened_to_an_unknown_send(
    client: SmsGatewayClient, control: SandboxControl
) -> None:
    await client.query_sms_in_queue()
    control.faults(drop_rate=1)
    with pytest.raises(UnknownOutcomeError):
        await client.send_sms(recipients(3), text="x")
    control.faults(drop_rate=0)
    found = await client.query_sms_result(user_ids=[1, 2, 3, 4])
    assert sorted(r.user_id or 0 for r in found) == [1, 2, 3]


# --- reader and writer ---------------------------------------------------------------------------


async def test_reader_observes_every_port(gateway: SandboxServer, tls: TlsFiles, tmp_path: Path,
                                          control: SandboxControl) -> None:
    reader = ADAPTER.reader(spec_for(gateway.url, tls), context(tmp_path))
    observation = await reader.observe(DesiredState())
    await reader.aclose()
    assert (observation.backend, observation.readable, len(observation.sms_ports)) == ("b1", True, 32)
    assert observation.sms_ports[0].registered and observation.sms_ports[0].state == "REGISTER_OK"


async def test_reader_reports_an_unreadable_gateway(gateway: SandboxServer, tls: TlsFiles, tmp_path: Path,
                                                    control: SandboxControl) -> None:
    reader = ADAPTER.reader(spec_for(gateway.url, tls), context(tmp_path, "wrong"))
    observation = await reader.observe(DesiredState())
    await reader.aclose()
    assert (observation.readable, observation.sms_ports) == (False, ())
    assert "b1 get-port-info" in observation.error


async def test_writer_stops_a_task(gateway: SandboxServer, tls: TlsFiles, tmp_path: Path,
                                   client: SmsGatewayClient, control: SandboxControl) -> None:
    receipt = await client.send_sms(recipients(2), text="x", ports=[0])
    writer = ADAPTER.writer(spec_for(gateway.url, tls), context(tmp_path))
    produced = await writer.apply(Action("a1", Verb.STOP_SMS_TASK, KEY, "b1", {"task_id": receipt.task_id}))
    await writer.aclose()
    assert produced == {"task_id": receipt.task_id}
    assert control.state()["tasks"][0]["stopped"] is True


async def test_writer_refuses_other_verbs(gateway: SandboxServer, tls: TlsFiles, tmp_path: Path) -> None:
    writer = ADAPTER.writer(spec_for(gateway.url, tls), context(tmp_path))
    with pytest.raises(PermanentBackendError, match="send ledger"):
        await writer.apply(Action("a1", Verb.SEND_SMS, KEY, "b1"))
    await writer.aclose()


async def test_writer_refuses_a_stop_without_task_id(gateway: SandboxServer, tls: TlsFiles,
                                                     tmp_path: Path) -> None:
    writer = ADAPTER.writer(spec_for(gateway.url, tls), context(tmp_path))
    with pytest.raises(PermanentBackendError, match="task_id"):
        await writer.apply(Action("a1", Verb.STOP_SMS_TASK, KEY, "b1"))
    await writer.aclose()


# --- pushes --------------------------------------------------------------------------------------

SEED_PUSH = {"sn": "xxxx-xxxx-xxxx-xxxx", "sms_result": [{
    "port": 1, "number": " 10086", "time": "2016-07-12 01:46:02", "status": "DELIVERED", "count": 1,
    "succ_count": 1, "ref_id": 215, "imsi": "460004642148063"}]}


def test_parse_push_reads_the_seeds_push_example() -> None:
    push = parse_push(SEED_PUSH)
    [result] = push.results
    assert (push.kind, push.sn) == (PushKind.RESULTS, "xxxx-xxxx-xxxx-xxxx")
    assert (result.number, result.status, result.ref_id, result.user_id) == ("10086", SmsStatus.DELIVERED, 215, None)
    assert result.time.isoformat() == "2016-07-12T01:46:02"


def test_parse_push_rejects_a_misspelt_key_naming_it() -> None:
    item = dict(SEED_PUSH["sms_result"][0])  # type: ignore[index]
    item["ref_i d"] = item.pop("ref_id")
    with pytest.raises(GatewayPushError, match="sms_result\\[0\\]: missing key 'ref_id'"):
        parse_push({"sn": "x", "sms_result": [item]})


def test_parse_push_reads_a_delivery_report() -> None:
    push = parse_push({"sn": "x", "sms_deliver_status": [
        {"port": 1, "number": "10086", "time": "2026-01-01 00:00:05", "ref_id": 3, "status_code": 65, "imsi": ""}]})
    assert (push.kind, push.deliver_statuses[0].permanent_failure) == (PushKind.DELIVER_STATUS, True)


def test_parse_push_reads_an_incoming_sms() -> None:
    push = parse_push({"sn": "x", "sms": [{"incoming_sms_id": 7, "port": 2, "number": "10086", "smsc": "+86",
                                           "timestamp": "2026-01-01 00:00:05", "text": "hi", "imsi": "4600"}]})
    assert (push.kind, push.incoming[0].text) == (PushKind.INCOMING, "hi")


@pytest.mark.parametrize(
    "payload",
    [{"sn": "x"}, {"sn": "x", "sms": [], "sms_result": []}, {"sn": "x", "sms_result": {}}, {"sms_result": []}],
    ids=["no-items", "two-kinds", "items-not-array", "no-sn"],
)
def test_parse_push_rejects_other_payloads(payload: dict[str, Any]) -> None:
    with pytest.raises(GatewayPushError):
        parse_push(payload)


def test_every_push_the_simulator_makes_parses(tls: TlsFiles) -> None:
    receiver = PushReceiver()
    with running_simulator(receiver, clock=SimClock()) as push_server:
        clock = frozen_clock()
        simulator = SmsGatewaySimulator(clock=clock, push_url=f"{push_server.url}/push")
        with running_simulator(simulator, clock=clock, tls=tls) as server:
            with httpx.Client(base_url=server.url, auth=("admin", "admin"),
                              verify=ssl.create_default_context(cafile=str(tls.ca_file))) as http:
                http.post("/api/send_sms", json={"text": "x", "param": [{"number": "1", "user_id": 5}],
                                                 "request_status_report": True})
                SandboxControl.over(http).advance(6)
                simulator.inject_incoming(0, "10086", "hi")
                pushes = [receiver.wait_for(key) for key in ("sms_result", "sms_deliver_status", "sms")]
    assert [parse_push(payload).kind for payload in pushes] == [
        PushKind.RESULTS, PushKind.DELIVER_STATUS, PushKind.INCOMING]
