"""A repository declaring a fleet against the sandbox, for benchmarks and tests alike.

Every benchmark figure and every reliability test is taken against a declared world; when both build it
the same way, a figure and a test talk about the same thing, and a larger fleet (more gateways, more
recipients) is one ``FleetSpec`` away. The world, every count a field of ``FleetSpec``:

- IoT campaign manager (backend ``iot``): ``iot_campaigns`` campaigns ``fw-000``.. of
  ``gateways_per_campaign`` gateways each (``gw-00001``.., distinct per campaign), every campaign with the
  first packages (``pkg-0``, ``pkg-1`` of 3) and its last ``override_share`` of gateways with the last
  package as a per-gateway override, and a download and an activation window (``windows``) for every
  gateway;
- YateOTA (``yate``): ``yate_campaigns`` campaigns ``sim-1001``.. under ``retryFailed``, as the
  simulator's ``fleet`` option creates them (``FleetSpec.yate_fleet``); and/or, with ``yate_fixtures``,
  two campaigns of the simulator's own fixtures (one cancelling a participant, one paused);
- SMS gateway (``gw``): one campaign to ``sms_recipients`` numbers on ``sms_ports`` ports; Ogangi (``og``):
  one campaign to ``ogangi_recipients`` numbers. No quiet hours and no active period: both send whatever
  the time of day;
- every Backend ``limits: {concurrency: ...}`` (with ``timeoutSeconds`` and ``maxRetries`` when set), its
  secrets as ``{env: ...}`` (``SANDBOX_SECRETS`` holds the sandbox's values).

A backend with nothing to do is not declared. Writing only files (no process, no request), it serves a
benchmark that starts the simulators itself as well as a test holding a ``RunningSandbox``.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

#: the sandbox's credentials, by the environment variable the fleet's Backends read them from
SANDBOX_SECRETS: dict[str, str] = {"IOT_PASSWORD": "admin", "YATE_SECRET": "sandbox-secret", "GW_PASSWORD": "admin",
                                   "OG_PRIVATE_KEY": "sandbox-private"}
#: the simulators, in the order ``reconcile sandbox --port-base N`` serves them on ``N + 1`` .. ``N + 4``
SIMULATORS = ("yateota", "iot-campaigns", "ogangi", "sms-gateway")
FIRST_YATE_CAMPAIGN = 1001
Window = tuple[str, str]
#: (download, activation) of every gateway: far enough ahead that no gateway moves during a run
WINDOWS: tuple[Window, Window] = (("2030-01-02T01:00:00Z", "2030-01-02T05:00:00Z"),
                                  ("2030-01-03T01:00:00Z", "2030-01-03T03:00:00Z"))
#: (download, activation) as recurring windows (``FleetSpec.recurring_windows``): nightly downloads, weekend
#: activations, as a large fleet's maintenance windows are declared
RECURRING_WINDOWS: tuple[str, str] = ('{daily: "01:00-05:00", timezone: Europe/Berlin}',
                                      '{weekly: {days: [sat, sun], time: "23:00-02:00"}, timezone: Europe/Berlin}')
GATEWAY_RECIPIENTS = "recipients/gateway.csv"
OGANGI_RECIPIENTS = "recipients/ogangi.csv"
YATE_FIXTURES_FILE = "yateota-fixtures.yaml"
#: two campaigns of the YateOTA simulator's fixtures: participant 1 of 147 cancelled, 142 paused
YATE_FIXTURE_CAMPAIGNS = """\
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


@dataclass(frozen=True)
class FleetSpec:
    """The size of the declared fleet (defaults: the standard fleet of ``measures.md``)."""

    iot_campaigns: int = 20
    gateways_per_campaign: int = 100
    override_share: float = 0.10
    packages: int = 3
    windows: tuple[Window, Window] = WINDOWS
    recurring_windows: bool = False  # True: ``RECURRING_WINDOWS`` (wall-clock hours) instead of ``windows``
    yate_campaigns: int = 10
    participants: int = 1_000
    failed_share: float = 0.05
    yate_fixtures: bool = False
    sms_recipients: int = 10_000
    sms_ports: int = 8
    ogangi_recipients: int = 2_000
    ogangi_in_flight: int = 0  # 0: the adapter's default (1 message in flight)
    concurrency: int = 16
    timeout_seconds: float | None = None  # None: the Backend's default
    max_retries: int | None = None

    @property
    def gateways(self) -> int:
        return self.iot_campaigns * self.gateways_per_campaign

    @property
    def overrides_per_campaign(self) -> int:
        """Gateways of a campaign with a package of their own: ``override_share`` of them, rounded up (a
        share of a small campaign still overrides one gateway)."""
        return min(self.gateways_per_campaign, math.ceil(round(self.gateways_per_campaign * self.override_share, 6)))

    @property
    def failed_per_campaign(self) -> int:
        return round(self.participants * self.failed_share)

    def yate_fleet(self) -> list[tuple[int, int, float]]:
        """The YateOTA simulator's ``fleet`` option: (campaign id, participants, failed share)."""
        return [(FIRST_YATE_CAMPAIGN + n, self.participants, self.failed_share) for n in range(self.yate_campaigns)]


@dataclass(frozen=True)
class Endpoints:
    """Where the fleet's Backends point: a URL per simulator name, and how the HTTPS SMS gateway is
    trusted (its CA file, copied into the repository; ``None``: ``tls: {verify: false}``)."""

    urls: Mapping[str, str]
    gateway_ca_file: Path | None = None

    @classmethod
    def on_ports(cls, port_base: int) -> Endpoints:
        """The simulators as ``reconcile sandbox --port-base`` serves them (the gateway's CA not at hand)."""
        return cls({name: f"{'https' if name == 'sms-gateway' else 'http'}://127.0.0.1:{port_base + n}"
                    for n, name in enumerate(SIMULATORS, start=1)})


@dataclass(frozen=True)
class FleetRepo:
    """A written fleet: the repository, its folder of declarations, and what it declares."""

    root: Path
    decl: Path
    spec: FleetSpec
    campaign_names: tuple[str, ...]
    gateways: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # IoT campaign -> its gateways


def write_fleet(spec: FleetSpec, root: Path, endpoints: Endpoints) -> FleetRepo:
    """Write the fleet's repository under ``root`` (an empty ``.git`` marks it): ``campaigns.d/*.yaml``
    and the package, recipient and CA files they name."""
    decl = root / "campaigns.d"
    for folder in (root / ".git", decl):
        folder.mkdir(parents=True, exist_ok=True)
    (decl / "backends.yaml").write_text(backends_yaml(spec, endpoints), encoding="utf-8")
    if endpoints.gateway_ca_file is not None and spec.sms_recipients:
        shutil.copyfile(endpoints.gateway_ca_file, root / "sandbox-ca.pem")
    names: list[str] = []
    gateways: dict[str, tuple[str, ...]] = {}
    if spec.iot_campaigns:
        _write_packages(spec, root, decl)
    for n in range(spec.iot_campaigns):
        (decl / iot_campaign_file(n)).write_text(iot_campaign_yaml(spec, n), encoding="utf-8")
        names.append(iot_campaign_name(n))
        gateways[iot_campaign_name(n)] = tuple(gateway_ids(spec, n))
    if spec.yate_campaigns:
        (decl / "yateota.yaml").write_text(_yate_campaigns(spec), encoding="utf-8")
        names += [f"sim-{campaign_id}" for campaign_id, _, _ in spec.yate_fleet()]
    if spec.yate_fixtures:
        (decl / YATE_FIXTURES_FILE).write_text(YATE_FIXTURE_CAMPAIGNS, encoding="utf-8")
        names += ["applet", "profile-refresh"]
    names += _write_sms(spec, root, decl)
    return FleetRepo(root, decl, spec, tuple(names), gateways)


def rewrite_windows(decl: Path, spec: FleetSpec, days: int) -> FleetSpec:
    """Move the windows of every IoT campaign declared in ``decl`` ``days`` days later than ``WINDOWS``
    (every gateway is rescheduled); returns the fleet as it is now declared."""
    moved = replace(spec, windows=shifted_windows(days))
    for n in range(moved.iot_campaigns):
        (decl / iot_campaign_file(n)).write_text(iot_campaign_yaml(moved, n), encoding="utf-8")
    return moved


def shifted_windows(days: int) -> tuple[Window, Window]:
    """``WINDOWS`` moved ``days`` days later (a new generation of schedules)."""
    def move(text: str) -> str:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")) + timedelta(days=days)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    (download, activation) = WINDOWS
    return (move(download[0]), move(download[1])), (move(activation[0]), move(activation[1]))


# --- IoT -----------------------------------------------------------------------------------------


def iot_campaign_name(n: int) -> str:
    return f"fw-{n:03d}"


def iot_campaign_file(n: int) -> str:
    return f"iot-{n:03d}.yaml"


def gateway_id(index: int) -> str:
    """The ``index``-th gateway of the fleet (from 0), as the IoT simulator enrols them."""
    return f"gw-{index + 1:05d}"


def gateway_ids(spec: FleetSpec, campaign: int) -> list[str]:
    first = campaign * spec.gateways_per_campaign
    return [gateway_id(first + g) for g in range(spec.gateways_per_campaign)]


def package_names(spec: FleetSpec) -> list[str]:
    return [f"pkg-{n}" for n in range(spec.packages)]


def iot_campaign_yaml(spec: FleetSpec, n: int, *, state: str = "running") -> str:
    """One IoT campaign: its gateways (the last ``overrides_per_campaign`` with their own package, when
    the fleet has more than one package) and their windows."""
    gateways = gateway_ids(spec, n)
    packages = package_names(spec)
    own, extra = (packages[:-1], packages[-1]) if len(packages) > 1 else (packages, None)
    split = len(gateways) - spec.overrides_per_campaign if extra else len(gateways)
    name = iot_campaign_name(n)
    override = f"""\
---
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {{name: {name}-override}}
spec: {{campaign: {name}, packages: [{extra}], gateways: [{", ".join(gateways[split:])}]}}
""" if split < len(gateways) else ""
    (download, activation) = RECURRING_WINDOWS if spec.recurring_windows else (
        _fixed(spec.windows[0]), _fixed(spec.windows[1]))
    return f"""\
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: {name}}}
spec: {{backend: iot, description: "Fleet rollout {n}", packages: [{", ".join(own)}], state: {state}}}
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
  download: {download}
  activation: {activation}
"""


def _fixed(window: Window) -> str:
    return f'{{begin: "{window[0]}", end: "{window[1]}"}}'


def _write_packages(spec: FleetSpec, root: Path, decl: Path) -> None:
    (root / "packages").mkdir(exist_ok=True)
    for n, name in enumerate(package_names(spec)):
        (root / "packages" / f"{name}.bin").write_bytes(f"package {n}\n".encode() * (200 * (n + 1)))
    (decl / "packages.yaml").write_text("---\n".join(f"""\
apiVersion: reconciler/v1
kind: Package
metadata: {{name: {name}}}
spec: {{backend: iot, file: ../packages/{name}.bin, description: Fleet package {n}}}
""" for n, name in enumerate(package_names(spec))), encoding="utf-8")


# --- YateOTA, SMS --------------------------------------------------------------------------------


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


def _write_sms(spec: FleetSpec, root: Path, decl: Path) -> list[str]:
    """The SMS campaigns in ``sms.yaml`` and their recipient files; returns the campaigns' names."""
    docs: list[str] = []
    names: list[str] = []
    if spec.sms_recipients:
        write_recipients(root / GATEWAY_RECIPIENTS, spec.sms_recipients, prefix="49170")
        docs += [_sms_campaign("notice-gw", "gw", GATEWAY_RECIPIENTS, ""), f"""\
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {{name: notice-gw-ports}}
spec: {{campaign: notice-gw, ports: [{", ".join(str(p) for p in range(spec.sms_ports))}]}}
"""]
        names.append("notice-gw")
    if spec.ogangi_recipients:
        write_recipients(root / OGANGI_RECIPIENTS, spec.ogangi_recipients, prefix="58414")
        docs.append(_sms_campaign("notice-og", "og", OGANGI_RECIPIENTS, '\n  from: "12345"'))
        names.append("notice-og")
    if docs:
        (decl / "sms.yaml").write_text("---\n".join(docs), encoding="utf-8")
    return names


def _sms_campaign(name: str, backend: str, recipients: str, sender: str) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: {name}}}
spec:
  backend: {backend}
  text: "Maintenance tonight in #param#"{sender}
  recipients: {{file: ../{recipients}}}
  state: active
"""


def write_recipients(path: Path, count: int, *, prefix: str) -> None:
    """A recipients CSV of ``count`` numbers ``<prefix><7 digits>``, each with its area as parameter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as file:
        file.write("number,area\n")
        file.writelines(f"{prefix}{i:07d},area {i % 7}\n" for i in range(count))


# --- Backends ------------------------------------------------------------------------------------


def backends_yaml(spec: FleetSpec, endpoints: Endpoints) -> str:
    """The Backends with work in the fleet, in the sandbox's port order."""
    limits = f"limits: {{{_limits(spec)}}}"
    docs = []
    if spec.yate_campaigns or spec.yate_fixtures:
        docs.append(_backend("yate", "yateota", endpoints.urls["yateota"], "{secret: {env: YATE_SECRET}}", limits))
    if spec.iot_campaigns:
        docs.append(_backend("iot", "iot-campaigns", endpoints.urls["iot-campaigns"],
                             "{username: admin, password: {env: IOT_PASSWORD}}", limits))
    if spec.ogangi_recipients:
        in_flight = f"\n  options: {{inFlight: {spec.ogangi_in_flight}}}" if spec.ogangi_in_flight else ""
        docs.append(_backend("og", "ogangi", endpoints.urls["ogangi"],
                             '{instanceId: "7", publicKey: sandbox-public, privateKey: {env: OG_PRIVATE_KEY}}',
                             limits + in_flight))
    if spec.sms_recipients:
        trust = "{verify: false}" if endpoints.gateway_ca_file is None else "{caFile: ../sandbox-ca.pem}"
        docs.append(_backend("gw", "sms-gateway", endpoints.urls["sms-gateway"],
                             "{username: admin, password: {env: GW_PASSWORD}}", f"tls: {trust}\n  {limits}"))
    return "---\n".join(docs)


def _limits(spec: FleetSpec) -> str:
    parts = [f"timeoutSeconds: {spec.timeout_seconds:g}"] if spec.timeout_seconds is not None else []
    parts += [f"maxRetries: {spec.max_retries}"] if spec.max_retries is not None else []
    return ", ".join([*parts, f"concurrency: {spec.concurrency}"])


def _backend(name: str, kind: str, url: str, auth: str, rest: str) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: {name}}}
spec:
  type: {kind}
  url: {url}
  auth: {auth}
  {rest}
"""
