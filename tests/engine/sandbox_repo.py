"""A real git repository in a temp dir, declaring OTA resources against a sandbox on free ports."""

from __future__ import annotations

import subprocess
from pathlib import Path

from reconciler.sandbox.run import RunningSandbox
from reconciler.sandbox.testing import SandboxControls

SECRETS = {"IOT_PASSWORD": "admin", "YATE_SECRET": "sandbox-secret"}


def backends_yaml(sandbox: RunningSandbox) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: iot}}
spec:
  type: iot-campaigns
  url: "{sandbox.url('iot-campaigns')}"
  auth: {{username: admin, password: {{env: IOT_PASSWORD}}}}
---
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: yate}}
spec:
  type: yateota
  url: "{sandbox.url('yateota')}"
  auth: {{secret: {{env: YATE_SECRET}}}}
"""


def campaign_yaml(name: str, *, gateways: list[str], state: str = "running",
                  window: tuple[str, str] = ("2027-01-02T01:00:00Z", "2027-01-02T05:00:00Z")) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: {name}}}
spec: {{backend: iot, description: "Rollout {name}", packages: [fw], state: {state}}}
---
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {{name: {name}-gws}}
spec: {{campaign: {name}, gateways: [{", ".join(gateways)}]}}
---
apiVersion: reconciler/v1
kind: Schedule
metadata: {{name: {name}-nights}}
spec:
  campaign: {name}
  download: {{begin: "{window[0]}", end: "{window[1]}"}}
"""


PACKAGE = """\
apiVersion: reconciler/v1
kind: Package
metadata: {name: fw}
spec: {backend: iot, file: packages/fw.bin, description: Firmware 2.4}
"""

SIM_CAMPAIGN = """\
apiVersion: reconciler/v1
kind: Campaign
metadata: {name: applet}
spec:
  backend: yate
  campaignId: 147
  state: STATE
  participants: {retryFailed: {maxAttempts: 3}}
"""


def make_repo(root: Path, sandbox: RunningSandbox) -> Path:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "packages").mkdir()
    (root / "packages" / "fw.bin").write_bytes(b"firmware 2.4\n" * 100)
    decl = root / "campaigns.d"
    decl.mkdir()
    (decl / "backends.yaml").write_text(backends_yaml(sandbox), encoding="utf-8")
    (decl / "package.yaml").write_text(PACKAGE.replace("packages/", "../packages/"), encoding="utf-8")
    return decl


def write(decl: Path, name: str, text: str) -> None:
    (decl / name).write_text(text, encoding="utf-8")


def write_requests(sandbox: RunningSandbox) -> int:
    """Requests that change something: every non-GET on the IoT manager, and YateOTA actions."""
    controls = SandboxControls.of(sandbox)
    iot = sum(n for route, n in controls["iot-campaigns"].stats().requests.items()
              if not route.startswith("GET") and "/api/tokens" not in route)
    by_name = controls["yateota"].state().get("requests_by_name", {})
    return iot + sum(n for name, n in by_name.items() if name.startswith("action_"))
