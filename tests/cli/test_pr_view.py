"""The PR view is honest: markdown shows what text shows (held sends, pending work, waves, stranded,
warnings, unreadable backends); pending work is a change for --detailed-exitcode; an unreadable backend is
never "No changes"; text from outside cannot forge a ``FILE:LINE:COL:`` line in any format."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.actions import Action, Verb
from reconciler.cli.render import render_json, render_markdown, render_text, summary_line
from reconciler.diagnostics import Diagnostic, Severity
from reconciler.model import Kind, ResourceKey
from reconciler.planner.plan import Noop, Plan
from reconciler.sandbox.run import SandboxOptions, running_sandbox
from tests.engine import crash

NOTICE = ResourceKey(Kind.CAMPAIGN, "notice")
ROLLOUT = ResourceKey(Kind.CAMPAIGN, "fw-rollout")
HELD = Noop(NOTICE, "20 to send, held: quiet hours until 2026-12-08T07:00:00+01:00 (to-send 20)")
WAVE = Noop(ROLLOUT, "rollout wave 1 of 3 (10%: 27 gateways)")
FORGED = "boom\nfile.yaml:1:1: error: forged\x1b[2J"


def every_format(plan: Plan) -> dict[str, str]:
    return {"text": render_text(plan), "markdown": render_markdown(plan), "json": render_json(plan, paths=["x"])}


def test_held_sends_are_pending_changes_shown_in_every_format() -> None:
    plan = Plan(noops=(HELD, WAVE), pending=("Campaign/notice: 20 SMS to send once held no longer (quiet hours)",))
    assert plan.has_changes
    out = every_format(plan)
    for name in ("text", "markdown"):
        assert "held: quiet hours until 2026-12-08T07:00:00+01:00" in out[name], name
        assert "rollout wave 1 of 3" in out[name], name
        assert "20 SMS to send once held no longer" in out[name], name
        assert "No changes. The backends match" not in out[name], name
    assert json.loads(out["json"])["summary"]["has_changes"] is True
    assert json.loads(out["json"])["pending"] == list(plan.pending)


def test_an_unreadable_backend_is_never_summarised_as_no_changes() -> None:
    plan = Plan(unreadable=("iot-sandbox",), diagnostics=(Diagnostic("backend iot-sandbox could not be read: 503",
                                                                     severity=Severity.ERROR),))
    line = summary_line(plan)
    assert "1 backend(s) could not be read (iot-sandbox)" in line and "match" not in line
    out = every_format(plan)
    assert "could not be read" in out["markdown"] and "iot-sandbox" in out["markdown"]
    assert "unreadable: backend iot-sandbox" in out["text"]
    assert json.loads(out["json"])["summary"]["unreadable"] == 1


def test_warnings_reach_the_markdown_view() -> None:
    plan = Plan(noops=(WAVE,), diagnostics=(Diagnostic("3 gateway(s) stranded", "s.yaml", 4, 3,
                                                       Severity.WARNING),))
    assert "s.yaml:4:3: warning: 3 gateway(s) stranded" in render_markdown(plan)


def test_text_from_outside_cannot_forge_a_diagnostic_line_in_any_format() -> None:
    action = Action("b/campaign/x/start", Verb.START_CAMPAIGN, ResourceKey(Kind.CAMPAIGN, "x"), "b", {},
                    reason=FORGED)
    plan = Plan(actions=(action,), noops=(Noop(NOTICE, FORGED),), notes=(FORGED,),
                diagnostics=(Diagnostic(FORGED, "evil\nname.yaml", 1, 1),))
    out = every_format(plan)
    for name, text in out.items():
        assert "\x1b" not in text, name
        assert not any(line.startswith("file.yaml:1:1") for line in text.splitlines()), name
    assert "boom\\nfile.yaml:1:1: error: forged\\x1b[2J" in out["text"]
    assert "evil\\nname.yaml:1:1: error:" in out["text"]
    assert json.loads(out["json"])["notes"] == [FORGED]  # JSON keeps the value, escaped by JSON itself


def test_markdown_code_cannot_be_closed_by_a_value() -> None:
    plan = Plan(noops=(Noop(NOTICE, "a ``` fence and a `tick`"),))
    body = render_markdown(plan)
    assert body.count("```") % 2 == 0


def test_exit_codes_of_a_dry_run_with_detailed_exitcode(tmp_path: Path) -> None:
    """0 converged, 2 pending (a new SMS campaign held by quiet hours sends by itself later), 1 unreadable."""
    options = SandboxOptions(port_base=0, gateway_count=10, seed=3, sms_gateway={"send_rate_per_port": 1000.0})
    with running_sandbox(options) as sandbox:
        repo = crash.sms_repo(tmp_path / "ops", sandbox, backend="gw", recipients=20)
        now = datetime.now(UTC)
        quiet = (f'{(now - timedelta(hours=1)):%H:%M}', f'{(now + timedelta(hours=1)):%H:%M}')
        (repo / "quiet.yaml").write_text(f"""\
apiVersion: reconciler/v1
kind: Schedule
metadata: {{name: notice-nights}}
spec:
  campaign: notice
  quietHours: {{from: "{quiet[0]}", to: "{quiet[1]}", timezone: UTC}}
""", encoding="utf-8")
        state = f"sqlite:///{tmp_path / 'state.db'}"

        def dry() -> subprocess.CompletedProcess[str]:
            return subprocess.run([*crash.reconcile_command(repo, state)[:-1], "--dry-run", "--detailed-exitcode",
                                   "--output", "markdown"], cwd=repo, env=crash.environment(), capture_output=True,
                                  text=True, timeout=120)

        held = dry()
        assert held.returncode == 2, held.stdout + held.stderr
        assert "held: quiet hours" in held.stdout and "Pending" in held.stdout
        (repo / "quiet.yaml").unlink()
        assert subprocess.run(crash.reconcile_command(repo, state), cwd=repo, env=crash.environment(),
                              capture_output=True, timeout=120).returncode == 0
        converged = dry()
        assert converged.returncode == 0, converged.stdout + converged.stderr
    unreadable = dry()
    assert unreadable.returncode == 1, unreadable.stdout + unreadable.stderr
    assert "could not be read" in unreadable.stdout and "No changes. The backends match" not in unreadable.stdout


@pytest.mark.parametrize("content", ["{not json", "[]", '{"actions": 5}', '{"actions": [1, 2]}', '{"other": 1}'])
def test_a_malformed_saved_plan_is_a_one_line_error(tmp_path: Path, content: str) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(content, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "reconciler", "--plan", str(plan), str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "cannot read saved plan" in done.stderr, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr


def test_output_into_a_closed_pipe_is_not_an_internal_error(tmp_path: Path) -> None:
    """``reconcile ... | head``: the reader is gone before the output is written."""
    for i in range(50):
        (tmp_path / f"c{i}.yaml").write_text(f"apiVersion: reconciler/v1\nkind: Campaign\nmetadata: {{name: c{i}}}\n"
                                             "spec: {backend: missing}\n", encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "reconciler", "validate", "--output", "json", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # nobody reads: the first write fails with EPIPE
    err = process.stderr.read().decode()
    process.wait(timeout=60)
    assert "internal error" not in err and "Traceback" not in err and "BrokenPipe" not in err, err


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:99999", "127.0.0.1:http", "no-such-host.invalid:8790"])
def test_a_bad_listen_address_is_a_one_line_error(tmp_path: Path, listen: str) -> None:
    done = subprocess.run([sys.executable, "-m", "reconciler", "watch", str(tmp_path), "--listen", listen,
                           "--state", f"sqlite:///{tmp_path / 's.db'}"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "--listen" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_listen_port_in_use_exits_within_seconds_and_leaves_the_store_alone(tmp_path: Path) -> None:
    import socket
    import time

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "reconciler", "watch", str(tmp_path), "--listen",
                               f"127.0.0.1:{port}", "--state", f"sqlite:///{tmp_path / 's.db'}"],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "daemon.cannot_listen" in done.stderr, done.stderr
    assert time.monotonic() - started < 15
    assert not (tmp_path / "s.db").exists()  # no store opened, no lease held
