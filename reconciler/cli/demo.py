"""``reconcile demo``: the whole loop on the embedded sandbox, for the README's first command.

Starts the four simulators on their default ports, shows the plan for ``examples/quickstart``, applies
it, shows that a second plan has nothing to do, moves the sandbox clock past the declared windows and
shows ``reconcile status``, then shows the callbacks the campaign manager delivered, and stops the
simulators. The state store is a temporary file, so the demo can run again and again.

Callbacks: the quickstart's campaign registers callbacks by notification destination id (``ops-webhook``),
as the IoT campaign manager requires. The demo serves the daemon's webhook receiver (the app
``reconcile watch`` serves, ``POST /webhooks/iot/<token>``) on a free loopback port and starts the sandbox
with every declared destination id pointing at it, so the gateways' state changes reach it as they
would reach a running daemon (where each one triggers a pass).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from reconciler.backends import registry
from reconciler.backends.descriptor import BackendDescriptor, CampaignFamily
from reconciler.load import load_desired_state
from reconciler.model import IotCampaignSpec
from reconciler.planner.windows import concrete
from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox

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
    """Simulated seconds needed to get past every declared window (at least two hours); a recurring window
    counts with its occurrence that is current or next at ``now``."""
    loaded = load_desired_state([path], now=now)
    ends = [concrete(w, now).end for s in (loaded.desired.schedules.values() if loaded.desired else ())
            for w in (s.download, s.activation, s.execution) if w is not None]
    latest = max(ends, default=now)
    return max((latest - now).total_seconds() + 3600, 7200.0)


def destination_ids(path: Path) -> list[str]:
    """The notification destination ids the declared IoT campaigns' callbacks name."""
    loaded = load_desired_state([path])
    campaigns = loaded.desired.campaigns.values() if loaded.desired else ()
    return sorted({callback.destination for spec in campaigns if isinstance(spec, IotCampaignSpec)
                   for callback in spec.callbacks.values()})


def callback_sender() -> BackendDescriptor:
    """The backend type whose callbacks the demo shows: the first registered one whose campaigns this tool
    creates on a gateway fleet and that pushes to the daemon (the IoT campaign manager)."""
    for descriptor in registry.descriptors():
        if descriptor.family is CampaignFamily.CREATED and descriptor.push is not None:
            return descriptor
    raise RuntimeError("no registered backend type sends callbacks")


def receiver_path(descriptor: BackendDescriptor) -> str:
    """``/webhooks/<segment>`` of a type: the first of its ``push_paths`` (the URL documented longest)."""
    return f"/webhooks/{(descriptor.push_paths or (descriptor.type,))[0]}"


@dataclass
class WebhookReceiver:
    """The daemon's webhook receivers, served on loopback: ``url`` is its ``/webhooks/<sender>/<token>`` for
    the callbacks of ``source`` (a backend type)."""

    url: str
    metrics: Any  # reconciler.daemon.metrics.DaemonMetrics
    source: str
    events: list[str] = field(default_factory=list)

    def counted(self, result: str = "accepted") -> int:
        value = self.metrics.registry.get_sample_value(
            "reconcile_webhooks_total", {"source": self.source, "result": result})
        return int(value or 0)


@contextmanager
def daemon_receiver(host: str = "127.0.0.1") -> Iterator[WebhookReceiver]:
    """The app ``reconcile watch`` serves (its webhook receivers, with a fresh token and no ledger) on a free
    port of ``host``, in a thread, until the block ends."""
    from reconciler.daemon.http_api import ServerOptions, build_app, http_server
    from reconciler.daemon.metrics import DaemonMetrics
    from reconciler.daemon.webhooks import WebhookReceivers

    token = secrets.token_urlsafe(18)
    metrics = DaemonMetrics()
    events: list[str] = []
    receivers = WebhookReceivers(token=token, metrics=metrics, ledger=lambda: None, on_event=events.append)
    app = build_app(metrics=metrics, ready=lambda: (True, ""), status=lambda: {}, webhooks=receivers)
    server = http_server(app, f"{host}:0", ServerOptions())
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), name="demo-receiver", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the webhook receiver did not start")
        time.sleep(0.01)
    try:
        port = server.servers[0].sockets[0].getsockname()[1]
        sender = callback_sender()
        yield WebhookReceiver(f"http://{host}:{port}{receiver_path(sender)}/{token}", metrics, sender.type, events)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def delivered_callbacks(sandbox: RunningSandbox, receiver: WebhookReceiver, *, timeout: float = 10.0
                        ) -> list[dict[str, Any]]:
    """The campaign manager's deliveries to ``receiver`` once none is pending (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        deliveries = httpx.get(f"{sandbox.url(receiver.source)}/_sandbox/state", timeout=10).json()["callbackDeliveries"]
        mine = [d for d in deliveries["log"] if d["url"] == receiver.url]
        if (deliveries["pending"] == 0 and receiver.counted() >= sum(d.get("status") == 200 for d in mine)) \
                or time.monotonic() > deadline:
            return mine
        time.sleep(0.1)


def show_callbacks(deliveries: list[dict[str, Any]], receiver: WebhookReceiver) -> None:
    for delivery in deliveries:
        payload = delivery["payload"]
        outcome = delivery.get("status", delivery.get("error", "?"))
        print(f"  {payload.get('event', '?'):<18} {payload.get('gatewayId', '?'):<10} {payload.get('state', '?'):<24} "
              f"-> {outcome}")
    print(f"{len(deliveries)} callback(s) delivered; the receiver accepted {receiver.counted()} "
          f"(reconcile_webhooks_total{{source=\"{receiver.source}\",result=\"accepted\"}}); "
          "`reconcile watch` runs a pass for each")


def only_pending(main: Callable[[list[str]], int], arguments: list[str]) -> bool:
    """Whether a re-plan that exited 2 has no action to take now, only pending work (a send held by quiet
    hours or before its active period): ``--detailed-exitcode`` counts both, the demo's "converged" only
    the first, or it would fail whenever it runs at night in Berlin or Caracas. Read from the JSON plan."""
    captured = io.StringIO()
    with redirect_stdout(captured):
        code = main(["--dry-run", "--output", "json", *arguments])
    try:
        plan = json.loads(captured.getvalue())
    except ValueError:
        return False
    return code == 0 and isinstance(plan, dict) and plan.get("actions") == [] and bool(plan.get("pending"))


def run(args: argparse.Namespace) -> int:
    from reconciler.cli.main import main  # the demo drives the real commands

    path = str(args.path)
    with tempfile.TemporaryDirectory(prefix="reconciler-demo-") as tmp:
        state = ["--state", f"sqlite:///{tmp}/state.db"]
        try:
            with daemon_receiver() as receiver, running_sandbox(SandboxOptions(
                    gateway_count=args.gateways, seed=1,
                    destinations={name: receiver.url for name in destination_ids(args.path)})) as sandbox:
                print(STEP.format("1/6 plan: reconcile --dry-run " + path))
                if main(["--dry-run", path, *state]) != 0:
                    return 1
                print(STEP.format("2/6 apply: reconcile " + path))
                # a sandbox started here has sent nothing before: no store elsewhere can have a record
                applied = main([path, *state, "--risk-duplicate-sms"])
                print(STEP.format("3/6 plan again: nothing should be left to do"))
                again = main(["--dry-run", "--detailed-exitcode", path, *state])
                if again == 2 and only_pending(main, [path, *state]):
                    print("Nothing to do now: what is pending happens without another commit once its hold "
                          "ends (the quickstart's quiet hours depend on the time of day).")
                    again = 0
                advance = seconds_to_pass_windows(args.path, datetime.fromtimestamp(sandbox.clock.now(), UTC))
                print(STEP.format(f"4/6 advance the sandbox clock by {advance / 3600:.1f} hours"))
                sandbox.clock.advance(advance)
                print(STEP.format("5/6 status: reconcile status " + path))
                main(["status", path, *state])
                print(STEP.format("6/6 callbacks the campaign manager posted to the daemon's receiver "
                                  f"(POST {receiver_path(callback_sender())}/<token>)"))
                show_callbacks(delivered_callbacks(sandbox, receiver), receiver)
        except (RuntimeError, TimeoutError, OSError) as exc:
            print(f"reconcile demo: cannot start the sandbox: {exc} "
                  "(is `reconcile sandbox` already running on 8701-8704? stop it first)")
            return 1
    print("\nDemo finished: the sandbox is stopped." if applied == 0 and again == 0 else
          f"\nDemo finished with problems (apply exit {applied}, re-plan exit {again}).")
    return 0 if applied == 0 and again == 0 else 1
