"""The SMS gateway simulator over real HTTPS: Digest/Basic auth, the seed's API and limits, the send
queues on the simulated clock, delivery reports, port control, pushes and persistence."""

from __future__ import annotations

import hashlib
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.request import parse_http_list, parse_keqv_list

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import SandboxServer, TlsFiles
from reconciler.sandbox.sms_gateway.app import SmsGatewaySimulator
from reconciler.sandbox.testing import SandboxControl, running_simulator
from reconciler.sandbox.tls import generate_tls_files

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC


def frozen_clock() -> SimClock:
    """Simulated time that moves only when a test advances it."""
    return SimClock(real=lambda: T0)


class PushReceiver:
    """A loopback endpoint (served by the sandbox harness) that keeps every JSON body POSTed to it."""

    name = "push-receiver"

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []

    def routes(self) -> list[BaseRoute]:
        return [Route("/push", self._receive, methods=["POST"])]

    async def _receive(self, request: Request) -> JSONResponse:
        self.payloads.append(await request.json())
        return JSONResponse({"ok": True})

    def wait_for(self, key: str, *, timeout: float = 5.0) -> dict[str, Any]:
        """The first payload carrying ``key`` (pushes are asynchronous, so poll briefly)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for payload in self.payloads:
                if key in payload:
                    return payload
            time.sleep(0.01)
        raise AssertionError(f"no push with {key!r} arrived; got {self.payloads}")

    def advance(self, now: float) -> None:
        return None

    def reset(self) -> None:
        self.payloads.clear()

    def snapshot(self) -> dict[str, Any]:
        return {"payloads": self.payloads}

    def restore(self, data: dict[str, Any]) -> None:
        self.payloads = list(data["payloads"])

    def malformed(self, body: bytes) -> bytes:
        return body[: len(body) // 2]


def trusting(tls: TlsFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls.ca_file))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return generate_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def gateway(tls: TlsFiles) -> Iterator[SandboxServer]:
    clock = frozen_clock()
    with running_simulator(SmsGatewaySimulator(clock=clock, seed=7), clock=clock, tls=tls) as server:
        yield server


@pytest.fixture
def api(gateway: SandboxServer, tls: TlsFiles) -> Iterator[httpx.Client]:
    """A Digest-authenticated client of the shared gateway, reset to its fixtures."""
    with httpx.Client(base_url=gateway.url, verify=trusting(tls), auth=httpx.DigestAuth("admin", "admin"),
                      timeout=5) as client:
        SandboxControl.over(client).reset()
        yield client


@contextmanager
def serve(tls: TlsFiles, **options: Any) -> Iterator[tuple[SmsGatewaySimulator, httpx.Client]]:
    """A gateway of its own with ``options``, and a Digest-authenticated client for it."""
    clock = frozen_clock()
    simulator = SmsGatewaySimulator(clock=clock, seed=7, **options)
    with running_simulator(simulator, clock=clock, tls=tls) as server:
        with httpx.Client(base_url=server.url, verify=trusting(tls), auth=httpx.DigestAuth("admin", "admin"),
                          timeout=5) as client:
            yield simulator, client


def send(api: httpx.Client, numbers: list[str], text: str = "hello", **extra: Any) -> dict[str, Any]:
    params = [{"number": number, "user_id": 100 + i} for i, number in enumerate(numbers)]
    return api.post("/api/send_sms", json={"text": text, "param": params, **extra}).json()


def results(api: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    reply = api.post("/api/query_sms_result", json=filters).json()
    assert reply["error_code"] == 200, reply
    return list(reply["result"])


def deliver_statuses(api: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    return list(api.post("/api/query_sms_deliver_status", json=filters).json()["result"])


def numbers(count: int) -> list[str]:
    return [f"+4917000{i:05d}" for i in range(count)]


# --- authentication ------------------------------------------------------------------------------


def digest_challenge(reply: httpx.Response) -> dict[str, str]:
    digest = next(v for v in reply.headers.get_list("www-authenticate") if v.startswith("Digest "))
    return parse_keqv_list(parse_http_list(digest.removeprefix("Digest ")))


def digest_header(challenge: dict[str, str], *, method: str, uri: str, nc: int, password: str = "admin") -> str:
    """An RFC 7616 MD5 / qop=auth Authorization header, computed independently of the simulator."""
    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    count, cnonce = f"{nc:08x}", "0a4f113b"
    ha1 = md5(f"admin:{challenge['realm']}:{password}")
    response = md5(f"{ha1}:{challenge['nonce']}:{count}:{cnonce}:auth:{md5(f'{method}:{uri}')}")
    return (f'Digest username="admin", realm="{challenge["realm"]}", nonce="{challenge["nonce"]}", '
            f'uri="{uri}", qop=auth, nc={count}, cnonce="{cnonce}", response="{response}", algorithm=MD5')


@pytest.fixture
def bare(gateway: SandboxServer, tls: TlsFiles, api: httpx.Client) -> Iterator[httpx.Client]:
    """A client without credentials (the ``api`` fixture has reset the gateway)."""
    with httpx.Client(base_url=gateway.url, verify=trusting(tls), timeout=5) as client:
        yield client


def test_request_without_credentials_gets_a_digest_and_a_basic_challenge(bare: httpx.Client) -> None:
    reply = bare.get("/api/query_sms_in_queue")
    challenges = reply.headers.get_list("www-authenticate")
    assert reply.status_code == 401
    assert challenges[0].startswith('Digest realm="Web Server", qop="auth", nonce="')
    assert challenges[0].endswith("algorithm=MD5")
    assert challenges[1] == 'Basic realm="Web Server"'


def test_digest_with_the_right_password_is_accepted(bare: httpx.Client) -> None:
    challenge = digest_challenge(bare.get("/api/query_sms_in_queue"))
    header = digest_header(challenge, method="GET", uri="/api/query_sms_in_queue", nc=1)
    reply = bare.get("/api/query_sms_in_queue", headers={"Authorization": header})
    assert (reply.status_code, reply.json()["error_code"]) == (200, 200)


def test_digest_with_a_wrong_password_is_refused_without_stale(bare: httpx.Client) -> None:
    challenge = digest_challenge(bare.get("/api/query_sms_in_queue"))
    header = digest_header(challenge, method="GET", uri="/api/query_sms_in_queue", nc=1, password="nope")
    reply = bare.get("/api/query_sms_in_queue", headers={"Authorization": header})
    assert reply.status_code == 401
    assert "stale" not in digest_challenge(reply)


def test_httpx_digest_auth_with_a_wrong_password_is_refused(gateway: SandboxServer, tls: TlsFiles) -> None:
    with httpx.Client(base_url=gateway.url, verify=trusting(tls), auth=httpx.DigestAuth("admin", "nope")) as client:
        assert client.get("/api/query_sms_in_queue").status_code == 401


def test_digest_bound_to_another_uri_is_refused(bare: httpx.Client) -> None:
    challenge = digest_challenge(bare.get("/api/query_sms_in_queue"))
    header = digest_header(challenge, method="GET", uri="/api/get_port_info", nc=1)
    assert bare.get("/api/query_sms_in_queue", headers={"Authorization": header}).status_code == 401


def test_a_nonce_count_is_accepted_only_once(bare: httpx.Client) -> None:
    challenge = digest_challenge(bare.get("/api/query_sms_in_queue"))
    header = digest_header(challenge, method="GET", uri="/api/query_sms_in_queue", nc=1)
    first = bare.get("/api/query_sms_in_queue", headers={"Authorization": header})
    replay = bare.get("/api/query_sms_in_queue", headers={"Authorization": header})
    assert (first.status_code, replay.status_code) == (200, 401)


def test_nonce_counts_may_arrive_out_of_order(bare: httpx.Client) -> None:
    challenge = digest_challenge(bare.get("/api/query_sms_in_queue"))
    statuses = [
        bare.get("/api/query_sms_in_queue",
                 headers={"Authorization": digest_header(challenge, method="GET", uri="/api/query_sms_in_queue",
                                                         nc=nc)}).status_code
        for nc in (2, 1, 3)
    ]
    assert statuses == [200, 200, 200]


def test_expired_nonce_with_a_correct_response_gets_a_stale_challenge(
    bare: httpx.Client, api: httpx.Client
) -> None:
    challenge = digest_challenge(bare.get("/api/query_sms_in_queue"))
    SandboxControl.over(api).advance(301)
    header = digest_header(challenge, method="GET", uri="/api/query_sms_in_queue", nc=1)
    reply = bare.get("/api/query_sms_in_queue", headers={"Authorization": header})
    assert reply.status_code == 401
    assert digest_challenge(reply)["stale"] == "true"
    assert digest_challenge(reply)["nonce"] != challenge["nonce"]


def test_httpx_digest_client_carries_on_after_its_nonce_expires(api: httpx.Client) -> None:
    assert api.get("/api/query_sms_in_queue").status_code == 200
    SandboxControl.over(api).advance(301)
    assert api.get("/api/query_sms_in_queue").json()["error_code"] == 200


def test_basic_credentials_are_accepted(bare: httpx.Client) -> None:
    reply = bare.get("/api/query_sms_in_queue", auth=("admin", "admin"))
    assert reply.json()["error_code"] == 200


def test_basic_with_a_wrong_password_is_refused(bare: httpx.Client) -> None:
    assert bare.get("/api/query_sms_in_queue", auth=("admin", "nope")).status_code == 401


def test_credentials_are_configurable(tls: TlsFiles) -> None:
    with serve(tls, username="ops", password="s3cret") as (_, client):
        assert client.get("/api/query_sms_in_queue", auth=("ops", "s3cret")).json()["error_code"] == 200


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not on PATH")
def test_the_seeds_curl_example_works_as_written(api: httpx.Client, gateway: SandboxServer) -> None:
    api.post("/api/send_sms", json={"text": "hi", "param": [{"number": "12351", "user_id": 1},
                                                            {"number": "12352", "user_id": 2}]})
    command = ["curl", "-s", "-k", "--anyauth", "-u", "admin:admin", "-d", '{"user_id":[1,2]}',
               "-H", "Content-Type: application/json", f"{gateway.url}/api/query_sms_result"]
    output = subprocess.run(command, capture_output=True, text=True, timeout=20, check=True).stdout
    reply = httpx.Response(200, content=output).json()
    assert reply["error_code"] == 200
    assert [item["user_id"] for item in reply["result"]] == [1, 2]


# --- send_sms and its limits ---------------------------------------------------------------------


def test_send_sms_accepts_with_202_task_and_queue_size(api: httpx.Client) -> None:
    reply = send(api, numbers(3))
    assert reply == {"error_code": 202, "sn": "dbc3-0d6b-8e2c-1f47", "sms_in_queue": 3, "task_id": 1}


def test_send_sms_with_129_numbers_is_413(api: httpx.Client) -> None:
    assert send(api, numbers(129))["error_code"] == 413


def test_send_sms_with_text_over_1500_bytes_is_413(api: httpx.Client) -> None:
    assert send(api, numbers(1), text="é" * 751)["error_code"] == 413


def test_send_sms_with_a_number_over_24_bytes_is_400(api: httpx.Client) -> None:
    assert send(api, ["1" * 25])["error_code"] == 400


@pytest.mark.parametrize(
    "body",
    [
        {"param": [{"number": "1"}]},
        {"text": "x", "param": []},
        {"text": "x", "param": [{"number": "1", "user_id": "7"}]},
        {"text": "x", "param": [{"number": "1"}], "encoding": "latin-1"},
        {"text": "x", "param": [{"number": "1"}], "port": [32]},
        {"text": "x", "param": [{"number": "1"}], "request_status_report": "yes"},
    ],
    ids=["no-text", "no-param", "string-user-id", "bad-encoding", "port-32", "non-bool-report"],
)
def test_send_sms_with_a_bad_format_is_400(api: httpx.Client, body: dict[str, Any]) -> None:
    assert api.post("/api/send_sms", json=body).json()["error_code"] == 400


def test_send_sms_with_a_body_that_is_not_json_is_400(api: httpx.Client) -> None:
    assert api.post("/api/send_sms", content=b"{text").json()["error_code"] == 400


def test_send_sms_without_any_registered_port_is_550(tls: TlsFiles) -> None:
    with serve(tls, unregistered_ports=range(32)) as (_, client):
        assert send(client, numbers(1))["error_code"] == 550


def test_send_sms_to_only_unregistered_ports_is_550(tls: TlsFiles) -> None:
    with serve(tls, unregistered_ports=[5]) as (_, client):
        assert send(client, numbers(1), port=[5])["error_code"] == 550


def test_param_placeholder_is_replaced_by_the_first_text_param(api: httpx.Client) -> None:
    api.post("/api/send_sms", json={"text": "Hi #param#, see you", "param": [
        {"number": "1", "text_param": ["Ana", "ignored"], "user_id": 1}]})
    assert SandboxControl.over(api).state()["messages"][0]["text"] == "Hi Ana, see you"


def test_placeholders_take_values_in_order(api: httpx.Client) -> None:
    api.post("/api/send_sms", json={"text": "#param#-#param#", "param": [
        {"number": "1", "text_param": ["a", "b"], "user_id": 1}]})
    assert SandboxControl.over(api).state()["messages"][0]["text"] == "a-b"


def test_a_placeholder_without_a_value_becomes_empty(api: httpx.Client) -> None:
    api.post("/api/send_sms", json={"text": "Hi #param##param#!", "param": [
        {"number": "1", "text_param": ["Ana"], "user_id": 1}, {"number": "2", "user_id": 2}]})
    assert [m["text"] for m in SandboxControl.over(api).state()["messages"]] == ["Hi Ana!", "Hi !"]


def test_every_message_keeps_its_user_id_in_acceptance_order(api: httpx.Client) -> None:
    send(api, numbers(2))
    send(api, numbers(1))
    messages = SandboxControl.over(api).state()["messages"]
    assert [(m["task_id"], m["user_id"]) for m in messages] == [(1, 100), (1, 101), (2, 100)]


@pytest.mark.parametrize(
    ("text", "encoding", "count"),
    [("a" * 160, "gsm-7bit", 1), ("a" * 161, "gsm-7bit", 2), ("a" * 307, "gsm-7bit", 3),
     ("a" * 159 + "€", "gsm-7bit", 2), ("ж" * 70, "unicode", 1), ("ж" * 71, "unicode", 2),
     ("ж" * 135, "unicode", 3)],
    ids=["gsm-160", "gsm-161", "gsm-307", "gsm-extension-char", "ucs2-70", "ucs2-71", "ucs2-135"],
)
def test_long_texts_are_split_into_segments(api: httpx.Client, text: str, encoding: str, count: int) -> None:
    send(api, numbers(1), text=text)
    message = SandboxControl.over(api).state()["messages"][0]
    assert (message["encoding"], message["count"]) == (encoding, count)


def test_requested_encoding_wins_over_the_detected_one(api: httpx.Client) -> None:
    send(api, numbers(1), text="a" * 71, encoding="unicode")
    assert SandboxControl.over(api).state()["messages"][0]["count"] == 2


# --- the send queues on the simulated clock ------------------------------------------------------


def test_queued_messages_are_reported_as_sending(api: httpx.Client) -> None:
    send(api, numbers(2))
    assert [(r["status"], r["ref_id"], r["succ_count"]) for r in results(api)] == [("SENDING", None, 0)] * 2


def test_each_port_sends_at_the_configured_rate(api: httpx.Client) -> None:
    send(api, numbers(25), port=[0])
    SandboxControl.over(api).advance(1.0)
    assert sum(r["status"] == "SENT_OK" for r in results(api)) == 10


def test_query_sms_in_queue_counts_what_is_not_sent_yet(api: httpx.Client) -> None:
    send(api, numbers(5), port=[0])
    SandboxControl.over(api).advance(0.2)
    assert api.get("/api/query_sms_in_queue").json() == {"error_code": 200, "sn": "dbc3-0d6b-8e2c-1f47",
                                                         "in_queue": 3}


def test_messages_of_a_task_go_round_robin_over_its_ports(api: httpx.Client) -> None:
    send(api, numbers(4), port=[2, 1])
    assert [r["port"] for r in results(api)] == [1, 2, 1, 2]


def test_sent_message_counts_every_segment_as_sent(api: httpx.Client) -> None:
    send(api, numbers(1), text="a" * 161)
    SandboxControl.over(api).advance(1)
    assert [(r["status"], r["count"], r["succ_count"]) for r in results(api)] == [("SENT_OK", 2, 2)]


def test_ref_id_counts_per_port_and_wraps_after_255(api: httpx.Client) -> None:
    for batch in (numbers(128), numbers(128), numbers(1)):
        send(api, batch, port=[3])
    SandboxControl.over(api).advance(30)
    assert [r["ref_id"] for r in results(api)] == [*range(256), 0]


def test_a_multi_segment_message_takes_one_ref_id_per_segment(api: httpx.Client) -> None:
    send(api, numbers(1), text="a" * 161, port=[4])
    send(api, numbers(1), port=[4])
    SandboxControl.over(api).advance(1)
    assert [r["ref_id"] for r in results(api)] == [0, 2]


def test_result_time_is_the_sending_time(tls: TlsFiles) -> None:
    with serve(tls, send_rate_per_port=1 / 60) as (_, client):
        send(client, numbers(1))
        queued = results(client)[0]["time"]
        SandboxControl.over(client).advance(60)
        assert (queued, results(client)[0]["time"]) == ("2026-01-01 00:00:00", "2026-01-01 00:01:00")


def test_requested_status_report_makes_the_message_delivered_after_the_delay(api: httpx.Client) -> None:
    send(api, numbers(1), request_status_report=True)
    SandboxControl.over(api).advance(0.1)
    sent = results(api)[0]["status"]
    SandboxControl.over(api).advance(5)
    assert (sent, results(api)[0]["status"]) == ("SENT_OK", "DELIVERED")


def test_delivery_report_carries_status_code_zero_and_the_ref_id(api: httpx.Client) -> None:
    send(api, numbers(2), request_status_report=True, port=[6])
    SandboxControl.over(api).advance(6)
    reports = deliver_statuses(api)
    assert [(r["port"], r["number"], r["ref_id"], r["status_code"]) for r in reports] == [
        (6, "+491700000000", 0, 0), (6, "+491700000001", 1, 0)]


def test_without_a_status_report_request_there_is_no_delivery(api: httpx.Client) -> None:
    send(api, numbers(1))
    SandboxControl.over(api).advance(60)
    assert (results(api)[0]["status"], deliver_statuses(api)) == ("SENT_OK", [])


def test_failed_messages_report_a_failure_status_code(tls: TlsFiles) -> None:
    with serve(tls, failure_rate=1.0) as (_, client):
        send(client, numbers(3), request_status_report=True)
        SandboxControl.over(client).advance(6)
        assert {(r["status"], r["succ_count"]) for r in results(client)} == {("FAILED", 0)}
        assert all(32 <= r["status_code"] <= 255 for r in deliver_statuses(client))


def test_delivery_takes_the_configured_delay(tls: TlsFiles) -> None:
    with serve(tls, delivery_delay_s=60) as (_, client):
        send(client, numbers(1), request_status_report=True)
        SandboxControl.over(client).advance(30)
        assert deliver_statuses(client) == []


def test_send_rate_is_configurable(tls: TlsFiles) -> None:
    with serve(tls, send_rate_per_port=1.0) as (_, client):
        send(client, numbers(5), port=[0])
        SandboxControl.over(client).advance(2.5)
        assert client.get("/api/query_sms_in_queue").json()["in_queue"] == 3


# --- queries -------------------------------------------------------------------------------------


def test_query_with_33_numbers_is_413(api: httpx.Client) -> None:
    assert api.post("/api/query_sms_result", json={"number": numbers(33)}).json()["error_code"] == 413


def test_query_with_33_user_ids_is_413(api: httpx.Client) -> None:
    assert api.post("/api/query_sms_result", json={"user_id": list(range(33))}).json()["error_code"] == 413


def test_deliver_status_query_with_33_numbers_is_413(api: httpx.Client) -> None:
    reply = api.post("/api/query_sms_deliver_status", json={"number": numbers(33)}).json()
    assert reply["error_code"] == 413


def test_query_with_a_malformed_time_is_400(api: httpx.Client) -> None:
    assert api.post("/api/query_sms_result", json={"time_after": "yesterday"}).json()["error_code"] == 400


def test_results_filter_by_user_id(api: httpx.Client) -> None:
    send(api, numbers(3))
    assert [r["user_id"] for r in results(api, user_id=[102, 100])] == [100, 102]


def test_results_filter_by_number(api: httpx.Client) -> None:
    send(api, numbers(3))
    assert [r["number"] for r in results(api, number=["+491700000001"])] == ["+491700000001"]


def test_results_filter_by_port(api: httpx.Client) -> None:
    send(api, numbers(4), port=[7, 8])
    assert [r["user_id"] for r in results(api, port=[8])] == [101, 103]


def test_results_filter_by_time_window(api: httpx.Client) -> None:
    send(api, numbers(1))
    SandboxControl.over(api).advance(3600)
    send(api, numbers(1), port=[9])
    now = SandboxControl.over(api).now()
    after = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now - 60))
    assert [r["port"] for r in results(api, time_after=after)] == [9]
    assert [r["port"] for r in results(api, time_before=after)] == [0]


# --- stop_sms ------------------------------------------------------------------------------------


def test_stop_sms_fails_the_queued_messages_of_the_task(api: httpx.Client) -> None:
    task_id = send(api, numbers(20), port=[0])["task_id"]
    SandboxControl.over(api).advance(0.5)
    assert api.get("/api/stop_sms", params={"task_id": task_id}).json()["error_code"] == 200
    SandboxControl.over(api).advance(10)
    statuses = [r["status"] for r in results(api)]
    assert (statuses.count("SENT_OK"), statuses.count("FAILED")) == (5, 15)


def test_stopped_messages_leave_the_queue(api: httpx.Client) -> None:
    task_id = send(api, numbers(20), port=[0])["task_id"]
    api.get("/api/stop_sms", params={"task_id": task_id})
    assert api.get("/api/query_sms_in_queue").json()["in_queue"] == 0


def test_stop_sms_leaves_other_tasks_alone(api: httpx.Client) -> None:
    first = send(api, numbers(2), port=[0])["task_id"]
    send(api, numbers(2), port=[0])
    api.get("/api/stop_sms", params={"task_id": first})
    SandboxControl.over(api).advance(1)
    assert [r["status"] for r in results(api)] == ["FAILED", "FAILED", "SENT_OK", "SENT_OK"]


def test_stop_sms_of_an_unknown_task_is_404(api: httpx.Client) -> None:
    assert api.get("/api/stop_sms", params={"task_id": 999}).json()["error_code"] == 404


def test_stop_sms_without_a_task_id_is_400(api: httpx.Client) -> None:
    assert api.get("/api/stop_sms").json()["error_code"] == 400


# --- incoming SMS and ports ----------------------------------------------------------------------


@pytest.fixture
def gateway_sim(tls: TlsFiles) -> Iterator[tuple[SmsGatewaySimulator, httpx.Client]]:
    with serve(tls) as served:
        yield served


def test_injected_incoming_sms_is_listed(gateway_sim: tuple[SmsGatewaySimulator, httpx.Client]) -> None:
    simulator, client = gateway_sim
    client.get("/api/query_sms_in_queue")
    simulator.inject_incoming(3, "+491701234567", "STOP")
    sms = client.get("/api/query_incoming_sms").json()["sms"]
    assert sms == [{"incoming_sms_id": 1, "port": 3, "number": "+491701234567", "smsc": "+8613800100500",
                    "timestamp": "2026-01-01 00:00:00", "text": "STOP", "imsi": "460004642141003"}]


def test_unread_flag_lists_each_incoming_sms_once(gateway_sim: tuple[SmsGatewaySimulator, httpx.Client]) -> None:
    simulator, client = gateway_sim
    simulator.inject_incoming(0, "+491701234567", "yes")
    first = client.get("/api/query_incoming_sms", params={"flag": "unread"}).json()["sms"]
    second = client.get("/api/query_incoming_sms", params={"flag": "unread"}).json()["sms"]
    assert (len(first), second) == (1, [])


def test_port_info_lists_all_32_ports_registered_by_default(api: httpx.Client) -> None:
    info = api.get("/api/get_port_info").json()["info"]
    assert [(i["port"], i["reg"]) for i in info] == [(port, "REGISTER_OK") for port in range(32)]


def test_port_info_returns_the_requested_ports_and_fields(api: httpx.Client) -> None:
    reply = api.get("/api/get_port_info", params={"port": "1,2", "info_type": "imsi,reg"}).json()
    assert reply["info"] == [{"port": 1, "imsi": "460004642141001", "reg": "REGISTER_OK"},
                             {"port": 2, "imsi": "460004642141002", "reg": "REGISTER_OK"}]


def test_unregistered_ports_report_no_sim(tls: TlsFiles) -> None:
    with serve(tls, unregistered_ports=[2], port_count=4) as (_, client):
        info = client.get("/api/get_port_info").json()["info"]
        assert [(i["port"], i["reg"], i["imsi"]) for i in info][1:3] == [(1, "REGISTER_OK", "460004642141001"),
                                                                          (2, "NO_SIM", "")]


def test_port_info_for_a_port_beyond_the_port_count_is_400(tls: TlsFiles) -> None:
    with serve(tls, port_count=4) as (_, client):
        assert client.get("/api/get_port_info", params={"port": "4"}).json()["error_code"] == 400


def test_power_off_makes_a_port_unregistered(api: httpx.Client) -> None:
    api.get("/api/set_port_info", params={"port": 5, "action": "power", "param": "off"})
    info = api.get("/api/get_port_info", params={"port": "5", "info_type": "reg"}).json()["info"]
    assert info == [{"port": 5, "reg": "POWER_OFF"}]


def test_sending_to_a_powered_off_port_is_550(api: httpx.Client) -> None:
    api.get("/api/set_port_info", params={"port": 5, "action": "power", "param": "off"})
    assert send(api, numbers(1), port=[5])["error_code"] == 550


def test_powering_a_port_off_fails_what_it_had_queued(api: httpx.Client) -> None:
    send(api, numbers(3), port=[5])
    api.get("/api/set_port_info", params={"port": 5, "action": "power", "param": "off"})
    assert [r["status"] for r in results(api)] == ["FAILED"] * 3


def test_switching_the_sim_slot_changes_the_imsi(api: httpx.Client) -> None:
    api.get("/api/set_port_info", params={"port": 1, "action": "slot", "param": "2"})
    info = api.get("/api/get_port_info", params={"port": "1", "info_type": "imsi"}).json()["info"]
    assert info == [{"port": 1, "imsi": "460004642142001"}]


def test_setting_the_imei_changes_it(api: httpx.Client) -> None:
    api.get("/api/set_port_info", params={"port": 1, "action": "imei", "param": "356938035643809"})
    info = api.get("/api/get_port_info", params={"port": "1", "info_type": "imei"}).json()["info"]
    assert info == [{"port": 1, "imei": "356938035643809"}]


def test_set_port_info_with_an_unknown_action_is_400(api: httpx.Client) -> None:
    reply = api.get("/api/set_port_info", params={"port": 1, "action": "explode"}).json()
    assert reply["error_code"] == 400


# --- pushes --------------------------------------------------------------------------------------


@pytest.fixture
def pushed(tls: TlsFiles) -> Iterator[tuple[PushReceiver, SmsGatewaySimulator, httpx.Client]]:
    receiver = PushReceiver()
    with running_simulator(receiver, clock=SimClock()) as server:
        with serve(tls, push_url=f"{server.url}/push") as (simulator, client):
            yield receiver, simulator, client


def test_sending_results_are_pushed(pushed: tuple[PushReceiver, SmsGatewaySimulator, httpx.Client]) -> None:
    receiver, _, client = pushed
    send(client, ["10086"])
    SandboxControl.over(client).advance(1)
    payload = receiver.wait_for("sms_result")
    assert payload["sn"] == "dbc3-0d6b-8e2c-1f47"
    assert [(r["number"], r["status"], r["user_id"]) for r in payload["sms_result"]] == [("10086", "SENT_OK", 100)]


def test_delivery_reports_are_pushed(pushed: tuple[PushReceiver, SmsGatewaySimulator, httpx.Client]) -> None:
    receiver, _, client = pushed
    send(client, ["10086"], request_status_report=True)
    SandboxControl.over(client).advance(6)
    payload = receiver.wait_for("sms_deliver_status")
    assert [(r["number"], r["status_code"]) for r in payload["sms_deliver_status"]] == [("10086", 0)]


def test_incoming_sms_is_pushed(pushed: tuple[PushReceiver, SmsGatewaySimulator, httpx.Client]) -> None:
    receiver, simulator, client = pushed
    client.get("/api/query_sms_in_queue")
    simulator.inject_incoming(2, "10086", "balance 5.00")
    assert [m["text"] for m in receiver.wait_for("sms")["sms"]] == ["balance 5.00"]


def test_a_failed_push_is_counted_in_the_state(tls: TlsFiles) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with serve(tls, push_url=f"http://127.0.0.1:{closed_port}/push") as (_, client):
        send(client, numbers(1))
        SandboxControl.over(client).advance(1)
        deadline = time.monotonic() + 5
        while SandboxControl.over(client).state()["pushes"]["failed"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert SandboxControl.over(client).state()["pushes"]["failed"] == 1


# --- harness integration: faults, state, persistence ---------------------------------------------


def test_malformed_fault_truncates_the_json_reply(api: httpx.Client) -> None:
    api.get("/api/query_sms_in_queue")
    SandboxControl.over(api).faults(malformed_rate=1)
    with pytest.raises(ValueError):
        api.get("/api/query_sms_in_queue").json()


def test_state_lists_tasks_and_ports(api: httpx.Client) -> None:
    send(api, numbers(3), port=[0, 1])
    snapshot = SandboxControl.over(api).state()
    assert snapshot["tasks"][0] | {"accepted_at": 0} == {"task_id": 1, "ports": [0, 1], "first_index": 0,
                                                          "count": 3, "accepted_at": 0, "stopped": False}
    assert len(snapshot["ports"]) == 32


def test_restored_state_equals_the_snapshot(api: httpx.Client) -> None:
    send(api, numbers(3), request_status_report=True)
    SandboxControl.over(api).advance(0.1)
    snapshot = SandboxControl.over(api).state()
    restored = SmsGatewaySimulator(clock=frozen_clock())
    restored.restore(snapshot)
    assert restored.snapshot() == snapshot


def test_restored_queue_goes_on_sending(api: httpx.Client) -> None:
    send(api, numbers(3), port=[0])
    snapshot = SandboxControl.over(api).state()
    restored = SmsGatewaySimulator(clock=frozen_clock())
    restored.restore(snapshot)
    restored.advance(snapshot["messages"][-1]["accepted_at"] + 1)
    assert [m["status"] for m in restored.snapshot()["messages"]] == ["SENT_OK"] * 3


def test_invalid_options_are_refused() -> None:
    with pytest.raises(ValueError):
        SmsGatewaySimulator(clock=frozen_clock(), port_count=33)
