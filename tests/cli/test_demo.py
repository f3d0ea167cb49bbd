"""``reconcile demo`` (the README's first command) passes at any time of day: a re-plan whose only changes
are pending work (a send held by quiet hours, which the quickstart declares) is "nothing to do now", while a
re-plan with an action left still fails the demo."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from reconciler.cli.demo import only_pending

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples" / "quickstart"


def printing(code: int, output: str):  # type: ignore[no-untyped-def]
    def main(arguments: list[str]) -> int:
        assert arguments[:3] == ["--dry-run", "--output", "json"]
        print(output)
        return code
    return main


def test_only_pending_work_left_is_nothing_to_do_now_and_an_action_left_is_not() -> None:
    pending = json.dumps({"actions": [], "pending": ["Campaign/outage: 20 SMS to send once held no longer"]})
    assert only_pending(printing(0, pending), ["examples/quickstart"])
    assert not only_pending(printing(0, json.dumps({"actions": [{"verb": "send-sms"}], "pending": ["x"]})), [])
    assert not only_pending(printing(0, json.dumps({"actions": [], "pending": []})), [])
    assert not only_pending(printing(1, pending), [])  # a backend that could not be read
    assert not only_pending(printing(0, "not json"), [])


def test_the_demo_passes_while_the_quickstart_is_in_quiet_hours(tmp_path: Path) -> None:
    """Quiet hours made all day (UTC): the outage campaign is held whenever this runs, as it is every night in
    Berlin with the quickstart as shipped."""
    example = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, example)
    schedules = example / "schedules.yaml"
    text = schedules.read_text(encoding="utf-8")
    night = 'quietHours: {from: "21:00", to: "08:00", timezone: Europe/Berlin}'
    assert night in text
    schedules.write_text(text.replace(night, 'quietHours: {from: "00:00", to: "23:59", timezone: UTC}'),
                         encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "reconciler", "demo", str(example), "--gateways", "200"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "pending: Campaign/outage-notice-dec" in done.stdout
    assert "Nothing to do now" in done.stdout and "Demo finished: the sandbox is stopped." in done.stdout
