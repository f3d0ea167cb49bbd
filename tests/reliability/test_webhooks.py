"""Webhook receivers of a real ``reconcile watch`` under hostile pushes: no token configured, near-miss
tokens, bodies over the limit without a Content-Length, malformed bodies of every shape (not JSON, bad
UTF-8, a JSON list or number, 100,000 levels of nesting, a push of the wrong structure), replays, and a
flood. Each is rejected (404, 413, 400) or ignored (a replay), is counted in ``/metrics`` under its
result, triggers no reconcile pass, and leaves the daemon healthy. (``tests/daemon/test_watch.py``
covers the plain wrong token, one replay and a declared oversized body.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from tests.daemon.daemon_process import TOKEN, DaemonProcess, eventually
from tests.reliability import fleet as fl

MAX_BODY = 1024 * 1024
SOURCES = {"sms-gateway": "sms-gateway", "iot": "iot-campaigns"}  # URL segment -> metric label


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxOptions(port_base=0, gateway_count=20, seed=12)) as running:
        yield running


def start_daemon(root: Path, sandbox: RunningSandbox, *extra: str) -> DaemonProcess:
    fleet = fl.write_fleet(root, sandbox, fl.spec(iot_campaigns=1, gateways_per_campaign=2))
    daemon = DaemonProcess(fleet.root, str(fleet.decl), "--state", fleet.state_url, "--resync", "600",
                           "--debounce-ms", "50", *extra, env=fl.SANDBOX_SECRETS)
    daemon.wait_ready()
    return daemon


@pytest.fixture(scope="module")
def daemon(sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    running = start_daemon(tmp_path_factory.mktemp("hooks") / "ops", sandbox, "--webhook-token-env", "HOOK_TOKEN")
    yield running
    running.stop()


def counted(daemon: DaemonProcess, source: str, result: str) -> float:
    """``reconcile_webhooks_total`` for one source and result (0 when never counted)."""
    for line in daemon.get("/metrics").text.splitlines():
        if line.startswith("reconcile_webhooks_total{") and f'source="{source}"' in line \
                and f'result="{result}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def passes(daemon: DaemonProcess) -> int:
    return int(daemon.status()["passes"])


def post(daemon: DaemonProcess, source: str, token: str, **request: object) -> httpx.Response:
    return httpx.post(f"{daemon.url}/webhooks/{source}/{token}", timeout=30, **request)  # type: ignore[arg-type]


def test_pushes_to_a_daemon_without_a_token_are_all_rejected(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """With no token configured, no URL is a receiver: every push is 404 and counted unauthenticated."""
    daemon = start_daemon(tmp_path / "ops", sandbox)
    try:
        before = passes(daemon)
        codes = [post(daemon, source, token, json={"sn": "x", "sms": []}).status_code
                 for source in SOURCES for token in (TOKEN, "x", "None", "null")]
        assert codes == [404] * len(codes)
        assert [counted(daemon, label, "unauthenticated") for label in SOURCES.values()] == [4.0, 4.0]
        assert passes(daemon) == before
    finally:
        daemon.stop()


NEAR_MISSES = (TOKEN[:-1], TOKEN + "x", TOKEN.upper(), " " + TOKEN, TOKEN + " ", TOKEN[::-1], "*", "%2A")


def test_near_miss_tokens_are_rejected_and_counted(daemon: DaemonProcess) -> None:
    """A token one character short or long, another case, padded or reversed is refused and counted."""
    before = {label: counted(daemon, label, "unauthenticated") for label in SOURCES.values()}
    runs = passes(daemon)
    codes = [post(daemon, source, token, json={"campaignId": "c", "state": token}).status_code
             for source in SOURCES for token in NEAR_MISSES]
    after = {label: counted(daemon, label, "unauthenticated") for label in SOURCES.values()}
    assert codes == [404] * len(codes)
    assert {label: after[label] - before[label] for label in after} == {label: len(NEAR_MISSES) for label in after}
    assert passes(daemon) == runs


def test_a_token_outside_the_path_is_not_accepted(daemon: DaemonProcess) -> None:
    """The token in a query string or an Authorization header instead of the path does not authenticate."""
    codes = [httpx.post(f"{daemon.url}/webhooks/iot", params={"token": TOKEN}, json={}).status_code,
             httpx.post(f"{daemon.url}/webhooks/iot/", headers={"Authorization": f"Bearer {TOKEN}"},
                        json={}).status_code,
             httpx.get(f"{daemon.url}/webhooks/iot/{TOKEN}").status_code]
    assert codes == [404, 404, 405]


@pytest.mark.parametrize("source", list(SOURCES))
def test_an_oversized_push_without_a_length_is_refused(daemon: DaemonProcess, source: str) -> None:
    """A chunked body (no Content-Length) that grows past 1 MiB is cut off with 413 and counted."""
    def body() -> Iterator[bytes]:
        for _ in range(30):
            yield b"[" + b" " * 65_536 + b"]"

    before = counted(daemon, SOURCES[source], "too-large")
    assert post(daemon, source, TOKEN, content=body()).status_code == 413
    assert counted(daemon, SOURCES[source], "too-large") == before + 1
    assert daemon.get("/healthz").status_code == 200


DEEP = b"[" * 100_000 + b"]" * 100_000
MALFORMED = {
    "sms-gateway": {
        "not-json": b"sn=1&sms_result=x",
        "bad-utf8": b'{"sn": "\xff\xfe", "sms": []}',
        "empty": b"",
        "a-list": b'[{"sn": "x"}]',
        "a-number": b"1e999",
        "deep-nesting": DEEP,
        "deep-inside-a-push": b'{"sn": "y", "sms_result": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        "two-forms": b'{"sn": "z", "sms": [], "sms_result": []}',
        "result-not-a-list": b'{"sn": "z", "sms_result": {"port": 1}}',
        "item-missing-keys": b'{"sn": "z", "sms_result": [{"port": 1}]}',
        "nan-port": b'{"sn": "z", "sms_deliver_status": [{"port": NaN, "number": "1", "time": "2016-07-12 01:46:02",'
                    b' "ref_id": 1, "status_code": 0, "imsi": "1"}]}',
    },
    "iot": {
        "not-json": b"campaignId=c&state=X",
        "bad-utf8": b'{"campaignId": "\xc3"}',
        "a-list": b'[{"campaignId": "c"}]',
        "a-number": b"42",
        "a-string": b'"ACTIVATION_COMPLETE"',
        "deep-nesting": b"[" * 100_001 + b"]" * 100_001,
    },
}
MALFORMED_CASES = [pytest.param(source, body, id=f"{source}-{name}")
                   for source, bodies in MALFORMED.items() for name, body in bodies.items()]


@pytest.mark.parametrize(("source", "body"), MALFORMED_CASES)
def test_a_malformed_push_is_refused_and_counted(daemon: DaemonProcess, source: str, body: bytes) -> None:
    """Not JSON, not UTF-8, not an object, absurdly nested or of the wrong structure: 400, counted as
    malformed, no pass triggered, the daemon healthy."""
    before = counted(daemon, SOURCES[source], "malformed")
    accepted = counted(daemon, SOURCES[source], "accepted")
    runs = passes(daemon)
    response = post(daemon, source, TOKEN, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert counted(daemon, SOURCES[source], "malformed") == before + 1
    assert counted(daemon, SOURCES[source], "accepted") == accepted
    assert passes(daemon) == runs
    assert daemon.get("/healthz").status_code == 200


def test_a_replayed_callback_is_ignored_and_triggers_no_second_pass(daemon: DaemonProcess) -> None:
    """The first callback triggers a pass; the same body again is answered "replay", counted, and ignored."""
    body = {"campaignId": f"c-{time.time_ns()}", "state": "ACTIVATION_COMPLETE"}
    runs = passes(daemon)
    replays = counted(daemon, "iot-campaigns", "replay")
    assert post(daemon, "iot", TOKEN, json=body).json() == {"accepted": True}
    eventually(lambda: passes(daemon) > runs, timeout=15)
    settled = passes(daemon)
    answers = [post(daemon, "iot", TOKEN, json=body).json() for _ in range(3)]
    time.sleep(0.5)
    assert answers == [{"ignored": "replay"}] * 3
    assert counted(daemon, "iot-campaigns", "replay") == replays + 3
    assert passes(daemon) == settled


def test_a_flood_of_rejected_pushes_leaves_the_daemon_working(daemon: DaemonProcess) -> None:
    """300 unauthenticated pushes in a row: all counted, no pass, health and readiness unchanged."""
    before = counted(daemon, "sms-gateway", "unauthenticated")
    runs = passes(daemon)
    with httpx.Client(timeout=30) as client:
        codes = {client.post(f"{daemon.url}/webhooks/sms-gateway/guess-{i}", content=b"{}").status_code
                 for i in range(300)}
    assert codes == {404}
    assert counted(daemon, "sms-gateway", "unauthenticated") == before + 300
    assert passes(daemon) == runs
    assert (daemon.get("/healthz").status_code, daemon.get("/readyz").status_code) == (200, 200)


def test_a_push_naming_an_impossible_user_id_is_refused_not_a_crash(daemon: DaemonProcess) -> None:
    """A results push whose ``user_id`` (our ledger key) is beyond any key the ledger can hold (2**70) is
    refused as malformed (400) or ignored (200), never a 500 that the gateway would retry forever."""
    item = {"port": 1, "number": "10086", "time": "2016-07-12 01:46:02", "status": "DELIVERED", "count": 1,
            "succ_count": 1, "ref_id": 215, "imsi": "460004642148063", "user_id": 2**70}
    response = post(daemon, "sms-gateway", TOKEN, json={"sn": f"big-{time.time_ns()}", "sms_result": [item]})
    assert response.status_code in (200, 400), response.text
    assert daemon.get("/healthz").status_code == 200
