"""``reconcile demo``: the whole loop on the embedded sandbox, for the README's first command.

Starts the four simulators on their default ports, shows the plan for ``examples/quickstart``, applies
it, shows that a second plan has nothing to do, moves the sandbox clock past the declared windows and
shows ``reconcile status``, then stops the simulators. The state store is a temporary file, so the demo
can run again and again.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.load import load_desired_state
from reconciler.sandbox.run import SandboxOptions, running_sandbox

STEP = "\n\033[1m==> {}\033[0m"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="run plan, apply, re-plan and status against the embedded sandbox",
        description="Start the sandbox on ports 8701-8704, reconcile examples/quickstart against it, "
                    "show that a second run has nothing to do, advance simulated time, show status, stop.")
    parser.add_argument("path", nargs="?", type=Path, default=Path("examples/quickstart"),
                        help="the example repository (default: %(default)s)")
    parser.add_argument("--gateways", type=int, default=10_000, help="enrolled IoT gateways in the sandbox")
    parser.set_defaults(func=run)


def seconds_to_pass_windows(path: Path, now: datetime) -> float:
    """Simulated seconds needed to get past every declared window (at least two hours)."""
    loaded = load_desired_state([path])
    ends = [w.end for s in (loaded.desired.schedules.values() if loaded.desired else ())
            for w in (s.download, s.activation, s.execution) if w is not None]
    latest = max(ends, default=now)
    return max((latest - now).total_seconds() + 3600, 7200.0)


def run(args: argparse.Namespace) -> int:
    from reconciler.cli.main import main  # the demo drives the real commands

    path = str(args.path)
    with tempfile.TemporaryDirectory(prefix="reconciler-demo-") as tmp:
        state = ["--state", f"sqlite:///{tmp}/state.db"]
        try:
            with running_sandbox(SandboxOptions(gateway_count=args.gateways, seed=1)) as sandbox:
                print(STEP.format("1/5 plan: reconcile --dry-run " + path))
                if main(["--dry-run", path, *state]) != 0:
                    return 1
                print(STEP.format("2/5 apply: reconcile " + path))
                # a sandbox started here has sent nothing before: no store elsewhere can have a record
                applied = main([path, *state, "--risk-duplicate-sms"])
                print(STEP.format("3/5 plan again: nothing should be left to do"))
                again = main(["--dry-run", "--detailed-exitcode", path, *state])
                advance = seconds_to_pass_windows(args.path, datetime.fromtimestamp(sandbox.clock.now(), UTC))
                print(STEP.format(f"4/5 advance the sandbox clock by {advance / 3600:.1f} hours"))
                sandbox.clock.advance(advance)
                print(STEP.format("5/5 status: reconcile status " + path))
                main(["status", path, *state])
        except (RuntimeError, TimeoutError, OSError) as exc:
            print(f"reconcile demo: cannot start the sandbox: {exc} "
                  "(is `reconcile sandbox` already running on 8701-8704? stop it first)")
            return 1
    print("\nDemo finished: the sandbox is stopped." if applied == 0 and again == 0 else
          f"\nDemo finished with problems (apply exit {applied}, re-plan exit {again}).")
    return 0 if applied == 0 and again == 0 else 1
