"""Notification destinations of the IoT campaign manager sandbox (``reconcile sandbox --destination
NAME=URL``, ``SandboxOptions.destinations``): a campaign's callbacks name a destination id and the
sandbox POSTs them to its URL. Pointed at a real ``reconcile watch``, the callbacks reach the daemon's
receiver (``POST /webhooks/iot/<token>``), are counted, and trigger passes; the demo's receiver is the
same app."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from reconciler.cli.demo import daemon_receiver, delivered_callbacks, destination_ids
from reconciler.sandbox.run import SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControl, SandboxControls
from tests.daemon.daemon_process import TOKEN, DaemonProcess, eventually, free_port
from tests.engine import crash
from tests.engine import sandbox_repo as repo

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"
WINDOW_END = datetime(2027, 1, 2, 5, 0, tzinfo=UTC)
HOOKED = """\
apiVersion: reconciler/v1
kind: Campaign
metadata: {name: hooked}
spec:
  backend: iot
  description: Rollout with callbacks
  packages: [fw]
  callbacks:
    completed: ops-webhook
    stateChange: {destination: ops-webhook, trackedStates: [DOWNLOAD_COMPLETE, ACTIVATION_COMPLETE]}
---
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {name: hooked-gws}
spec: {campaign: hooked, gateways: [gw-00001, gw-00002]}
---
apiVersion: reconciler/v1
kind: Schedule
metadata: {name: hooked-nights}
spec:
  campaign: hooked
  download: {begin: "2027-01-02T01:00:00Z", end: "2027-01-02T05:00:00Z"}
"""


class DaemonOnPort(DaemonProcess):
    """A daemon on a port chosen before it starts (the sandbox must know its receiver's URL first)."""

    def __init__(self, cwd: Path, port: int, *args: str, env: dict[str, str]) -> None:  # noqa: D107
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = cwd / f"daemon-{port}.log"
        command = [sys.executable, "-m", "reconciler", "watch", *args, "--listen", f"127.0.0.1:{port}",
                   "--log-format", "json"]
        self.process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env, "HOOK_TOKEN": TOKEN},
                                        stdout=subprocess.DEVNULL, stderr=self.log.open("w"))


def counted(daemon: DaemonProcess, result: str) -> float:
    for line in daemon.get("/metrics").text.splitlines():
        if line.startswith("reconcile_webhooks_total{") and 'source="iot-campaigns"' in line \
                and f'result="{result}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_callbacks_reach_the_daemons_receiver_and_trigger_passes(tmp_path: Path) -> None:
    port = free_port()
    receiver = f"http://127.0.0.1:{port}/webhooks/iot/{TOKEN}"
    options = SandboxOptions(port_base=0, gateway_count=20, seed=3, destinations={"ops-webhook": receiver})
    with running_sandbox(options) as sandbox:
        decl = repo.make_repo(tmp_path / "ops", sandbox)
        repo.write(decl, "hooked.yaml", HOOKED)
        daemon = DaemonOnPort(tmp_path, port, str(decl), "--state", f"sqlite:///{tmp_path}/state.db",
                              "--resync", "600", "--debounce-ms", "50", "--webhook-token-env", "HOOK_TOKEN",
                              env={**repo.SECRETS, **crash.environment()})
        try:
            daemon.wait_ready()
            iot = SandboxControls.of(sandbox)["iot-campaigns"]
            assert iot.state()["options"]["destinations"] == {"ops-webhook": receiver}
            iot.advance(WINDOW_END.timestamp() - iot.now() + 3600)
            # per gateway: DOWNLOAD_COMPLETE and ACTIVATION_COMPLETE (state-change), and completed
            eventually(lambda: counted(daemon, "accepted") >= 6, timeout=20)
            deliveries = iot.state()["callbackDeliveries"]
            assert deliveries["failed"] == 0 and deliveries["sent"] == 6
            assert sorted((d["payload"]["event"], d["payload"]["state"]) for d in deliveries["log"]) == sorted(
                [("state-change", "DOWNLOAD_COMPLETE"), ("state-change", "ACTIVATION_COMPLETE"),
                 ("completed", "ACTIVATION_COMPLETE")] * 2)
            assert {d["status"] for d in deliveries["log"]} == {200}
            eventually(lambda: any("iot callback" in json.loads(line).get("reasons", [])
                                   for line in daemon.logs().splitlines() if '"pass.done"' in line), timeout=20)
            assert counted(daemon, "unauthenticated") == 0
            assert daemon.terminate() == 0
        finally:
            daemon.stop()


def test_the_demo_points_every_declared_destination_at_the_daemons_receiver() -> None:
    assert destination_ids(QUICKSTART) == ["ops-webhook"]
    with daemon_receiver() as receiver, running_sandbox(SandboxOptions(
            port_base=0, gateway_count=20, destinations={"ops-webhook": receiver.url})) as sandbox:
        assert "/webhooks/iot/" in receiver.url
        reply = httpx.post(receiver.url, json={"campaignId": "c", "gatewayId": "gw-00001", "state": "X"})
        assert reply.json() == {"accepted": True}
        wrong = receiver.url.rsplit("/", 1)[0] + "/not-the-token"
        assert httpx.post(wrong, json={}).status_code == 404
        assert (receiver.counted(), receiver.counted("unauthenticated"), receiver.events) == (1, 1, ["iot callback"])
        assert delivered_callbacks(sandbox, receiver, timeout=1) == []


def free_port_base() -> int:
    for base in range(21700, 60000, 10):
        ports = [base + n for n in range(1, 5)]
        try:
            for port in ports:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free ports")


def test_reconcile_sandbox_takes_destinations_on_the_command_line(tmp_path: Path) -> None:
    base = free_port_base()
    command = [sys.executable, "-m", "reconciler", "sandbox", "--port-base", str(base), "--gateways", "10",
               "--tls-dir", str(tmp_path), "--destination", "ops-webhook=http://127.0.0.1:8790/webhooks/iot/s3cr3t",
               "--destination", "audit=https://hooks.example/audit"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = [process.stdout.readline() for _ in range(9)]  # type: ignore[union-attr]
        text = "".join(banner)
        assert "'ops-webhook' go to http://127.0.0.1:8790/webhooks/iot/<token>" in text and "s3cr3t" not in text
        state = SandboxControl(f"http://127.0.0.1:{base + 2}", timeout=10).state()
        assert state["options"]["destinations"] == {"ops-webhook": "http://127.0.0.1:8790/webhooks/iot/s3cr3t",
                                                    "audit": "https://hooks.example/audit"}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


@pytest.mark.parametrize("value", ["ops-webhook", "=http://x/", "ops=hooks.example/ota", "ops=ftp://x/",
                                   "https://hooks.example/ota"])
def test_a_destination_that_is_not_name_equals_url_is_refused(value: str) -> None:
    result = subprocess.run([sys.executable, "-m", "reconciler", "sandbox", "--destination", value],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "expected NAME=URL" in result.stderr
