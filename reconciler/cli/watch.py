"""``reconcile watch [PATH...]``: the daemon (see ``reconciler.daemon.service``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from reconciler.cli.apply import add_common_arguments, add_prune_argument, prune_mode
from reconciler.errors import ReconcilerError
from reconciler.logs import configure_logging
from reconciler.planner import PlanOptions
from reconciler.engine.reconcile import PassRequest
from reconciler.secrets import Redactor, SecretRef, resolve_secret


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "watch", help="run as a daemon: re-apply on file changes and correct drift on an interval",
        description="Reconcile continuously: on file changes (or new commits with --git), every --resync "
                    "seconds to correct drift, and when a failed action is due for a retry. Serves /healthz, "
                    "/readyz, /metrics, /status and webhook receivers on --listen.")
    add_common_arguments(parser)
    parser.add_argument("--listen", default="127.0.0.1:8790", metavar="HOST:PORT",
                        help="address of the HTTP endpoints (default %(default)s)")
    parser.add_argument("--resync", type=float, default=60.0, metavar="SECONDS",
                        help="re-read the backends this often to correct drift (default %(default)s)")
    parser.add_argument("--debounce-ms", type=int, default=200, help="group file events this close together")
    parser.add_argument("--git", metavar="URL", help="take declarations from this git repository (any URL git "
                                                      "understands, local paths included); PATHs are inside it")
    parser.add_argument("--branch", default="main", help="branch to follow with --git (default %(default)s)")
    parser.add_argument("--interval", type=float, default=30.0, metavar="SECONDS",
                        help="how often to fetch with --git (default %(default)s)")
    parser.add_argument("--webhook-token-env", metavar="NAME",
                        help="environment variable holding the token that webhook URLs must carry")
    parser.add_argument("--webhook-token-file", type=Path, metavar="PATH", help="file holding that token")
    parser.add_argument("--standby", action="store_true",
                        help="if another daemon writes to the state store, wait for it instead of exiting")
    parser.add_argument("--shutdown-grace", type=float, default=20.0, metavar="SECONDS",
                        help="on SIGTERM, how long the pass in flight may take to finish (default %(default)s)")
    add_prune_argument(parser)
    parser.add_argument("--allow-replace", action="store_true", help="as for apply")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--log-format", choices=("json", "console"), default=None,
                        help="default: json when stderr is not a terminal")
    parser.set_defaults(func=run)


def webhook_token(args: argparse.Namespace, redactor: Redactor) -> str | None:
    if args.webhook_token_env:
        ref = SecretRef(env=args.webhook_token_env)
    elif args.webhook_token_file:
        ref = SecretRef(file=str(args.webhook_token_file))
    else:
        return None
    return resolve_secret(ref, base_dir=Path("."), redactor=redactor).reveal()


def run(args: argparse.Namespace) -> int:
    redactor = Redactor()
    configure_logging(redactor=redactor, level=args.log_level,
                      json=None if args.log_format is None else args.log_format == "json")
    if args.no_state:
        print("reconcile watch: the daemon needs a state store (it records what it sends); drop --no-state",
              file=sys.stderr)
        return 1
    try:
        token = webhook_token(args, redactor)
    except ReconcilerError as exc:
        print(f"reconcile watch: {exc}", file=sys.stderr)
        return 1
    from reconciler.daemon.service import WatchService, WatchSettings  # the daemon's web stack: only when it runs

    prune = prune_mode(args)
    settings = WatchSettings(
        paths=tuple(args.paths) or (Path("campaigns.d"),), root=args.root, state_url=args.state,
        listen=args.listen, resync_seconds=args.resync, debounce_ms=args.debounce_ms,
        shutdown_grace=args.shutdown_grace, webhook_token=token, git_url=args.git, git_branch=args.branch,
        git_interval=args.interval, standby=args.standby,
        request=PassRequest(paths=(), options=PlanOptions(prune=prune, allow_replace=args.allow_replace)))
    return asyncio.run(WatchService(settings, environ=dict(os.environ), redactor=redactor).run())
