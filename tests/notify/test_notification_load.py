"""``kind: Notification`` through the loader: the model it builds, and every mistake reported as
``FILE:LINE:COL: error: ...`` at the node, with no secret in the message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.load import load_desired_state
from reconciler.model import NotificationEvent, NotificationFormat
from reconciler.secrets import SecretRef

REPO = Path(__file__).resolve().parents[2]
CAMPAIGN = """\
apiVersion: reconciler/v1
kind: Backend
metadata: {name: yate}
spec: {type: yateota, url: "http://127.0.0.1:8701", auth: {secret: {env: YATE_SECRET}}}
---
apiVersion: reconciler/v1
kind: Campaign
metadata: {name: applet}
spec: {backend: yate, campaignId: 147, state: running}
"""


def load(tmp_path: Path, notification: str) -> tuple[object, list[str]]:
    (tmp_path / "campaigns.yaml").write_text(CAMPAIGN)
    (tmp_path / "notify.yaml").write_text(notification)
    result = load_desired_state([tmp_path], root=tmp_path)
    return result.desired, [d.format().replace(str(tmp_path) + "/", "") for d in result.diagnostics]


def test_a_valid_notification_builds_its_model(tmp_path: Path) -> None:
    """References stay references, events and campaigns become sets, format and timeout are read."""
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "hook").write_text("signing-key\n")
    desired, problems = load(tmp_path, """\
apiVersion: reconciler/v1
kind: Notification
metadata: {name: chat}
spec:
  url: {env: SLACK_URL}
  format: slack
  signingSecret: {file: secrets/hook}
  events: [rollout.halted, campaign.completed]
  campaigns: [applet]
  timeoutSeconds: 3
""")
    assert problems == []
    spec = desired.notifications["chat"]  # type: ignore[attr-defined]
    assert spec.url == SecretRef(env="SLACK_URL")
    assert spec.signing_secret == SecretRef(file="secrets/hook")
    assert spec.format is NotificationFormat.SLACK
    assert spec.events == {NotificationEvent.ROLLOUT_HALTED, NotificationEvent.CAMPAIGN_COMPLETED}
    assert spec.campaigns == {"applet"} and spec.timeout_seconds == 3.0
    assert spec.wants(NotificationEvent.ROLLOUT_HALTED, "applet")
    assert not spec.wants(NotificationEvent.ROLLOUT_HALTED, "other")
    assert spec.wants(NotificationEvent.ROLLOUT_HALTED, None)  # about no campaign: always
    assert not spec.wants(NotificationEvent.APPLY_FAILED, "applet")


@pytest.mark.parametrize(("spec", "expected"), [
    ("  url: https://hooks.example.net/x\n  events: [rollout.halted, rollout.stopped]\n",
     "notify.yaml:6:28: error: spec.events[1]: found `rollout.stopped`, expected one of: apply.failed, pass.failed"),
    ("  url: https://hooks.example.net/x\n  events: [apply.failed]\n  campaigns: [aplet]\n",
     "notify.yaml:7:15: error: spec.campaigns[0]: no Campaign named `aplet` (did you mean `applet`?)"),
    ("  url: https://hooks.example.net/x\n  events: []\n",
     "notify.yaml:6:11: error: spec.events: found an empty list, expected at least one item"),
    ("  url: https://hooks.example.net/x\n",
     "notify.yaml:4:1: error: spec: missing required field `events`"),
    ("  url: https://hooks.example.net/x\n  events: [apply.failed]\n  format: teams\n",
     "notify.yaml:7:11: error: spec.format: found `teams`, expected one of: json, slack"),
    ("  url: https://hooks.example.net/x\n  events: [apply.failed]\n  signingSecret: {file: nowhere}\n",
     "notify.yaml:7:25: error: spec.signingSecret.file: file `nowhere` does not exist"),
    ("  url: https://hooks.example.net/x\n  events: [apply.failed]\n  retries: 3\n",
     "notify.yaml:7:3: error: spec: unknown field `retries`; expected one of: url, format, signingSecret"),
])
def test_a_mistake_is_reported_at_its_node(tmp_path: Path, spec: str, expected: str) -> None:
    _, problems = load(tmp_path, f"apiVersion: reconciler/v1\nkind: Notification\nmetadata: {{name: hook}}\nspec:\n{spec}")
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


@pytest.mark.parametrize(("spec", "secret", "fragment"), [
    ("  url: https://hooks.example.net/x\n  events: [apply.failed]\n  signingSecret: hunter2-signing\n",
     "hunter2-signing", "notify.yaml:7:18: error: spec.signingSecret: secrets must be references"),
    ('  url: "https://ops:pa55word-in-url@hooks.example.net/x"\n  events: [apply.failed]\n',
     "pa55word-in-url", "notify.yaml:5:8: error: spec.url: credentials in the URL are literal secrets"),
    ("  url: hooks.slack.com/services/T0/B0/XoXoSecretPath\n  events: [apply.failed]\n",
     "XoXoSecretPath", "notify.yaml:5:8: error: spec.url: expected"),
])
def test_a_secret_written_in_the_file_is_refused_without_being_repeated(tmp_path: Path, spec: str, secret: str,
                                                                         fragment: str) -> None:
    _, problems = load(tmp_path, f"apiVersion: reconciler/v1\nkind: Notification\nmetadata: {{name: hook}}\nspec:\n{spec}")
    assert problems and all(p.startswith(fragment) for p in problems), problems
    assert not any(secret in p for p in problems)


def test_the_command_prints_file_line_col_and_exits_1(tmp_path: Path) -> None:
    """Through the real command, as CI and editors see it."""
    (tmp_path / "notify.yaml").write_text("apiVersion: reconciler/v1\nkind: Notification\nmetadata: {name: hook}\n"
                                          "spec: {url: 'https://h.example.net/x', events: [campaign.done]}\n")
    done = subprocess.run([sys.executable, "-m", "reconciler", "validate", "--root", str(tmp_path), str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 1
    assert f"{tmp_path}/notify.yaml:4:49: error: spec.events[0]: found `campaign.done`" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_example_validates_beside_the_quickstart() -> None:
    """``examples/notifications`` names quickstart campaigns: together they are valid, with no warning."""
    result = load_desired_state([REPO / "examples" / "quickstart", REPO / "examples" / "notifications"])
    assert result.diagnostics == ()
    assert result.desired is not None
    assert set(result.desired.notifications) == {"ops-oncall", "rollout-channel"}
    assert result.desired.notifications["rollout-channel"].url == SecretRef(env="SLACK_ROLLOUT_WEBHOOK_URL")


def test_only_backends_keeps_the_notifications(tmp_path: Path) -> None:
    """The daemon's pass over some backends still knows every destination."""
    desired, _ = load(tmp_path, "apiVersion: reconciler/v1\nkind: Notification\nmetadata: {name: hook}\n"
                                "spec: {url: 'https://h.example.net/x', events: [apply.failed]}\n")
    assert set(desired.only_backends(set()).notifications) == {"hook"}  # type: ignore[attr-defined]
