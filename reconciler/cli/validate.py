"""``reconcile validate``: check declared state offline, with one line per problem.

No backend is contacted. Exit 0 when valid, 1 when not. Problems go to stderr as
``FILE:LINE:COL: error: MESSAGE`` (the format editors and CI annotators parse), or to stdout as one
JSON object with ``--output json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from reconciler.diagnostics import Severity
from reconciler.load import DEFAULT_MAX_FILE_BYTES, load_desired_state

EXIT_VALID = 0
EXIT_INVALID = 1


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of bytes, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check the YAML files (schemas, references, files, secrets) without contacting any backend",
        description="Check declared state offline. Exit 0 when valid, 1 when not; one "
                    "FILE:LINE:COL: error: MESSAGE line per problem on stderr.",
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="YAML files or folders, read recursively (default: campaigns.d/)")
    parser.add_argument("--root", type=Path, metavar="DIR",
                        help="repository root that files named in YAML must stay inside (default: the nearest "
                             "folder above the first PATH holding .git)")
    parser.add_argument("--output", choices=("text", "json"), default="text",
                        help="text: problems on stderr (default); json: one object on stdout")
    parser.add_argument("--max-file-bytes", type=_positive_int, default=DEFAULT_MAX_FILE_BYTES, metavar="N",
                        help=f"refuse YAML files larger than N bytes (default {DEFAULT_MAX_FILE_BYTES:,})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    paths = list(args.paths) or [Path("campaigns.d")]
    result = load_desired_state(paths, root=args.root, max_file_bytes=args.max_file_bytes)
    errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    if args.output == "json":
        document = {
            "valid": result.valid,
            "diagnostics": [d.as_json() for d in result.diagnostics],
            "resources": result.resources,
            "files": len(result.files),
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        for diagnostic in result.diagnostics:
            sys.stderr.write(_one_line(diagnostic.format()) + "\n")
        if result.valid:
            sys.stdout.write(f"valid: {_count(result.resources, 'resource')} in {_count(len(result.files), 'file')}\n")
        else:
            files = len({d.file for d in errors})
            sys.stderr.write(f"{_count(len(errors), 'problem')} in {_count(files, 'file')}\n")
    return EXIT_VALID if result.valid else EXIT_INVALID


_LINE_BREAKS = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def _one_line(text: str) -> str:
    """Editors and CI annotators read one problem per line: escape anything that could break one
    (a file name or a value may contain a newline)."""
    return _LINE_BREAKS.sub(lambda found: json.dumps(found.group())[1:-1], text)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
