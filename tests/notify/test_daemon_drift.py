"""A real daemon against the sandbox: a campaign stopped outside git is started again at the next resync and
that is one ``drift.corrected`` event; the edit that created it is not drift."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from tests.daemon.daemon_process import DaemonProcess, eventually
from tests.engine import crash
from tests.engine import sandbox_repo as repo
from tests.notify.receiver import Receiver, running_receiver

pytestmark = pytest.mark.slow  # a sandbox and a daemon through two resyncs: about 10 s


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxOptions(port_base=0, gateway_count=20, seed=3)) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def test_a_campaign_stopped_outside_git_is_one_drift_corrected_event(
    sandbox: RunningSandbox, receiver: Receiver, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    SandboxControls.of(sandbox).reset()
    decl = repo.make_repo(tmp_path / "ops", sandbox)
    repo.write(decl, "rollout.yaml", repo.campaign_yaml("rollout", gateways=["gw-00001", "gw-00002"]))
    repo.write(decl, "notify.yaml", "apiVersion: reconciler/v1\nkind: Notification\nmetadata: {name: ops}\n"
                                    f"spec: {{url: '{receiver.url}', events: [drift.corrected]}}\n")
    daemon = DaemonProcess(tmp_path, str(decl), "--state", f"sqlite:///{tmp_path}/state.db", "--resync", "1",
                           env={**repo.SECRETS, **crash.environment()})
    daemons.append(daemon)
    daemon.wait_ready()
    eventually(lambda: daemon.logs().count('"event": "pass.done"') >= 2, timeout=15)  # converged, seen steady
    assert receiver.requests == []  # creating and starting what git declares is not drift
    state = SandboxControls.of(sandbox)["iot-campaigns"].state()
    campaign_id = next(c["id"] for c in state["campaigns"] if c["name"] == "rollout")
    token = httpx.post(f"{sandbox.url('iot-campaigns')}/api/tokens", auth=("admin", "admin")).json()["accessToken"]
    httpx.put(f"{sandbox.url('iot-campaigns')}/api/campaigns/{campaign_id}/stop", json={"campaignId": campaign_id},
              headers={"Authorization": f"Bearer {token}"}).raise_for_status()
    eventually(lambda: receiver.requests, timeout=15)
    passes = daemon.logs().count('"event": "pass.done"')
    eventually(lambda: daemon.logs().count('"event": "pass.done"') >= passes + 2, timeout=15)
    [request] = receiver.requests
    event = request.json()
    assert (event["event"], event["resource"]) == ("drift.corrected", "Campaign/rollout")
    assert event["details"]["actions"][0]["verb"] == "start-campaign"
