"""A declared fleet for the reliability tests: a real git repository in a temp dir, with IoT OTA campaigns
(gateways, packages, per-gateway overrides, schedules) and optionally a YateOTA campaign and SMS campaigns
on the SMS gateway and Ogangi, all pointing at a running sandbox. Also: what the sandbox holds, read back
for the assertions every test in this package makes (nothing created twice, nothing sent twice).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from reconciler.sandbox.run import RunningSandbox

#: the sandbox's default credentials, by the environment variable the fleet's Backends read them from
SANDBOX_SECRETS: dict[str, str] = {
    "IOT_PASSWORD": "admin",
    "YATE_SECRET": "sandbox-secret",
    "GW_PASSWORD": "admin",
    "OG_PRIVATE_KEY": "sandbox-private",
}
SIMULATORS = ("yateota", "iot-campaigns", "ogangi", "sms-gateway")
WINDOWS = (("2027-03-01T01:00:00Z", "2027-03-01T05:00:00Z"), ("2027-03-02T01:00:00Z", "2027-03-02T03:00:00Z"))


@dataclass(frozen=True)
class FleetShape:
    """How big the declared fleet is and which backends it uses."""

    campaigns: int = 10
    gateways_per_campaign: int = 50
    packages: int = 3
    override_every: int = 10  # every Nth gateway of a campaign gets a per-gateway package override
    yateota: bool = False
    sms_gateway_recipients: int = 0
    ogangi_recipients: int = 0
    timeout_seconds: float | None = None  # Backend limits.timeoutSeconds (None: the default)
    max_retries: int | None = None
    concurrency: int | None = None

    @property
    def gateway_count(self) -> int:
        return self.campaigns * self.gateways_per_campaign


@dataclass(frozen=True)
class Fleet:
    root: Path  # the repository (git work tree)
    decl: Path  # the folder of YAML files
    shape: FleetShape
    campaign_names: tuple[str, ...]
    gateways: dict[str, tuple[str, ...]] = field(default_factory=dict)  # campaign -> declared gateways
    windows: tuple[tuple[str, str], ...] = WINDOWS  # (download, activation) of every OTA campaign
    store: str | None = None  # the state store's URL; None: SQLite under .reconciler/

    @property
    def state_url(self) -> str:
        return self.store or f"sqlite:///{self.root}/.reconciler/state.db"

    @property
    def state_dir(self) -> Path:
        return self.root / ".reconciler"


def campaign_name(index: int) -> str:
    return f"ota-{index:03d}"


def gateway_id(index: int) -> str:
    return f"gw-{index + 1:05d}"


def _limits(shape: FleetShape) -> str:
    parts = []
    if shape.timeout_seconds is not None:
        parts.append(f"timeoutSeconds: {shape.timeout_seconds:g}")
    if shape.max_retries is not None:
        parts.append(f"maxRetries: {shape.max_retries}")
    if shape.concurrency is not None:
        parts.append(f"concurrency: {shape.concurrency}")
    return f"\n  limits: {{{', '.join(parts)}}}" if parts else ""


def backends_yaml(sandbox: RunningSandbox, shape: FleetShape, *, ca_file: str = "sandbox-ca.pem") -> str:
    limits = _limits(shape)
    docs = [f"""\
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: iot}}
spec:
  type: iot-campaigns
  url: "{sandbox.url('iot-campaigns')}"
  auth: {{username: admin, password: {{env: IOT_PASSWORD}}}}{limits}
"""]
    if shape.yateota:
        docs.append(f"""\
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: yate}}
spec:
  type: yateota
  url: "{sandbox.url('yateota')}"
  auth: {{secret: {{env: YATE_SECRET}}}}{limits}
""")
    if shape.sms_gateway_recipients:
        docs.append(f"""\
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: gw}}
spec:
  type: sms-gateway
  url: "{sandbox.url('sms-gateway')}"
  auth: {{username: admin, password: {{env: GW_PASSWORD}}}}
  tls: {{caFile: ../{ca_file}}}{limits}
""")
    if shape.ogangi_recipients:
        docs.append(f"""\
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: og}}
spec:
  type: ogangi
  url: "{sandbox.url('ogangi')}"
  auth: {{instanceId: "7", publicKey: sandbox-public, privateKey: {{env: OG_PRIVATE_KEY}}}}{limits}
""")
    return "---\n".join(docs)


def package_names(shape: FleetShape) -> list[str]:
    return [f"fw-{chr(ord('a') + i)}" for i in range(shape.packages)]


def packages_yaml(shape: FleetShape) -> str:
    return "---\n".join(f"""\
apiVersion: reconciler/v1
kind: Package
metadata: {{name: {name}}}
spec: {{backend: iot, file: ../packages/{name}.bin, description: "Firmware {name}"}}
""" for name in package_names(shape))


def shifted_windows(days: int) -> tuple[tuple[str, str], ...]:
    """``WINDOWS`` moved ``days`` days later (a new generation of schedules)."""
    def move(text: str) -> str:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")) + timedelta(days=days)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return tuple((move(begin), move(end)) for begin, end in WINDOWS)


def ota_campaign_yaml(index: int, gateways: list[str], shape: FleetShape, *, state: str = "running",
                      windows: tuple[tuple[str, str], ...] = WINDOWS) -> str:
    name = campaign_name(index)
    packages = package_names(shape)
    own = packages[index % len(packages)]
    override = [g for i, g in enumerate(gateways) if shape.override_every and i % shape.override_every == 0]
    plain = [g for g in gateways if g not in override]
    docs = [f"""\
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: {name}}}
spec: {{backend: iot, description: "Rollout {index}", packages: [{own}], state: {state}}}
""", f"""\
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {{name: {name}-fleet}}
spec: {{campaign: {name}, gateways: [{", ".join(plain)}]}}
"""]
    if override and len(packages) > 1:
        docs.append(f"""\
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {{name: {name}-override}}
spec: {{campaign: {name}, gateways: [{", ".join(override)}], packages: [{packages[(index + 1) % len(packages)]}]}}
""")
    elif override:
        docs[1] = docs[1].replace(", ".join(plain), ", ".join(gateways))
    docs.append(f"""\
apiVersion: reconciler/v1
kind: Schedule
metadata: {{name: {name}-nights}}
spec:
  campaign: {name}
  download: {{begin: "{windows[0][0]}", end: "{windows[0][1]}"}}
  activation: {{begin: "{windows[1][0]}", end: "{windows[1][1]}"}}
""")
    return "---\n".join(docs)


SIM_CAMPAIGNS = """\
apiVersion: reconciler/v1
kind: Campaign
metadata: {name: applet}
spec: {backend: yate, campaignId: 147, state: running, participants: {cancel: {msisdn: ["491700000001"]}}}
---
apiVersion: reconciler/v1
kind: Campaign
metadata: {name: profile-refresh}
spec: {backend: yate, campaignId: 142, state: paused}
"""


def sms_campaign_yaml(backend: str, name: str, recipients_file: str, *, ports: bool) -> str:
    sender = '\n  from: "12345"' if backend == "og" else ""
    doc = f"""\
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: {name}}}
spec:
  backend: {backend}
  text: "Maintenance tonight in #param#"{sender}
  recipients: {{file: ../{recipients_file}}}
  onUnknownOutcome: skip
"""
    if ports:
        doc += f"""\
---
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {{name: {name}-ports}}
spec: {{campaign: {name}, ports: [0, 1, 2, 3, 4, 5, 6, 7]}}
"""
    return doc


def write_recipients(path: Path, count: int, *, prefix: str) -> None:
    rows = "\n".join(f"{prefix}{i:07d},area {i % 7}" for i in range(count))
    path.write_text("number,area\n" + rows + "\n", encoding="utf-8")


def write_fleet(root: Path, sandbox: RunningSandbox, shape: FleetShape, *, store: str | None = None) -> Fleet:
    """Create the repository: ``root/campaigns.d/*.yaml`` plus package, recipient and CA files."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    decl = root / "campaigns.d"
    decl.mkdir()
    (root / "packages").mkdir()
    for i, name in enumerate(package_names(shape)):
        (root / "packages" / f"{name}.bin").write_bytes(f"firmware {name} build {i}\n".encode() * 200)
    shutil.copyfile(sandbox.tls.ca_file, root / "sandbox-ca.pem")
    (decl / "backends.yaml").write_text(backends_yaml(sandbox, shape), encoding="utf-8")
    names: list[str] = []
    gateways: dict[str, tuple[str, ...]] = {}
    if shape.campaigns:
        (decl / "packages.yaml").write_text(packages_yaml(shape), encoding="utf-8")
    for c in range(shape.campaigns):
        members = [gateway_id(c * shape.gateways_per_campaign + g) for g in range(shape.gateways_per_campaign)]
        (decl / f"{campaign_name(c)}.yaml").write_text(ota_campaign_yaml(c, members, shape), encoding="utf-8")
        names.append(campaign_name(c))
        gateways[campaign_name(c)] = tuple(members)
    if shape.yateota:
        (decl / "sim.yaml").write_text(SIM_CAMPAIGNS, encoding="utf-8")
        names += ["applet", "profile-refresh"]
    if shape.sms_gateway_recipients:
        write_recipients(root / "gw-recipients.csv", shape.sms_gateway_recipients, prefix="49170")
        (decl / "sms-gw.yaml").write_text(sms_campaign_yaml("gw", "notice", "gw-recipients.csv", ports=True),
                                          encoding="utf-8")
        names.append("notice")
    if shape.ogangi_recipients:
        write_recipients(root / "og-recipients.csv", shape.ogangi_recipients, prefix="58414")
        (decl / "sms-og.yaml").write_text(sms_campaign_yaml("og", "welcome", "og-recipients.csv", ports=False),
                                          encoding="utf-8")
        names.append("welcome")
    return Fleet(root, decl, shape, tuple(names), gateways, store=store)


def rewrite_windows(fleet: Fleet, days: int) -> Fleet:
    """Move the windows of every declared OTA campaign ``days`` days later (every gateway is rescheduled)."""
    windows = shifted_windows(days)
    for index in range(fleet.shape.campaigns):
        name = campaign_name(index)
        (fleet.decl / f"{name}.yaml").write_text(
            ota_campaign_yaml(index, list(fleet.gateways[name]), fleet.shape, windows=windows), encoding="utf-8")
    return replace(fleet, windows=windows)


# --- running the real command ---------------------------------------------------------------------


def environment(secrets: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, **SANDBOX_SECRETS, **(secrets or {}), "NO_COLOR": "1"}


def reconcile_command(fleet: Fleet, *args: str) -> list[str]:
    # a new store and Ogangi, which cannot be asked what it sent: the operator's yes, as after a fresh sandbox
    return [sys.executable, "-m", "reconciler", *args, str(fleet.decl), "--state", fleet.state_url,
            "--risk-duplicate-sms"]


def run_reconcile(fleet: Fleet, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(reconcile_command(fleet, *args), cwd=fleet.root, env=environment(), capture_output=True,
                          text=True, timeout=timeout)


# --- the sandbox, read back -----------------------------------------------------------------------


def sandbox_state(sandbox: RunningSandbox, name: str) -> dict[str, Any]:
    return httpx.get(f"{sandbox.url(name)}/_sandbox/state", verify=False, timeout=30).json()


def request_total(sandbox: RunningSandbox) -> int:
    """Requests the four simulators have served (``/_sandbox/`` control calls are not counted)."""
    return sum(httpx.get(f"{sandbox.url(name)}/_sandbox/stats", verify=False, timeout=10).json()["total"]
               for name in SIMULATORS)


def set_faults(sandbox: RunningSandbox, name: str, **settings: Any) -> None:
    httpx.post(f"{sandbox.url(name)}/_sandbox/faults", json=settings, verify=False, timeout=10).raise_for_status()


def clear_faults(sandbox: RunningSandbox) -> None:
    for name in SIMULATORS:
        set_faults(sandbox, name, latency_ms=0, error_rate=0, timeout_rate=0, drop_rate=0, malformed_rate=0)


def reset(sandbox: RunningSandbox) -> None:
    for name in SIMULATORS:
        httpx.post(f"{sandbox.url(name)}/_sandbox/reset", verify=False, timeout=10).raise_for_status()


@dataclass(frozen=True)
class Duplicates:
    """Everything the sandbox holds more than once, each with its count; empty when all is well."""

    campaigns: dict[str, int]  # IoT campaign names
    gateways: dict[str, int]  # gateway ids present in more than one campaign (or twice in one)
    packages: dict[str, int]  # package (program) names
    sms_gateway: dict[str, int]  # numbers sent to more than once by the SMS gateway
    ogangi: dict[str, int]  # numbers sent to more than once through Ogangi

    @property
    def total(self) -> int:
        return sum(n - 1 for part in (self.campaigns, self.gateways, self.packages, self.sms_gateway, self.ogangi)
                   for n in part.values())


def _over_one(counter: Counter[str]) -> dict[str, int]:
    return {key: n for key, n in sorted(counter.items()) if n > 1}


def duplicates(sandbox: RunningSandbox) -> Duplicates:
    iot = sandbox_state(sandbox, "iot-campaigns")
    gateways: Counter[str] = Counter(g["gatewayId"] for c in iot["campaigns"] for g in c["gateways"])
    return Duplicates(
        campaigns=_over_one(Counter(c["name"] for c in iot["campaigns"])),
        gateways=_over_one(gateways),
        packages=_over_one(Counter(p["name"] for p in iot["packages"])),
        sms_gateway=_over_one(sent_numbers(sandbox, "sms-gateway")),
        ogangi=_over_one(sent_numbers(sandbox, "ogangi")),
    )


def sent_numbers(sandbox: RunningSandbox, name: str) -> Counter[str]:
    key = "number" if name == "sms-gateway" else "to"
    return Counter(str(m[key]).strip().lstrip("+") for m in sandbox_state(sandbox, name)["messages"])


def iot_campaigns(sandbox: RunningSandbox) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in sandbox_state(sandbox, "iot-campaigns")["campaigns"]}
