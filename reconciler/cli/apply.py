"""``reconcile [PATH...]`` (apply) and ``reconcile --dry-run [PATH...]`` (plan only).

Exit codes (a contract): apply 0 converged, 1 error or any failed action; dry run 0 (no changes, or
changes without ``--detailed-exitcode``), 2 changes pending with ``--detailed-exitcode``, 1 error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.cli.event_loop import run_to_completion
from reconciler.cli.progress import progress_for
from reconciler.cli.render import render_diagnostics, render_json, render_markdown, render_report, render_text
from reconciler.engine.reconcile import PassRequest, PassResult, run_pass
from reconciler.engine.store_access import open_writer
from reconciler.errors import StateStoreError
from reconciler.state.lease import DEFAULT_TTL_SECONDS, LeaseHolder
from reconciler.planner import PlanOptions, PruneMode
from reconciler.planner.target import parse_targets
from reconciler.logs import configure_logging
from reconciler.notify.deliver import deliver_after_apply
from reconciler.secrets import Redactor
from reconciler.state.store import DEFAULT_STATE_URL, STATE_ENV

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """PATH, --root and --state, shared by apply, status and watch."""
    parser.add_argument("paths", nargs="*", metavar="PATH", type=Path,
                        help="YAML files or folders (default: campaigns.d/)")
    parser.add_argument("--root", type=Path, help="repository root that file paths must stay inside "
                                                  "(default: the git work tree of the first PATH)")
    parser.add_argument("--state", default=os.environ.get(STATE_ENV) or DEFAULT_STATE_URL, metavar="URL",
                        help=f"state store: sqlite:///PATH (one machine) or postgresql://... (shared; libpq's "
                             f"PGHOST, PGUSER, PGPASSWORD... fill in what the URL leaves out). Default: "
                             f"${STATE_ENV}, else {DEFAULT_STATE_URL}")
    parser.add_argument("--no-state", action="store_true",
                        help="use no state store (write-only values are then unknown and re-applied)")


def add_writer_arguments(parser: argparse.ArgumentParser, *, lock_timeout: bool = True) -> None:
    """The writer lease's options and the duplicate-risk confirmation, shared by apply and watch (whose
    ``--standby`` is its way of waiting)."""
    if lock_timeout:
        parser.add_argument("--lock-timeout", type=float, default=0.0, metavar="SECONDS",
                            help="if another writer holds the state store's lease, wait this long for it "
                                 "(default 0: refuse at once, naming the holder)")
    parser.add_argument("--lease-ttl", type=float, default=DEFAULT_TTL_SECONDS, metavar="SECONDS",
                        help="how long the writer lease lasts unless renewed (renewed every third of it; "
                             "default %(default)s): a crashed writer on another machine is taken over after it")
    parser.add_argument("--risk-duplicate-sms", action="store_true",
                        help="send SMS campaigns that this state store has no record of through backends "
                             "that cannot be asked what they already sent (Ogangi): if another store sent "
                             "them, recipients get them twice")


def add_prune_argument(parser: argparse.ArgumentParser) -> None:
    """``--prune`` (stop what was removed from git) or ``--prune=delete`` (also delete it). A flag with an
    explicit value (``split_prune_value`` turns it into the hidden ``--prune-mode``), so ``reconcile
    --prune PATH`` never takes PATH for the mode."""
    parser.add_argument("--prune", action="store_true",
                        help="act on what was removed from git: `--prune` stops it, `--prune=delete` deletes it")
    parser.add_argument("--prune-mode", choices=("stop", "delete"), default=None, help=argparse.SUPPRESS)


def split_prune_value(argv: list[str]) -> list[str]:
    """``--prune=delete`` becomes ``--prune`` plus the hidden ``--prune-mode delete``."""
    out: list[str] = []
    for token in argv:
        if token.startswith("--prune="):
            out += ["--prune", f"--prune-mode={token.split('=', 1)[1]}"]
        else:
            out.append(token)
    return out


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "apply", help="apply the declared state (the default command: `reconcile [PATH...]`)",
        description="Plan, then issue the calls that converge the backends on the declared state. "
                    "`reconcile [PATH...]` is the same as `reconcile apply [PATH...]`.")
    add_common_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="show the plan and change nothing")
    parser.add_argument("--output", choices=("text", "json", "markdown"), default="text",
                        help="plan format (markdown is for pull-request comments)")
    parser.add_argument("--detailed-exitcode", action="store_true",
                        help="with --dry-run: exit 0 no changes, 2 changes pending, 1 error")
    parser.add_argument("--out", type=Path, metavar="FILE", help="save the plan as JSON (for --plan FILE)")
    parser.add_argument("--plan", type=Path, metavar="FILE",
                        help="apply exactly this saved plan; refuse it if the world has changed since")
    add_prune_argument(parser)
    parser.add_argument("--target", action="append", default=[], metavar="KIND/NAME",
                        help="plan and apply only this resource and what it depends on (repeatable), e.g. "
                             "Campaign/fw-2-4-rollout; an assignment or schedule targets its campaign, a "
                             "Backend everything on it")
    add_writer_arguments(parser)
    parser.add_argument("--allow-replace", action="store_true",
                        help="allow replacing a started campaign whose change the backend refuses in place")
    parser.add_argument("--adopt", action="store_true",
                        help="take over campaigns of declared names that exist in a backend but were not created "
                             "by this tool (without it they are left alone and the plan says so)")
    parser.add_argument("--no-color", action="store_true", help="no colour even on a terminal")
    parser.set_defaults(func=run)


def prune_mode(args: argparse.Namespace) -> PruneMode:
    if not getattr(args, "prune", None):
        return PruneMode.OFF
    return PruneMode(getattr(args, "prune_mode", None) or "stop")


def request_from(args: argparse.Namespace, *, dry_run: bool) -> PassRequest:
    paths = list(args.paths) or [Path("campaigns.d")]
    saved = None
    if getattr(args, "plan", None) is not None:
        saved = json.loads(args.plan.read_text(encoding="utf-8"))["actions"]
        if not isinstance(saved, list) or not all(isinstance(a, dict) for a in saved):
            raise ValueError("`actions` is not a list of actions; was it written by `reconcile --dry-run --out`?")
    prune = prune_mode(args)
    options = PlanOptions(prune=prune, allow_replace=getattr(args, "allow_replace", False),
                          adopt=getattr(args, "adopt", False),
                          risk_duplicate_sms=getattr(args, "risk_duplicate_sms", False))
    state = None if args.no_state else args.state
    targets, problems = parse_targets(getattr(args, "target", []) or [])
    if problems:
        raise ValueError("; ".join(problems))
    return PassRequest(paths, args.root, state, options, dry_run, saved, targets=tuple(targets))


def partial_prune(args: argparse.Namespace) -> str:
    """Why ``--prune`` is refused: a file among the PATHs is part of the declarations, and everything the
    other files declare would look removed from git ('' when the PATHs are folders)."""
    files = [str(p) for p in (args.paths or []) if p.is_file()]
    if prune_mode(args) is PruneMode.OFF or not files:
        return ""
    return (f"--prune with single files ({', '.join(files[:3])}) would take everything the other files declare "
            "for removed from git and stop or delete it; pass the folder that holds all the declarations "
            "(or use --target KIND/NAME to limit what is done)")


def run(args: argparse.Namespace) -> int:
    dry_run = bool(args.dry_run)
    if args.plan is not None and dry_run:
        print("reconcile: --plan applies a saved plan; it cannot be combined with --dry-run", file=sys.stderr)
        return EXIT_ERROR
    refused = partial_prune(args)
    if refused:
        print(f"reconcile: {refused}", file=sys.stderr)
        return EXIT_ERROR
    try:
        request = request_from(args, dry_run=dry_run)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        what = f"cannot read saved plan {args.plan}: {type(exc).__name__}: " if args.plan is not None else ""
        print(f"reconcile: {what}{exc}", file=sys.stderr)
        return EXIT_ERROR
    redactor = Redactor()
    configure_logging(redactor=redactor, level=os.environ.get("RECONCILE_LOG_LEVEL", "warning"))
    store = None
    if not dry_run and request.state_url is not None:
        try:  # the writer lease is held for the whole run: load, observe, plan, apply, record
            store = open_writer(request.state_url, base_dir=Path("."), command=command_line(args),
                                lock_timeout=max(args.lock_timeout, 0.0), ttl=args.lease_ttl,
                                on_wait=waiting_for)
        except StateStoreError as exc:
            print(f"reconcile: {redactor.scrub(str(exc))}", file=sys.stderr)
            return EXIT_ERROR
    try:
        with progress_for(enabled=not dry_run and args.output == "text") as progress:
            result = run_to_completion(run_pass(request, now=datetime.now(UTC), environ=dict(os.environ),
                                                redactor=redactor, progress=progress, store=store))
        if store is not None and result.desired is not None:  # the events this apply queued, best effort
            run_to_completion(deliver_after_apply(store, result.desired, environ=dict(os.environ), redactor=redactor))
    finally:
        if store is not None:
            store.close()
    return report(result, args, redactor, dry_run=dry_run)


def command_line(args: argparse.Namespace) -> str:
    """What the lease shows another writer about this one (no values: a path may say enough)."""
    return "reconcile apply --plan" if getattr(args, "plan", None) is not None else "reconcile apply"


def waiting_for(holder: LeaseHolder) -> None:
    print(f"reconcile: waiting for the state store's writer lease, {holder.describe()}", file=sys.stderr)


def report(result: PassResult, args: argparse.Namespace, redactor: Redactor, *, dry_run: bool) -> int:
    if result.lease_lost:
        print(f"reconcile: {redactor.scrub(result.lease_lost)}", file=sys.stderr)
        return EXIT_ERROR
    if result.plan is None:
        print(redactor.scrub(render_diagnostics(result.diagnostics)), file=sys.stderr)
        print(f"{sum(1 for _ in result.diagnostics)} problem(s); nothing was planned or changed.", file=sys.stderr)
        return EXIT_ERROR
    plan = result.plan
    paths = [str(p) for p in (args.paths or [Path("campaigns.d")])]
    if args.out is not None:
        args.out.write_text(redactor.scrub(render_json(plan, paths=paths)), encoding="utf-8")
    colour = sys.stdout.isatty() and not args.no_color and "NO_COLOR" not in os.environ
    rendered = {
        "json": lambda: render_json(plan, paths=paths),
        "markdown": lambda: render_markdown(plan),
        "text": lambda: render_text(plan, colour=colour),
    }[args.output]()
    print(redactor.scrub(rendered))
    loaded = [d for d in result.diagnostics if d not in plan.diagnostics]  # load warnings (past windows, ...)
    if loaded:
        print(redactor.scrub(render_diagnostics(loaded)), file=sys.stderr)
    if result.stale:
        print(f"reconcile: {result.stale}", file=sys.stderr)
        return EXIT_ERROR
    if plan.has_errors:
        print("The plan has errors: nothing was changed.", file=sys.stderr)
        return EXIT_ERROR

    if result.report is not None:
        print(redactor.scrub(render_report(result.report)), file=sys.stderr if args.output != "text" else sys.stdout)
    if not result.ok:
        return EXIT_ERROR
    if dry_run and args.detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK
