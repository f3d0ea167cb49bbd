"""The standard fleet of ``measures.md``: a repository declaring it, and a sandbox that holds it.

Every performance figure is measured against the same declared world, so that figures from different
scripts (and different days) compare. The fleet (parameters adjustable, see ``FleetSpec``):

- IoT campaign manager: 20 campaigns x 100 gateways (``gw-00001`` .., distinct per campaign), 3 packages
  (two for every gateway, one as a per-gateway override for 10% of the gateways), a download and an
  activation window for every gateway;
- YateOTA: 10 campaigns x 1,000 participants, 5% failed, under ``retryFailed``;
- SMS gateway: one campaign, 10,000 recipients on 8 ports; Ogangi: one campaign, 2,000 recipients.
  Neither declares quiet hours or an active period, so both send whatever the time of day;
- every backend ``limits: {concurrency: 16}``, secrets as ``{env: ...}`` (``FLEET_ENV``).

Backends point at a sandbox on ``port_base + 1..4`` (YateOTA, IoT, Ogangi, SMS gateway, as
``reconcile sandbox`` orders them); ``fleet_sandbox.py`` starts the simulators that hold this fleet.

    .venv/bin/python bench/fleet.py --out DIR [--port-base N] [--iot-campaigns 20] [--quick] ...
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
PYTHON = sys.executable
FLEET_ENV = {"IOT_PASSWORD": "admin", "YATE_SECRET": "sandbox-secret", "GW_PASSWORD": "admin",
             "OG_PRIVATE_KEY": "sandbox-private"}
FIRST_YATE_CAMPAIGN = 1001
WINDOWS = {"download": ("2030-01-02T01:00:00Z", "2030-01-02T05:00:00Z"),
           "activation": ("2030-01-03T01:00:00Z", "2030-01-03T03:00:00Z")}


@dataclass(frozen=True)
class FleetSpec:
    """The standard fleet; every count can be changed (``--quick`` runs use smaller ones)."""

    iot_campaigns: int = 20
    gateways_per_campaign: int = 100
    override_share: float = 0.10
    yate_campaigns: int = 10
    participants: int = 1_000
    failed_share: float = 0.05
    sms_recipients: int = 10_000
    sms_ports: int = 8
    ogangi_recipients: int = 2_000
    concurrency: int = 16
    ogangi_in_flight: int = 0  # 0: the adapter's default (1 message in flight)

    @property
    def gateways(self) -> int:
        return self.iot_campaigns * self.gateways_per_campaign

    @property
    def overrides_per_campaign(self) -> int:
        return round(self.gateways_per_campaign * self.override_share)

    @property
    def failed_per_campaign(self) -> int:
        return round(self.participants * self.failed_share)

    def yate_fleet(self) -> list[tuple[int, int, float]]:
        """The YateOTA simulator's ``fleet`` option: (campaign id, participants, failed share)."""
        return [(FIRST_YATE_CAMPAIGN + n, self.participants, self.failed_share) for n in range(self.yate_campaigns)]


QUICK = FleetSpec(iot_campaigns=4, gateways_per_campaign=20, yate_campaigns=2, participants=200,
                  sms_recipients=500, ogangi_recipients=50)


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--name`` option per ``FleetSpec`` field (dashes for underscores)."""
    for item in fields(FleetSpec):
        parser.add_argument(f"--{item.name.replace('_', '-')}", type=type(item.default), default=None,
                            help=f"default {item.default}")


def spec_from(args: argparse.Namespace, *, quick: bool = False) -> FleetSpec:
    base = QUICK if quick else FleetSpec()
    chosen = {f.name: getattr(args, f.name) for f in fields(FleetSpec) if getattr(args, f.name, None) is not None}
    return FleetSpec(**{**{f.name: getattr(base, f.name) for f in fields(FleetSpec)}, **chosen})


# --- the repository ------------------------------------------------------------------------------


def write_fleet(spec: FleetSpec, out: Path, *, port_base: int) -> Path:
    """Write the fleet's repository under ``out`` (created); returns its ``campaigns.d``."""
    decl = out / "campaigns.d"
    for folder in (out / ".git", decl, out / "packages", out / "recipients"):
        folder.mkdir(parents=True, exist_ok=True)  # an empty .git marks the repository root
    for n in range(3):
        (out / "packages" / f"pkg-{n}.bin").write_bytes(f"package {n}\n".encode() * (200 * (n + 1)))
    _write_numbers(out / "recipients" / "gateway.csv", "49170", spec.sms_recipients)
    _write_numbers(out / "recipients" / "ogangi.csv", "58414", spec.ogangi_recipients)
    (decl / "backends.yaml").write_text(_backends(spec, port_base), encoding="utf-8")
    (decl / "packages.yaml").write_text(_packages(), encoding="utf-8")
    for n in range(spec.iot_campaigns):
        (decl / f"iot-{n:03d}.yaml").write_text(iot_campaign(spec, n), encoding="utf-8")
    (decl / "yateota.yaml").write_text(_yate_campaigns(spec), encoding="utf-8")
    (decl / "sms.yaml").write_text(_sms_campaigns(spec), encoding="utf-8")
    return decl


def write_sms_repo(out: Path, *, recipients: int, ports: int, port_base: int) -> Path:
    """A repository with only the SMS gateway and one campaign of ``recipients`` (the 1M-recipient case)."""
    decl = out / "campaigns.d"
    for folder in (out / ".git", decl, out / "recipients"):
        folder.mkdir(parents=True, exist_ok=True)
    _write_numbers(out / "recipients" / "gateway.csv", "4917", recipients)
    spec = FleetSpec(sms_ports=ports)
    gateway_backend = _backends(spec, port_base).split("---\n")[-1]
    gateway_campaign = _sms_campaigns(spec).split("---\n")[:2]
    (decl / "sms.yaml").write_text("---\n".join([gateway_backend, *gateway_campaign]), encoding="utf-8")
    return decl


def _write_numbers(path: Path, prefix: str, count: int) -> None:
    with path.open("w", encoding="utf-8") as file:
        file.write("number,area\n")
        file.writelines(f"{prefix}{i:07d},area {i % 7}\n" for i in range(count))


def _backends(spec: FleetSpec, port_base: int) -> str:
    limits = f"limits: {{concurrency: {spec.concurrency}}}"
    in_flight = f"\n  options: {{inFlight: {spec.ogangi_in_flight}}}" if spec.ogangi_in_flight else ""
    return f"""\
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: yate}}
spec:
  type: yateota
  url: http://127.0.0.1:{port_base + 1}
  auth: {{secret: {{env: YATE_SECRET}}}}
  {limits}
---
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: iot}}
spec:
  type: iot-campaigns
  url: http://127.0.0.1:{port_base + 2}
  auth: {{username: admin, password: {{env: IOT_PASSWORD}}}}
  {limits}
---
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: og}}
spec:
  type: ogangi
  url: http://127.0.0.1:{port_base + 3}
  auth: {{instanceId: "7", publicKey: sandbox-public, privateKey: {{env: OG_PRIVATE_KEY}}}}
  {limits}{in_flight}
---
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: gw}}
spec:
  type: sms-gateway
  url: https://127.0.0.1:{port_base + 4}
  auth: {{username: admin, password: {{env: GW_PASSWORD}}}}
  tls: {{verify: false}}
  {limits}
"""


def _packages() -> str:
    return "---\n".join(f"""\
apiVersion: reconciler/v1
kind: Package
metadata: {{name: pkg-{n}}}
spec: {{backend: iot, file: ../packages/pkg-{n}.bin, description: Fleet package {n}}}
""" for n in range(3))


def gateway_ids(spec: FleetSpec, campaign: int) -> list[str]:
    first = campaign * spec.gateways_per_campaign + 1
    return [f"gw-{g:05d}" for g in range(first, first + spec.gateways_per_campaign)]


def iot_campaign(spec: FleetSpec, n: int) -> str:
    """One IoT campaign: its gateways (the last ``override_share`` with their own package) and windows."""
    gateways = gateway_ids(spec, n)
    split = len(gateways) - spec.overrides_per_campaign
    name = f"fw-{n:03d}"
    override = f"""\
---
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {{name: {name}-override}}
spec: {{campaign: {name}, packages: [pkg-2], gateways: [{", ".join(gateways[split:])}]}}
""" if split < len(gateways) else ""
    return f"""\
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: {name}}}
spec: {{backend: iot, description: "Fleet rollout {n}", packages: [pkg-0, pkg-1], state: running}}
---
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {{name: {name}-gateways}}
spec: {{campaign: {name}, gateways: [{", ".join(gateways[:split])}]}}
{override}---
apiVersion: reconciler/v1
kind: Schedule
metadata: {{name: {name}-windows}}
spec:
  campaign: {name}
  download: {{begin: "{WINDOWS['download'][0]}", end: "{WINDOWS['download'][1]}"}}
  activation: {{begin: "{WINDOWS['activation'][0]}", end: "{WINDOWS['activation'][1]}"}}
"""


def _yate_campaigns(spec: FleetSpec) -> str:
    return "---\n".join(f"""\
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: sim-{campaign_id}}}
spec:
  backend: yate
  campaignId: {campaign_id}
  state: running
  participants: {{retryFailed: {{maxAttempts: 3}}}}
""" for campaign_id, _, _ in spec.yate_fleet())


def _sms_campaigns(spec: FleetSpec) -> str:
    ports = ", ".join(str(p) for p in range(spec.sms_ports))
    return f"""\
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: notice-gw}}
spec:
  backend: gw
  text: "Maintenance tonight in #param#"
  recipients: {{file: ../recipients/gateway.csv}}
  state: active
---
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {{name: notice-gw-ports}}
spec: {{campaign: notice-gw, ports: [{ports}]}}
---
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: notice-og}}
spec:
  backend: og
  text: "Maintenance tonight in #param#"
  from: "12345"
  recipients: {{file: ../recipients/ogangi.csv}}
  state: active
"""


def spec_arguments(spec: FleetSpec) -> list[str]:
    """The command-line options that reproduce ``spec``."""
    return [arg for f in fields(FleetSpec) for arg in (f"--{f.name.replace('_', '-')}", str(getattr(spec, f.name)))]


def reconcile_env() -> dict[str, str]:
    """The environment a reconciler run of the fleet needs: its secrets, quiet logs, and bytecode caching
    (an installed tool starts from compiled modules; ``PYTHONDONTWRITEBYTECODE``, set on some machines,
    would charge every run with compiling the reconciler again)."""
    inherited = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**inherited, **FLEET_ENV, "RECONCILE_LOG_LEVEL": "warning", "NO_COLOR": "1"}


def wait_until(check: Callable[[], bool], *, timeout: float, interval: float = 0.01) -> bool:
    """Poll ``check()`` until it is true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return bool(check())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="write the repository here")
    parser.add_argument("--port-base", type=int, default=18700)
    parser.add_argument("--quick", action="store_true", help="a small fleet")
    add_spec_arguments(parser)
    args = parser.parse_args()
    print(write_fleet(spec_from(args, quick=args.quick), args.out, port_base=args.port_base))


if __name__ == "__main__":
    main()
