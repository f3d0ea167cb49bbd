"""``reconcile watch [PATH...]``: the daemon (see ``reconciler.daemon.service``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Any

import structlog

from reconciler.cli.apply import add_common_arguments, add_prune_argument, add_writer_arguments, prune_mode
from reconciler.errors import ReconcilerError
from reconciler.logs import configure_logging
from reconciler.planner import PlanOptions
from reconciler.engine.reconcile import PassRequest
from reconciler.secrets import Redactor, SecretRef, resolve_secret


log = structlog.get_logger("reconciler.daemon")
DEFAULT_MAX_CONNECTIONS = 4096  # = ServerOptions.max_connections (the web stack is imported only to run)
DEFAULT_HEADER_TIMEOUT_S = 5.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "watch", help="run as a daemon: re-apply on file changes and correct drift on an interval",
        description="Reconcile continuously: on file changes (or new commits with --git), every --resync "
                    "seconds to correct drift, and when a failed action is due for a retry. Serves a read-only "
                    "dashboard at /, /healthz, /readyz, /metrics, /status and webhook receivers on --listen.")
    add_common_arguments(parser)
    parser.add_argument("--listen", default="127.0.0.1:8790", metavar="HOST:PORT",
                        help="address of the HTTP endpoints (default %(default)s)")
    parser.add_argument("--resync", type=float, default=60.0, metavar="SECONDS",
                        help="re-read the backends this often to correct drift (default %(default)s)")
    parser.add_argument("--debounce-ms", type=int, default=200, help="group file events this close together")
    parser.add_argument("--fates-every", type=_non_negative_float, default=0.0, metavar="SECONDS",
                        help="ask the SMS backends what became of messages still queued at most this often, "
                             "not in every pass (default 0: every pass). For campaigns so large that the "
                             "question costs more than the rest of a pass (1,000,000 queued messages: 31,250 "
                             "requests); pushed results (the gateway's webhook) settle them in between")
    parser.add_argument("--git", metavar="URL", help="take declarations from this git repository (any URL git "
                                                      "understands, local paths included); PATHs are inside it")
    parser.add_argument("--branch", default="main", help="branch to follow with --git (default %(default)s)")
    parser.add_argument("--interval", type=float, default=30.0, metavar="SECONDS",
                        help="how often to fetch with --git (default %(default)s)")
    parser.add_argument("--webhook-token-env", metavar="NAME",
                        help="environment variable holding the token that webhook URLs must carry")
    parser.add_argument("--webhook-token-file", type=Path, metavar="PATH", help="file holding that token")
    parser.add_argument("--ui-token-env", metavar="NAME",
                        help="environment variable holding the token the dashboard (/), its event stream and "
                             "/status require (Authorization: Bearer TOKEN, or the dashboard's sign-in form); "
                             "without a token they are served on a loopback --listen address only")
    parser.add_argument("--ui-token-file", type=Path, metavar="PATH", help="file holding that token")
    parser.add_argument("--status-token-env", metavar="NAME", help="the older name of --ui-token-env")
    parser.add_argument("--status-token-file", type=Path, metavar="PATH", help="the older name of --ui-token-file")
    parser.add_argument("--max-connections", type=_positive_int, default=DEFAULT_MAX_CONNECTIONS, metavar="N",
                        help="most HTTP connections open at once (default %(default)s; never more than the "
                             "descriptor limit less a reserve for the state store)")
    parser.add_argument("--header-timeout", type=_positive_float, default=DEFAULT_HEADER_TIMEOUT_S,
                        metavar="SECONDS", help="close a connection that has not sent a complete request head "
                                                "this long after connecting or after its last reply "
                                                "(default %(default)s)")
    parser.add_argument("--standby", action="store_true",
                        help="if another writer holds the state store's lease, wait and take over when it "
                             "releases it, dies or stops renewing it (several daemons on one PostgreSQL store: "
                             "one active, the others standing by)")
    add_writer_arguments(parser, lock_timeout=False)
    parser.add_argument("--shutdown-grace", type=float, default=20.0, metavar="SECONDS",
                        help="on SIGTERM, how long the pass in flight may take to finish (default %(default)s)")
    add_prune_argument(parser)
    parser.add_argument("--allow-replace", action="store_true", help="as for apply")
    parser.add_argument("--adopt", action="store_true", help="as for apply")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--log-format", choices=("json", "console"), default=None,
                        help="default: json when stderr is not a terminal")
    parser.set_defaults(func=run)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, 0 or more, found {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, found {text}")
    return value


def _token(env: str | None, file: Path | None, redactor: Redactor) -> str | None:
    if env:
        ref = SecretRef(env=env)
    elif file:
        ref = SecretRef(file=str(file))
    else:
        return None
    return resolve_secret(ref, base_dir=Path("."), redactor=redactor).reveal()


def webhook_token(args: argparse.Namespace, redactor: Redactor) -> str | None:
    return _token(args.webhook_token_env, args.webhook_token_file, redactor)


def ui_token(args: argparse.Namespace, redactor: Redactor) -> str | None:
    """The one token of the dashboard and /status; ``--status-token-*`` (its older name) still work, and
    naming two different tokens is an error rather than a guess."""
    token = _token(args.ui_token_env, args.ui_token_file, redactor)
    older = _token(args.status_token_env, args.status_token_file, redactor)
    if token is not None and older is not None and token != older:
        raise ReconcilerError("--ui-token-* and --status-token-* name different tokens; they are one token "
                              "(--status-token-* is the older name): give one")
    return token if token is not None else older


def listen_problem(listen: str) -> str:
    """Why ``HOST:PORT`` cannot be listened on ('' when it looks right; a port in use shows at start)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        return "expected HOST:PORT with a port from 1 to 65535, e.g. 127.0.0.1:8790"
    host = host.strip("[]") or "127.0.0.1"
    try:
        socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        return f"host {host!r} cannot be resolved ({exc})"
    return ""


def run(args: argparse.Namespace) -> int:
    redactor = Redactor()
    configure_logging(redactor=redactor, level=args.log_level, capture_stdlib=True,
                      json=None if args.log_format is None else args.log_format == "json")
    problem = listen_problem(args.listen)
    if problem:
        print(f"reconcile watch: --listen {args.listen!r}: {problem}", file=sys.stderr)
        return 1
    if args.no_state:
        print("reconcile watch: the daemon needs a state store (it records what it sends); drop --no-state",
              file=sys.stderr)
        return 1
    try:
        token = webhook_token(args, redactor)
        shown_to = ui_token(args, redactor)
    except ReconcilerError as exc:
        print(f"reconcile watch: {exc}", file=sys.stderr)
        return 1
    from reconciler.daemon.http_api import (ServerOptions, configure_server, connection_budget,
                                            raise_open_files_limit, server_options)
    from reconciler.daemon.triggers import ignore_files, store_files

    # Descriptors: as many as the hard limit allows, and the HTTP server keeps a reserve of them for the
    # state store (thousands of idle connections once left it none: "cannot open state store").
    soft, hard = raise_open_files_limit()
    configure_server(ServerOptions(ui_token=shown_to, max_connections=args.max_connections,
                                   header_timeout_s=args.header_timeout))
    ignore_files(store_files(args.state))  # a store inside the watched tree must not trigger passes
    log.info("daemon.limits", open_files=soft, open_files_hard=hard,
             max_connections=connection_budget(server_options()).max_connections,
             header_timeout_s=args.header_timeout)
    from reconciler.daemon.service import WatchService, WatchSettings  # the daemon's web stack: only when it runs

    prune = prune_mode(args)
    settings = WatchSettings(
        paths=tuple(args.paths) or (Path("campaigns.d"),), root=args.root, state_url=args.state,
        listen=args.listen, resync_seconds=args.resync, debounce_ms=args.debounce_ms, fates_every=args.fates_every,
        shutdown_grace=args.shutdown_grace, webhook_token=token, git_url=args.git, git_branch=args.branch,
        git_interval=args.interval, standby=args.standby, lease_ttl=args.lease_ttl,
        request=PassRequest(paths=(), options=PlanOptions(prune=prune, allow_replace=args.allow_replace,
                                                          adopt=args.adopt,
                                                          risk_duplicate_sms=args.risk_duplicate_sms)))
    return asyncio.run(WatchService(settings, environ=dict(os.environ), redactor=redactor).run())
