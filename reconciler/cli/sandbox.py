"""``reconcile sandbox``: the simulators (the four built-in ones and any registered plug-in) on loopback
until Ctrl-C or SIGTERM. Each simulator's banner line comes from its descriptor (``reconciler.sandbox.registry``)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reconciler.sandbox.faults import FaultSettings
from reconciler.sandbox.registry import simulators
from reconciler.sandbox.run import DEFAULT_PORT_BASE, RunningSandbox, SandboxOptions, running_sandbox

BANNER = """\
campaign-reconciler sandbox (simulated backends; nothing leaves this machine)
{simulators}Control: GET /_sandbox/stats, /_sandbox/state; POST /_sandbox/faults, /_sandbox/clock, /_sandbox/reset
{destinations}Press Ctrl-C to stop."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sandbox", help="run the four backend simulators on loopback",
        description="Run simulators of YateOTA, the IoT campaign manager, Ogangi and the SMS gateway on "
                    "ports BASE+1..BASE+4 (default 8701-8704) until stopped.")
    parser.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE, metavar="N",
                        help="listen on N+1..N+4 (default %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every request")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered with an error")
    parser.add_argument("--error-status", type=int, default=503, help="status of injected errors (429, 503, ...)")
    parser.add_argument("--timeout-rate", type=float, default=0.0, help="share of replies held back (timeouts)")
    parser.add_argument("--drop-rate", type=float, default=0.0, help="share of connections dropped mid-reply")
    parser.add_argument("--malformed-rate", type=float, default=0.0, help="share of replies with a broken body")
    parser.add_argument("--seed", type=int, default=None, help="seed for faults and lifecycles (repeatable runs)")
    parser.add_argument("--gateways", type=int, default=10_000, help="enrolled IoT gateways (default %(default)s)")
    parser.add_argument("--approval-required", action="store_true",
                        help="IoT organisation setting: new campaigns need approval before start")
    parser.add_argument("--state", type=Path, metavar="FILE",
                        help="persist simulator state to FILE.<backend>.json and load it at start")
    parser.add_argument("--tls-dir", type=Path, help="write the SMS gateway's CA and certificate here")
    parser.add_argument("--destination", action="append", default=[], type=destination, metavar="NAME=URL",
                        help="an IoT notification destination: callbacks registered with NAME as "
                             "notificationDestinationId (a campaign's `callbacks`) are POSTed to URL, e.g. "
                             "ops-webhook=http://127.0.0.1:8790/webhooks/iot/TOKEN for the daemon; repeatable")
    parser.set_defaults(func=run)


def destination(text: str) -> tuple[str, str]:
    """``NAME=URL``: a destination id and the absolute http(s) URL callbacks to it are POSTed to."""
    name, sep, url = text.partition("=")
    parts = urlsplit(url.strip())
    if not sep or not name.strip() or "://" in name or parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected NAME=URL with an http(s) URL, e.g. "
                                         f"ops-webhook=http://127.0.0.1:8790/webhooks/iot/TOKEN; found {text!r}")
    return name.strip(), url.strip()


def options_from(args: argparse.Namespace) -> SandboxOptions:
    faults = FaultSettings(latency_ms=args.latency_ms, error_rate=args.error_rate, error_status=args.error_status,
                           timeout_rate=args.timeout_rate, drop_rate=args.drop_rate,
                           malformed_rate=args.malformed_rate, seed=args.seed)
    return SandboxOptions(host=args.host, port_base=args.port_base, faults=faults, state_file=args.state,
                          seed=args.seed, gateway_count=args.gateways, approval_required=args.approval_required,
                          destinations=dict(args.destination))


def banner(sandbox: RunningSandbox, destinations: dict[str, str] | None = None) -> str:
    running = "".join(d.banner_line(sandbox.url(d.type), str(sandbox.tls.ca_file)) + "\n"
                      for d in simulators() if d.type in sandbox.servers)
    lines = "".join(f"IoT callbacks to destination {name!r} go to {redact_token(url)}\n"
                    for name, url in sorted((destinations or {}).items()))
    return BANNER.format(simulators=running, destinations=lines)


def redact_token(url: str) -> str:
    """A webhook URL as printed: the token (the last path segment of a ``/webhooks/`` URL) hidden."""
    head, sep, _ = url.rpartition("/")
    return f"{head}/<token>" if sep and "/webhooks/" in url else url


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        with running_sandbox(options_from(args), tls_dir=args.tls_dir) as sandbox:
            print(banner(sandbox, dict(args.destination)), flush=True)
            stop.wait()
            print("stopping the sandbox", file=sys.stderr)
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"reconcile sandbox: {exc} (is another sandbox running? try --port-base)", file=sys.stderr)
        return 1
    return 0
