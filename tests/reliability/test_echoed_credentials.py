"""Credentials a backend echoes back never reach any output: each of the four backends sits behind a
proxy (``EchoProxy``) that answers with a 400/500 whose body repeats the request's headers and the
credentials in them, decoded and re-encoded (``Authorization: Basic``/``Bearer``, ``X-Authentication``,
the Basic pair decoded, URL-encoded, Base64 of the secret, URL-safe Base64, percent-encoded bytes).

First every request is echoed (dry runs in text, JSON and Markdown, ``--out``: every backend that is read
is unreadable, its error printed), then only writes (apply: uploads, campaign changes and SMS sends fail with the echo;
the SMS ledger in the state store keeps their reasons; status; a daemon's ``/status`` and log). Every
output byte and the state store are scanned for every encoding of every secret (and the IoT bearer
tokens the sandbox handed out): none is found, while the echoed error text itself is shown.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets as random_secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from reconciler.cli.main import main
from reconciler.sandbox.iot_campaigns.model import ALL_PERMISSIONS
from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from tests.daemon.daemon_process import DaemonProcess, eventually
from tests.reliability import fleet as fl
from tests.reliability.hostile_servers import EchoProxy, echoed

SECRETS = {name: f"S3c/{random_secrets.token_hex(4)}+{random_secrets.token_hex(4)}=~%&?{name[:2].lower()}"
           for name in fl.SANDBOX_SECRETS}
DUMP = os.environ.get("ECHO_TEST_DUMP")  # a file to write every output to, for reading them
SHAPE = fl.spec(iot_campaigns=1, gateways_per_campaign=4, packages=1, yate_fixtures=True, sms_recipients=3,
                      ogangi_recipients=2, max_retries=1)


def encodings(secret: str) -> set[str]:
    """Every form ``secret`` could take in an echo (independent of ``reconciler.secrets``)."""
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), json.dumps(secret)[1:-1],
             "".join(f"%{b:02x}" for b in secret.encode()), "".join(f"%{b:02X}" for b in secret.encode())}
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), form) for form in forms}
    for data in (secret.encode(), f"admin:{secret}".encode()):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(data).decode()
            forms |= {text, text.rstrip("=")}
    return forms


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    options = SandboxOptions(port_base=0, gateway_count=20, seed=8,
                             yateota={"secret": SECRETS["YATE_SECRET"]},
                             iot={"users": {"admin": (SECRETS["IOT_PASSWORD"], ALL_PERMISSIONS)}},
                             sms_gateway={"password": SECRETS["GW_PASSWORD"], "send_rate_per_port": 1000.0},
                             ogangi={"private_key": SECRETS["OG_PRIVATE_KEY"]})
    with running_sandbox(options) as running:
        yield running


@pytest.fixture
def proxies(sandbox: RunningSandbox) -> Iterator[dict[str, EchoProxy]]:
    running = {
        "iot-campaigns": EchoProxy(sandbox.url("iot-campaigns"),
                                   lambda method, target, body: method != "GET" and not target.startswith("/api/tokens")),
        "yateota": EchoProxy(sandbox.url("yateota"), lambda method, target, body: b'"action_' in body,
                             status=500, as_json=False),
        "sms-gateway": EchoProxy(sandbox.url("sms-gateway"), lambda method, target, body: "send_sms" in target,
                                 as_json=False),
        "ogangi": EchoProxy(sandbox.url("ogangi"), lambda method, target, body: "sendSMS" in target),
    }
    yield running
    for proxy in running.values():
        proxy.stop()


def echo_fleet(root: Path, sandbox: RunningSandbox, proxies: dict[str, EchoProxy]) -> fl.Fleet:
    """The fleet, every Backend pointed at its proxy; the SMS gateway with Basic credentials."""
    fleet = fl.write_fleet(root, sandbox, SHAPE)
    backends = fleet.decl / "backends.yaml"
    text = backends.read_text(encoding="utf-8")
    for name, proxy in proxies.items():
        text = text.replace(sandbox.url(name), proxy.url)
    text = text.replace("auth: {username: admin, password: {env: GW_PASSWORD}}",
                        "auth: {username: admin, password: {env: GW_PASSWORD}}\n  options: {authScheme: basic}")
    backends.write_text(text, encoding="utf-8")
    return fleet


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def leaks(label: str, data: bytes | str, scanned: set[str]) -> list[str]:
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    unescaped = raw.replace(b"\\", b"")  # Markdown or JSON escapes must not hide a leak from the scan
    return [f"{label}: {form[:10]}..." for form in sorted(scanned)
            if form.encode() in raw or form.encode() in unescaped]


@pytest.mark.timeout(300)
def test_echoed_credentials_appear_in_no_output_plan_log_status_or_state(
    sandbox: RunningSandbox, proxies: dict[str, EchoProxy], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fleet = echo_fleet(tmp_path / "ops", sandbox, proxies)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(fleet.root)
    common = [str(fleet.decl), "--state", fleet.state_url]
    plan_file = fleet.root / "plan.json"

    for proxy in proxies.values():
        proxy.echo_all = True
    reads = {
        "dry-run-text": run(capsys, "--dry-run", *common),
        "dry-run-json": run(capsys, "--dry-run", "--output", "json", *common),
        "dry-run-markdown": run(capsys, "--dry-run", "--output", "markdown", *common),
        "dry-run-out": run(capsys, "--dry-run", "--out", str(plan_file), *common),
        "status-all-echoed": run(capsys, "status", *common),
    }
    echoed_reads = {name: proxy.echoes for name, proxy in proxies.items()}
    for proxy in proxies.values():
        proxy.echo_all = False
    writes = {
        "apply": run(capsys, *common, "--risk-duplicate-sms"),  # a new store, and Ogangi cannot be asked
        "apply-json": run(capsys, "--output", "json", *common),
        "status": run(capsys, "status", *common),
        "status-json": run(capsys, "status", "--output", "json", *common),
    }
    daemon = DaemonProcess(fleet.root, str(fleet.decl), "--state", fleet.state_url, "--resync", "1",
                           "--log-level", "debug", env=SECRETS)
    try:
        eventually(lambda: daemon.status()["passes"] >= 2, timeout=60)
        status_body = daemon.get("/status").text
        assert daemon.terminate() == 0
    finally:
        daemon.stop()

    scanned = set().union(*(encodings(value) for value in SECRETS.values()))
    scanned |= {token for proxy in proxies.values() for token in proxy.tokens}
    assert proxies["iot-campaigns"].tokens, "the IoT proxy saw a login (its bearer tokens are scanned for too)"
    sample = echoed("POST", "/x", [("Authorization", "Basic " + base64.b64encode(
        f"admin:{SECRETS['GW_PASSWORD']}".encode()).decode())], True)
    assert leaks("control: an echo holds the secret", sample, scanned)

    outputs = {**reads, **writes}
    found = [leak for name, (_, text) in outputs.items() for leak in leaks(name, text, scanned)]
    found += leaks("plan.json", plan_file.read_bytes(), scanned)
    found += leaks("/status", status_body, scanned) + leaks("daemon log", daemon.log.read_bytes(), scanned)
    state = [p for p in fleet.state_dir.rglob("*") if p.is_file()]
    found += [leak for path in state for leak in leaks(path.name, path.read_bytes(), scanned)]
    assert found == []

    assert all(echoed_reads[name] > 0 for name in ("iot-campaigns", "yateota", "sms-gateway")), echoed_reads
    assert all(proxy.echoes > echoed_reads[name] for name, proxy in proxies.items()), "every backend's writes too"
    for backend in ("iot", "yate", "gw"):
        assert f"backend {backend} could not be read" in reads["dry-run-text"][1]
    assert "refused" in reads["dry-run-text"][1] and "refused" in writes["apply"][1]  # the echo is shown, scrubbed
    assert any(b"refused" in path.read_bytes() for path in state)  # the SMS ledger keeps the echoed reasons
    assert {name: code for name, (code, _) in outputs.items()} == {
        **{name: 1 for name in outputs}, "status": 0, "status-json": 0}  # status reads: only writes are echoed
    if DUMP:
        Path(DUMP).write_text("\n\n".join(f"== {name}\n{text}" for name, (_, text) in outputs.items())
                              + f"\n\n== /status\n{status_body}", encoding="utf-8")
