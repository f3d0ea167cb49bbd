"""Pushed sending results from the SMS gateway, in any order: a later ``FAILED`` never overwrites
``DELIVERED`` in the send ledger (the ledger ranks final states equal, so the push handling orders them:
a delivery report is the only proof the handset has the message)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from reconciler.backends.sms_gateway.push import parse_gateway_push
from reconciler.engine.pushes import settle_pushed
from reconciler.sandbox.run import SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from reconciler.state.ledger import NewSend, SendLedger, SendState, ledger_key
from tests.daemon.daemon_process import TOKEN, DaemonProcess, eventually
from tests.engine import crash
from tests.ledgers import ledger_counts, writer_ledger

NUMBERS = ["4915100000001", "4915100000002", "4915100000003"]


@pytest.fixture
def ledger(tmp_path: Path) -> SendLedger:
    return writer_ledger(tmp_path / "state.db")


@pytest.fixture
def keys(ledger: SendLedger) -> list[int]:
    rows, _ = ledger.begin_dispatch("gw", "notice", [NewSend(n, "h") for n in NUMBERS])
    ledger.settle([(r.key, SendState.ACCEPTED, "7", "") for r in rows])
    return [r.key for r in rows]


def push(*results: tuple[int, str]) -> int:
    return {"sn": "gw-1", "sms_result": [
        {"port": 1, "number": "4915100000001", "time": "2026-11-23 01:46:02", "status": status, "count": 1,
         "succ_count": 1 if status == "DELIVERED" else 0, "ref_id": 7, "imsi": "460004642148063", "user_id": key}
        for key, status in results]}  # type: ignore[return-value]


def states(ledger: SendLedger) -> list[SendState]:
    return [r.state for r in ledger.rows("gw", "notice")]


def apply(ledger: SendLedger, *results: tuple[int, str]) -> int:
    return settle_pushed(ledger, parse_gateway_push(json.dumps(push(*results)).encode()).fates or ())


def test_a_later_failed_push_leaves_a_delivered_row_delivered(ledger: SendLedger, keys: list[int]) -> None:
    assert apply(ledger, (keys[0], "SENT_OK")) == 1
    assert apply(ledger, (keys[0], "DELIVERED")) == 1
    assert apply(ledger, (keys[0], "FAILED")) == 0
    assert apply(ledger, (keys[0], "SENT_OK"), (keys[0], "SENDING")) == 0
    assert states(ledger)[0] is SendState.DELIVERED
    assert ledger.rows("gw", "notice")[0].reason == "gateway push: DELIVERED"


def test_within_one_push_the_delivery_report_wins_whatever_the_order(ledger: SendLedger, keys: list[int]) -> None:
    assert apply(ledger, (keys[0], "DELIVERED"), (keys[0], "FAILED"),
                 (keys[1], "FAILED"), (keys[1], "DELIVERED"), (keys[1], "SENT_OK")) == 2
    assert states(ledger)[:2] == [SendState.DELIVERED, SendState.DELIVERED]


def test_a_failed_row_becomes_delivered_when_the_report_arrives(ledger: SendLedger, keys: list[int]) -> None:
    assert apply(ledger, (keys[2], "FAILED")) == 1
    assert states(ledger)[2] is SendState.FAILED
    assert apply(ledger, (keys[2], "DELIVERED")) == 1
    assert states(ledger) == [SendState.ACCEPTED, SendState.ACCEPTED, SendState.DELIVERED]


def test_an_undelivered_row_is_not_turned_into_failed_by_a_push(ledger: SendLedger, keys: list[int]) -> None:
    ledger.settle([(keys[1], SendState.UNDELIVERED, "", "delivery status 65")])
    assert apply(ledger, (keys[1], "FAILED")) == 0
    assert states(ledger)[1] is SendState.UNDELIVERED


SMS_REPO = """\
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: gw}}
spec:
  type: sms-gateway
  url: "{url}"
  auth: {{username: admin, password: {{env: GW_PASSWORD}}}}
  tls: {{verify: false}}
---
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {{name: notice-ports}}
spec: {{campaign: notice, ports: [0, 1]}}
---
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: notice}}
spec:
  backend: gw
  text: "Maintenance tonight"
  deliveryReports: true
  recipients: {{inline: [{numbers}]}}
"""


def test_a_daemon_keeps_delivered_rows_delivered_when_a_stale_failed_push_arrives(tmp_path: Path) -> None:
    """End to end: a real ``reconcile watch`` sends through the sandbox's SMS gateway and learns the
    deliveries; the gateway then pushes ``FAILED`` for a delivered message to the daemon's receiver
    (``POST /webhooks/sms-gateway/<token>``): the push is accepted and the row stays ``delivered``."""
    with running_sandbox(SandboxOptions(port_base=0, gateway_count=5, seed=21,
                                        sms_gateway={"send_rate_per_port": 1000.0})) as sandbox:
        root = tmp_path / "ops"
        root.mkdir()
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        (root / "sms.yaml").write_text(SMS_REPO.format(url=sandbox.url("sms-gateway"),
                                                       numbers=", ".join(f'"{n}"' for n in NUMBERS)))
        state = tmp_path / "state.db"
        daemon = DaemonProcess(tmp_path, str(root), "--state", f"sqlite:///{state}", "--resync", "1",
                               "--webhook-token-env", "HOOK_TOKEN", env=crash.environment())
        try:
            eventually(lambda: ledger_counts(state, "gw", "notice").get("sent", 0)
                       + ledger_counts(state, "gw", "notice").get("delivered", 0) == len(NUMBERS), timeout=30)
            SandboxControls.of(sandbox)["sms-gateway"].advance(3600)
            eventually(lambda: ledger_counts(state, "gw", "notice").get("delivered") == len(NUMBERS), timeout=30)
            stale = {"sn": "gw-1", "sms_result": [
                {"port": 0, "number": NUMBERS[0], "time": "2026-11-23 01:46:02", "status": "FAILED", "count": 1,
                 "succ_count": 0, "ref_id": 7, "imsi": "460004642148063", "user_id": ledger_key("notice", NUMBERS[0])}]}
            reply = httpx.post(f"{daemon.url}/webhooks/sms-gateway/{TOKEN}", json=stale, timeout=10)
            assert reply.json() == {"accepted": True, "settled": 0}
            passes = daemon.logs().count('"pass.done"')
            eventually(lambda: daemon.logs().count('"pass.done"') >= passes + 2, timeout=20)
            assert ledger_counts(state, "gw", "notice") == {"delivered": len(NUMBERS)}
            assert daemon.terminate() == 0
        finally:
            daemon.stop()
