"""Secrets never leak: a sandbox whose four credentials are distinctive values (``S3cr3t-<random>``), a
fleet whose Backends reference them (``{env:}``, and ``{file:}`` for one), then the quick-start flow
through the real entry point — validate, dry runs in text, JSON and Markdown, ``--out plan.json``,
apply, status, debug logging — and a real daemon for a few seconds with JSON logs at debug level, its
``/status`` and ``/metrics``; then the same with WRONG secrets, so that errors are printed.

Every byte of stdout and stderr, the daemon's log, the plan file, the HTTP bodies and the state store
(the SQLite file and its WAL, read as bytes) is scanned for every secret, right and wrong, and for the
forms a secret takes on the wire (Basic credentials): none is found.
"""

from __future__ import annotations

import base64
import secrets as random_secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.sandbox.iot_campaigns.model import ALL_PERMISSIONS
from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from tests.daemon.daemon_process import DaemonProcess, eventually
from tests.reliability import fleet as fl

RIGHT = {name: f"S3cr3t-{name.lower().replace('_', '-')}-{random_secrets.token_hex(6)}" for name in fl.SANDBOX_SECRETS}
WRONG = {name: f"Wr0ng-{name.lower().replace('_', '-')}-{random_secrets.token_hex(6)}" for name in fl.SANDBOX_SECRETS}
SHAPE = fl.spec(iot_campaigns=2, gateways_per_campaign=4, yate_fixtures=True, sms_recipients=5,
                      ogangi_recipients=3, max_retries=1)


def wire_forms(values: dict[str, str]) -> list[str]:
    """Each secret, and the Basic credentials it would travel as (user ``admin``)."""
    forms = list(values.values())
    forms += [base64.b64encode(f"admin:{v}".encode()).decode() for v in values.values()]
    return forms


SCANNED = wire_forms(RIGHT) + wire_forms(WRONG)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    options = SandboxOptions(port_base=0, gateway_count=20, seed=6,
                             yateota={"secret": RIGHT["YATE_SECRET"]},
                             iot={"users": {"admin": (RIGHT["IOT_PASSWORD"], ALL_PERMISSIONS)}},
                             sms_gateway={"password": RIGHT["GW_PASSWORD"], "send_rate_per_port": 1000.0},
                             ogangi={"private_key": RIGHT["OG_PRIVATE_KEY"]})
    with running_sandbox(options) as running:
        yield running


def secret_fleet(root: Path, sandbox: RunningSandbox) -> fl.Fleet:
    """The fleet, with the Ogangi private key read from a file inside the repository."""
    fleet = fl.write_fleet(root, sandbox, SHAPE)
    backends = fleet.decl / "backends.yaml"
    backends.write_text(backends.read_text().replace("privateKey: {env: OG_PRIVATE_KEY}",
                                                     "privateKey: {file: ../og-private-key}"), encoding="utf-8")
    return fleet


def use_secrets(monkeypatch: pytest.MonkeyPatch, fleet: fl.Fleet, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    (fleet.root / "og-private-key").write_text(values["OG_PRIVATE_KEY"] + "\n", encoding="utf-8")
    monkeypatch.setenv("RECONCILE_LOG_LEVEL", "debug")
    monkeypatch.setenv("NO_COLOR", "1")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def leaks(label: str, data: bytes | str) -> list[str]:
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    return [f"{label}: {value[:12]}..." for value in SCANNED if value.encode() in raw]


def state_files(fleet: fl.Fleet) -> list[Path]:
    return [p for p in fleet.state_dir.rglob("*") if p.is_file()] if fleet.state_dir.exists() else []


@pytest.mark.timeout(300)
def test_no_secret_appears_in_any_output_log_plan_or_state(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole flow with the right secrets: it works, and no secret is anywhere it wrote."""
    fleet = secret_fleet(tmp_path / "ops", sandbox)
    use_secrets(monkeypatch, fleet, RIGHT)
    monkeypatch.chdir(fleet.root)
    common = [str(fleet.decl), "--state", fleet.state_url]
    plan_file = fleet.root / "plan.json"
    outputs = {
        "validate": run(capsys, "validate", str(fleet.decl)),
        "validate-json": run(capsys, "validate", "--output", "json", str(fleet.decl)),
        "dry-run-text": run(capsys, "--dry-run", *common),
        "dry-run-json": run(capsys, "--dry-run", "--output", "json", *common),
        "dry-run-markdown": run(capsys, "--dry-run", "--output", "markdown", *common),
        "dry-run-out": run(capsys, "--dry-run", "--out", str(plan_file), *common),
        "apply": run(capsys, *common, "--risk-duplicate-sms"),  # a new store, and Ogangi cannot be asked
        "status": run(capsys, "status", *common),
        "status-json": run(capsys, "status", "--output", "json", *common),
        "apply-json-again": run(capsys, "--output", "json", *common),
    }
    daemon = DaemonProcess(fleet.root, str(fleet.decl), "--state", fleet.state_url, "--resync", "1",
                           "--log-level", "debug", env={**RIGHT, "RECONCILE_LOG_LEVEL": "debug"})
    try:
        daemon.wait_ready()
        eventually(lambda: daemon.status()["passes"] >= 3, timeout=20)
        bodies = {path: daemon.get(path).text for path in ("/status", "/metrics", "/readyz")}
        assert daemon.terminate() == 0
    finally:
        daemon.stop()
    assert {name: code for name, (code, _) in outputs.items()} == {name: 0 for name in outputs}
    found = [leak for name, (_, text) in outputs.items() for leak in leaks(name, text)]
    found += leaks("daemon log", daemon.log.read_bytes()) + leaks("plan.json", plan_file.read_bytes())
    found += [leak for path, body in bodies.items() for leak in leaks(path, body)]
    found += [leak for path in state_files(fleet) for leak in leaks(str(path.name), path.read_bytes())]
    assert len(state_files(fleet)) >= 1
    assert leaks("control: the scan finds a secret where it is", (fleet.root / "og-private-key").read_bytes())
    assert found == []


@pytest.mark.timeout(300)
def test_no_secret_appears_when_every_secret_is_wrong(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With wrong secrets every backend refuses and the errors are printed, without any secret in them."""
    fleet = secret_fleet(tmp_path / "ops", sandbox)
    use_secrets(monkeypatch, fleet, WRONG)
    monkeypatch.chdir(fleet.root)
    common = [str(fleet.decl), "--state", fleet.state_url]
    outputs = {
        "dry-run-text": run(capsys, "--dry-run", *common),
        "dry-run-json": run(capsys, "--dry-run", "--output", "json", *common),
        "apply": run(capsys, *common, "--risk-duplicate-sms"),  # a new store, and Ogangi cannot be asked
        "status": run(capsys, "status", *common),
        "status-json": run(capsys, "status", "--output", "json", *common),
        "debug-apply": run(capsys, "--debug", *common),
    }
    found = [leak for name, (_, text) in outputs.items() for leak in leaks(name, text)]
    found += [leak for path in state_files(fleet) for leak in leaks(str(path.name), path.read_bytes())]
    assert {name: code for name, (code, _) in outputs.items()} == {name: 1 for name in outputs}
    assert all(f"backend {b} could not be read" in outputs["dry-run-text"][1] for b in ("iot", "yate", "gw"))
    assert "FAILED" in outputs["apply"][1]  # Ogangi needs no read: its sends are refused, one by one
    assert found == []
