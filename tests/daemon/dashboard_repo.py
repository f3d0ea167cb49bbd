"""A repository for the dashboard's browser tests: an IoT rollout in waves, a YateOTA campaign and an SMS
send through the SMS gateway, against the sandbox (and the browser they are looked at with)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from reconciler.sandbox.run import RunningSandbox
from tests.engine import sandbox_repo as repo

CHROMIUM = Path("/usr/bin/chromium")
SECRETS = {**repo.SECRETS, "GW_PASSWORD": "admin", "HOOK_TOKEN": "hook-token-for-dashboard-tests"}
#: values that must never reach a page or an event stream (the sandbox's "admin" password is also a user name)
SECRET_VALUES = ("sandbox-secret", "hook-token-for-dashboard-tests")
DOCS = Path(__file__).resolve().parents[2] / "docs"


def chromium_or_skip() -> Path:
    """Debian's chromium; without it the browser tests are skipped, except under CI where they must run."""
    if CHROMIUM.exists():
        return CHROMIUM
    reason = f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def numbers(count: int, first: int = 0) -> list[str]:
    return [f"49170{i:07d}" for i in range(first, first + count)]


def gateway_backend(sandbox: RunningSandbox) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: gw}}
spec:
  type: sms-gateway
  url: "{sandbox.url('sms-gateway')}"
  auth: {{username: admin, password: {{env: GW_PASSWORD}}}}
  tls: {{verify: false}}
"""


def sms_campaign(name: str, *, per_second: float, recipients_file: str) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: {name}}}
spec:
  backend: gw
  text: "Maintenance tonight in #param#"
  recipients: {{file: {recipients_file}}}
  rate: {{perSecond: {per_second}}}
---
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {{name: {name}-ports}}
spec: {{campaign: {name}, ports: [0, 1, 2, 3]}}
"""


ROLLOUT = """\
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: {name}}}
spec:
  backend: iot
  description: Gateway firmware 2.4, in waves
  packages: [fw]
  rollout: {{waves: [10%, 50%, 100%], successThreshold: 90%, maxFailureRate: 20%}}
---
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {{name: {name}-gws}}
spec: {{campaign: {name}, gateways: [{gateways}]}}
"""


def write_recipients(root: Path, name: str, recipients: list[str]) -> str:
    (root / name).write_text("number,area\n" + "".join(f"{n},area {i % 7}\n" for i, n in enumerate(recipients)),
                             encoding="utf-8")
    return f"../{name}"


def fleet_repo(root: Path, sandbox: RunningSandbox, *, recipients: list[str], per_second: float) -> Path:
    """The declarations folder of a repository with all three kinds of campaign."""
    decl = repo.make_repo(root, sandbox)
    repo.write(decl, "gw.yaml", gateway_backend(sandbox))
    gateways = ", ".join(f"gw-{i:05d}" for i in range(1, 21))
    repo.write(decl, "rollout.yaml", ROLLOUT.format(name="fw-rollout", gateways=gateways))
    repo.write(decl, "applet.yaml", repo.SIM_CAMPAIGN.replace("STATE", "running"))
    csv = write_recipients(root, "recipients.csv", recipients)
    repo.write(decl, "notice.yaml", sms_campaign("outage-notice", per_second=per_second, recipients_file=csv))
    git = ["git", "-C", str(root), "-c", "user.name=ops", "-c", "user.email=ops@example.org"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "Roll out firmware 2.4; outage notice"], check=True)
    return decl
