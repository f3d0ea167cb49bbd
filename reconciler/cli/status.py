"""``reconcile status [PATH...]``: per declared campaign, progress as the backends report it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from reconciler.cli.apply import add_common_arguments
from reconciler.cli.event_loop import run_to_completion
from reconciler.cli.render import render_diagnostics
from reconciler.engine.progress_report import CampaignProgress, campaign_progress
from reconciler.engine.reconcile import observe_declared
from reconciler.logs import configure_logging
from reconciler.secrets import Redactor


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("status", help="show campaign progress from the backends",
                                   description="Per declared campaign: its state and progress counts "
                                               "(gateway states, participant states) as the backends report them.")
    add_common_arguments(parser)
    parser.add_argument("--output", choices=("text", "json"), default="text")
    parser.set_defaults(func=run)


def render_rows(rows: list[CampaignProgress]) -> str:
    lines = []
    for row in rows:
        counts = ", ".join(f"{k} {v}" for k, v in row.counts.items() if v)
        lines.append(f"{row.campaign:28} {row.backend:16} {row.state:16} {row.detail}")
        if counts:
            lines.append(f"{'':28} {counts}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    redactor = Redactor()
    configure_logging(redactor=redactor, level=os.environ.get("RECONCILE_LOG_LEVEL", "warning"))
    result, sms = run_to_completion(observe_declared(list(args.paths) or [Path("campaigns.d")], root=args.root,
                                               environ=dict(os.environ), redactor=redactor,
                                               state_url=None if args.no_state else args.state))
    if result.desired is None or result.observed is None:
        print(redactor.scrub(render_diagnostics(result.diagnostics)), file=sys.stderr)
        return 1
    rows = campaign_progress(result.desired, result.observed, sms)
    if args.output == "json":
        print(json.dumps({"campaigns": [asdict(r) for r in rows]}, indent=2))
    else:
        print(redactor.scrub(render_rows(rows)))
    return 1 if any(r.state == "unreadable" for r in rows) else 0
