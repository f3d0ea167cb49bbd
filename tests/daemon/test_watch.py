"""``reconcile watch`` as a real process against the sandbox."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from tests.daemon.daemon_process import TOKEN, DaemonProcess, eventually
from tests.engine import crash
from tests.engine import sandbox_repo as repo

GWS = ["gw-00001", "gw-00002"]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    options = SandboxOptions(port_base=0, gateway_count=20, seed=2, sms_gateway={"send_rate_per_port": 1000.0})
    with running_sandbox(options) as running:
        yield running


@pytest.fixture
def decl(sandbox: RunningSandbox, tmp_path: Path) -> Path:
    SandboxControls.of(sandbox).reset()
    folder = repo.make_repo(tmp_path / "ops", sandbox)
    repo.write(folder, "rollout.yaml", repo.campaign_yaml("rollout", gateways=GWS))
    return folder


def start(daemons: list[DaemonProcess], cwd: Path, *args: str) -> DaemonProcess:
    daemon = DaemonProcess(cwd, *args, "--state", f"sqlite:///{cwd}/state.db", "--webhook-token-env", "HOOK_TOKEN",
                           env={**repo.SECRETS, **crash.environment()})
    daemons.append(daemon)
    return daemon


def campaign_status(sandbox: RunningSandbox, name: str) -> str | None:
    campaigns = {c["name"]: c for c in SandboxControls.of(sandbox)["iot-campaigns"].state()["campaigns"]}
    return campaigns[name]["status"] if name in campaigns else None


def test_an_edited_file_converges(sandbox: RunningSandbox, decl: Path, daemons: list[DaemonProcess],
                                  tmp_path: Path) -> None:
    daemon = start(daemons, tmp_path, str(decl), "--resync", "30", "--debounce-ms", "50")
    daemon.wait_ready()
    assert campaign_status(sandbox, "rollout") == "STARTED"
    metrics = daemon.get("/metrics").text
    for backend in ("iot", "yate"):  # every adapter reports its requests
        assert f'reconcile_backend_requests_total{{backend="{backend}",status="200"}}' in metrics, backend
    repo.write(decl, "rollout.yaml", repo.campaign_yaml("rollout", gateways=GWS, state="stopped"))
    eventually(lambda: campaign_status(sandbox, "rollout") == "STOPPED", timeout=10)
    assert daemon.terminate() == 0


def yate_state(sandbox: RunningSandbox, campaign_id: int) -> str:
    return next(c["state"] for c in SandboxControls.of(sandbox)["yateota"].state()["campaigns"]
                if c["campaign_id"] == campaign_id)


def test_an_edit_is_carried_by_a_pass_over_its_own_backend_only(
    sandbox: RunningSandbox, decl: Path, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    """Once the IoT manager is converged and seen converged, a YateOTA edit reads and writes nothing on it;
    /status still shows the IoT campaign as last seen; SIGHUP (like resync) visits every backend again."""
    daemon = start(daemons, tmp_path, str(decl), "--resync", "3600", "--debounce-ms", "50")
    daemon.wait_ready()  # the first pass created "rollout": the next pass reads the IoT manager again
    daemon.process.send_signal(signal.SIGHUP)
    eventually(lambda: daemon.logs().count('"event": "pass.done"') >= 2, timeout=10)
    iot_requests = SandboxControls.of(sandbox)["iot-campaigns"].total()
    assert yate_state(sandbox, 176) == "paused"
    repo.write(decl, "paused.yaml", "apiVersion: reconciler/v1\nkind: Campaign\nmetadata: {name: paused-one}\n"
                                    "spec: {backend: yate, campaignId: 176, state: running}\n")
    eventually(lambda: yate_state(sandbox, 176) == "started", timeout=10)
    eventually(lambda: '"reasons": ["files"]' in daemon.logs() and '"backends": ["yate"]' in daemon.logs(), timeout=10)
    assert SandboxControls.of(sandbox)["iot-campaigns"].total() == iot_requests
    shown = {r["resource"]: r for r in daemon.status()["resources"]}
    assert shown["Campaign/rollout"]["observed"]["state"] == "STARTED"
    assert [(o["verb"], o["outcome"]) for o in shown["Campaign/paused-one"]["last_outcomes"]] == [
        ("restart-campaign", "succeeded")]
    daemon.process.send_signal(signal.SIGHUP)
    eventually(lambda: SandboxControls.of(sandbox)["iot-campaigns"].total() > iot_requests, timeout=10)


def test_an_invalid_edit_is_reported_and_the_daemon_keeps_running(
    sandbox: RunningSandbox, decl: Path, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    daemon = start(daemons, tmp_path, str(decl), "--resync", "30", "--debounce-ms", "50")
    daemon.wait_ready()
    (decl / "rollout.yaml").write_text("apiVersion: reconciler/v1\nkind: Campaign\nmetadata: {name: [\n")
    eventually(lambda: "last good state is kept" in daemon.status()["last_error"], timeout=10)
    assert daemon.get("/healthz").status_code == 200
    assert "rollout.yaml" in daemon.logs()
    repo.write(decl, "rollout.yaml", repo.campaign_yaml("rollout", gateways=GWS, state="stopped"))
    eventually(lambda: campaign_status(sandbox, "rollout") == "STOPPED", timeout=10)


def test_git_commits_are_picked_up_and_the_revision_is_shown(
    sandbox: RunningSandbox, decl: Path, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    origin = decl.parent

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(origin), *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    git("checkout", "-q", "-b", "main")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "first")
    daemon = start(daemons, tmp_path, "campaigns.d", "--git", str(origin), "--branch", "main", "--interval", "0.5")
    daemon.wait_ready()
    first = git("rev-parse", "HEAD")
    assert daemon.status()["revision"] == first
    repo.write(decl, "rollout.yaml", repo.campaign_yaml("rollout", gateways=GWS, state="stopped"))
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qam", "stop the rollout")
    second = git("rev-parse", "HEAD")
    eventually(lambda: campaign_status(sandbox, "rollout") == "STOPPED", timeout=15)
    eventually(lambda: daemon.status()["revision"] == second, timeout=5)
    assert f'revision="{second}"' in daemon.get("/metrics").text


def test_webhooks_need_the_token_and_ignore_replays(
    sandbox: RunningSandbox, decl: Path, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    daemon = start(daemons, tmp_path, str(decl), "--resync", "30")
    daemon.wait_ready()
    push = {"sn": "x", "sms_result": [{"port": 1, "number": "10086", "time": "2016-07-12 01:46:02",
                                       "status": "DELIVERED", "count": 1, "succ_count": 1, "ref_id": 215,
                                       "imsi": "460004642148063"}]}
    assert httpx.post(f"{daemon.url}/webhooks/sms-gateway/wrong", json=push).status_code == 404
    assert httpx.post(f"{daemon.url}/webhooks/sms-gateway/{TOKEN}", json=push).json()["accepted"] is True
    assert httpx.post(f"{daemon.url}/webhooks/sms-gateway/{TOKEN}", json=push).json() == {"ignored": "replay"}
    big = b"{" + b" " * (1024 * 1024 + 10) + b"}"
    assert httpx.post(f"{daemon.url}/webhooks/iot/{TOKEN}", content=big).status_code == 413
    assert httpx.post(f"{daemon.url}/webhooks/iot/{TOKEN}", json={"campaignId": "c", "state": "X"}).status_code == 200
    metrics = daemon.get("/metrics").text
    for result in ("unauthenticated", "replay", "too-large", "accepted"):
        assert f'result="{result}"' in metrics


def test_a_second_daemon_on_the_same_store_does_not_write(
    sandbox: RunningSandbox, decl: Path, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    first = start(daemons, tmp_path, str(decl), "--resync", "30")
    first.wait_ready()
    second = start(daemons, tmp_path, str(decl), "--resync", "30")
    assert second.process.wait(timeout=20) == 1
    assert "daemon.locked" in second.logs() and "`reconcile watch`" in second.logs()  # who holds it
    standby = start(daemons, tmp_path, str(decl), "--resync", "30", "--standby")
    eventually(lambda: standby.get("/readyz").status_code == 503, timeout=20)
    assert "standby" in standby.get("/readyz").text


def test_sigterm_mid_send_leaves_no_duplicate_after_restart(
    sandbox: RunningSandbox, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    SandboxControls.of(sandbox)["sms-gateway"].faults(latency_ms=200)
    ops = crash.sms_repo(tmp_path / "sms", sandbox, backend="gw", recipients=2000)
    daemon = start(daemons, tmp_path, str(ops), "--resync", "30", "--shutdown-grace", "0.3")
    eventually(lambda: len(crash.delivered_numbers(sandbox, "sms-gateway", "number")) > 0, timeout=30)
    assert daemon.terminate() == 0
    restarted = start(daemons, tmp_path, str(ops), "--resync", "30")
    eventually(lambda: len(crash.delivered_numbers(sandbox, "sms-gateway", "number")) == 2000, timeout=60)
    counts: Counter[str] = crash.delivered_numbers(sandbox, "sms-gateway", "number")
    assert max(counts.values()) == 1
    assert restarted.terminate() == 0
    SandboxControls.of(sandbox)["sms-gateway"].faults(latency_ms=0)
