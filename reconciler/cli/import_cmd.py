"""``reconcile import [PATH...] --out DIR``: write YAML for what the Backends declared in PATH have and PATH
does not declare, and record it as adopted, so that ``reconcile --dry-run`` of the result plans nothing.

Exit codes: 0 imported (or nothing to import), 1 error: bad declarations, a backend that could not be read,
``--out`` not empty (without ``--force``), the writer lease held elsewhere. On an error nothing is written.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from reconciler.cli.apply import add_common_arguments
from reconciler.cli.event_loop import run_to_completion
from reconciler.engine.importer import ImportReport, ImportRequest, run_import
from reconciler.engine.import_files import printable
from reconciler.logs import configure_logging
from reconciler.secrets import Redactor
from reconciler.state.database import display_url

EXIT_OK, EXIT_ERROR = 0, 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "import", help="write YAML for what the declared backends have and git does not declare",
        description="For the Backends declared in PATH, write one YAML file per object that exists in those "
                    "backends and is not declared (packages, campaigns with their gateways, distribution list "
                    "and state), and record them as adopted in the state store, so that a dry run of "
                    "the result plans nothing. A backend whose API lists no campaigns has nothing to "
                    "import.")
    add_common_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="folder to write into, inside the repository; must be empty or new unless --force")
    parser.add_argument("--force", action="store_true",
                        help="write into a folder that is not empty (files of the same name are replaced)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print what would be written; write and record nothing")
    parser.add_argument("--lock-timeout", type=float, default=0.0, metavar="SECONDS",
                        help="if another writer holds the state store's lease, wait this long for it (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    redactor = Redactor()
    configure_logging(redactor=redactor, level=os.environ.get("RECONCILE_LOG_LEVEL", "warning"))
    state = None if args.no_state else args.state
    request = ImportRequest(paths=list(args.paths) or [Path("campaigns.d")], out=args.out, root=args.root,
                            state_url=state, dry_run=args.dry_run, force=args.force,
                            lock_timeout=max(args.lock_timeout, 0.0))
    report = run_to_completion(run_import(request, environ=dict(os.environ), redactor=redactor))
    shown = render(report, request)
    if shown:
        print(redactor.scrub(shown))
    if not report.ok:
        for error in report.errors:
            print(f"reconcile import: {redactor.scrub(printable(error))}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def render(report: ImportReport, request: ImportRequest) -> str:
    """What was found per backend, each file (with its content on a dry run), what was skipped and why,
    then what to run next."""
    lines = [f"backend {printable(line)}" for line in report.backends]
    if report.errors and not report.files:
        return "\n".join(lines)
    verb = "would write" if request.dry_run else "wrote"
    out = request.out
    for planned in report.files:
        about = f"[{planned.resource}] {planned.summary}" if planned.resource else planned.summary
        lines.append(f"{verb} {printable(str(out / planned.path))}  {printable(about)}")
        if request.dry_run and not planned.placeholder and planned.resource:
            lines += ["    " + printable(text) for text in planned.content.decode("utf-8").splitlines()]
    lines += [f"skipped {printable(line)}" for line in report.skipped]
    if report.errors:
        return "\n".join(lines)
    lines.append(_closing(report, request))
    return "\n".join(lines)


def _closing(report: ImportReport, request: ImportRequest) -> str:
    documents = sum(1 for f in report.files if f.resource)
    placeholders = sum(1 for f in report.files if f.placeholder)
    if not documents:
        return "Nothing to import: everything these backends have is declared (or was skipped)."
    parts = []
    if request.dry_run:
        parts.append(f"{documents} resource(s) would be imported; nothing was written (--dry-run).")
    else:
        store = (f"recorded {report.adopted} object(s) as adopted in {display_url(request.state_url)}"
                 if request.state_url else "recorded nothing as adopted (--no-state)")
        parts.append(f"Imported {documents} resource(s) under {printable(str(request.out))}; {store}.")
    if placeholders:
        parts.append(f"{placeholders} package file(s) are placeholders: the backend cannot give their bytes, and "
                     "each Package names its existing program (`program:`) so nothing is uploaded.")
    paths = [str(p) for p in request.paths]
    inside = any(_inside(request.out, Path(p)) for p in paths)
    check = " ".join(printable(p) for p in (paths if inside else [*paths, str(request.out)]))
    parts.append(f"Check: reconcile --dry-run --detailed-exitcode {check}")
    return "\n".join(parts)


def _inside(path: Path, folder: Path) -> bool:
    real, parent = os.path.realpath(path), os.path.realpath(folder)
    return real == parent or real.startswith(parent.rstrip(os.sep) + os.sep)
