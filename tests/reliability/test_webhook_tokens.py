"""Webhook tokens that are not ASCII: a URL can carry any character (percent-encoded UTF-8), and
``hmac.compare_digest`` raises TypeError for a ``str`` with non-ASCII characters, which made every such
request a 500 with a 40-line traceback in the log. Tokens are compared as UTF-8 bytes: a wrong one is a
404 counted as unauthenticated, and a non-ASCII token that is right is accepted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from tests.daemon.daemon_process import TOKEN, DaemonProcess
from tests.reliability import fleet as fl

UNICODE_TOKEN = "tökén-🔑-Ω"
HOSTILE = ("%C3%A9t%C3%A9", "%F0%9F%94%91", "%FF%FE", "%ED%A0%80", TOKEN + "%C3%A9", "%E2%80%AE" + TOKEN,
           "t%C3%B6k%C3%A9n-%F0%9F%94%91")  # é, an emoji, bad UTF-8, a UTF-8 surrogate, suffixes, a near miss


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxOptions(port_base=0, gateway_count=20, seed=13)) as running:
        yield running


def start(root: Path, sandbox: RunningSandbox, *extra: str, env: dict[str, str] | None = None) -> DaemonProcess:
    fleet = fl.write_fleet(root, sandbox, fl.spec(iot_campaigns=1, gateways_per_campaign=2))
    daemon = DaemonProcess(fleet.root, str(fleet.decl), "--state", fleet.state_url, "--resync", "600",
                           "--debounce-ms", "50", *extra, env={**fl.SANDBOX_SECRETS, **(env or {})})
    daemon.wait_ready()
    return daemon


def counted(daemon: DaemonProcess, source: str, result: str) -> float:
    for line in daemon.get("/metrics").text.splitlines():
        if line.startswith("reconcile_webhooks_total{") and f'source="{source}"' in line \
                and f'result="{result}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def raw_post(daemon: DaemonProcess, path: str, body: bytes) -> httpx.Response:
    """POST with the path exactly as given (already percent-encoded)."""
    with httpx.Client(timeout=10) as client:
        request = client.build_request("POST", daemon.url, content=body,
                                       headers={"Content-Type": "application/json"})
        request.url = request.url.copy_with(raw_path=path.encode("ascii"))
        return client.send(request)


def test_non_ascii_tokens_are_a_404_counted_unauthenticated_without_a_traceback(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    daemon = start(tmp_path / "ops", sandbox, "--webhook-token-env", "HOOK_TOKEN")
    try:
        before = {s: counted(daemon, s, "unauthenticated") for s in ("iot-campaigns", "sms-gateway")}
        codes = [raw_post(daemon, f"/webhooks/{source}/{token}", b'{"sn": "x", "sms": []}').status_code
                 for source in ("iot", "sms-gateway") for token in HOSTILE]
        assert codes == [404] * len(codes)
        assert counted(daemon, "iot-campaigns", "unauthenticated") == before["iot-campaigns"] + len(HOSTILE)
        assert counted(daemon, "sms-gateway", "unauthenticated") == before["sms-gateway"] + len(HOSTILE)
        assert daemon.get("/healthz").status_code == 200
        time.sleep(0.2)
        assert "Traceback" not in daemon.logs() and "TypeError" not in daemon.logs()
    finally:
        daemon.stop()


def test_a_non_ascii_token_is_accepted_when_it_is_right(sandbox: RunningSandbox, tmp_path: Path) -> None:
    daemon = start(tmp_path / "ops", sandbox, "--webhook-token-env", "UNI_TOKEN", env={"UNI_TOKEN": UNICODE_TOKEN})
    try:
        right = httpx.URL(f"{daemon.url}/webhooks/iot/{UNICODE_TOKEN}")  # httpx percent-encodes the UTF-8
        assert httpx.post(right, json={"campaignId": "c", "state": "X"}, timeout=10).json() == {"accepted": True}
        for wrong in (UNICODE_TOKEN[:-1], UNICODE_TOKEN + "Ω", UNICODE_TOKEN.upper(), "tokén-🔑-Ω"):
            assert httpx.post(f"{daemon.url}/webhooks/iot/{wrong}", json={}, timeout=10).status_code == 404
        assert counted(daemon, "iot-campaigns", "unauthenticated") == 4.0
        assert "Traceback" not in daemon.logs()
    finally:
        daemon.stop()
