"""``reconcile status [PATH...]``: per declared campaign, progress as the backends report it, and for IoT
campaigns the gateways that are stranded (their schedule window ended before they finished the step it
gates). Stranded gateways are what the planner finds (``Plan.stranded``): status plans, without printing
or applying anything, from the same observation and the store's last-applied windows
(``reconciler.engine.status_read``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.cli.apply import add_common_arguments
from reconciler.cli.event_loop import run_to_completion
from reconciler.cli.render import render_diagnostics
from reconciler.engine.progress_report import CampaignProgress, campaign_progress
from reconciler.engine.status_read import read_status
from reconciler.logs import configure_logging
from reconciler.model import IotCampaignSpec
from reconciler.planner import StrandedGateways
from reconciler.secrets import Redactor


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("status", help="show campaign progress from the backends",
                                   description="Per declared campaign: its state and progress counts "
                                               "(gateway states, participant states) as the backends report them, "
                                               "and IoT gateways stranded by a schedule window that ended before "
                                               "they finished.")
    add_common_arguments(parser)
    parser.add_argument("--output", choices=("text", "json"), default="text")
    parser.set_defaults(func=run)


def render_rows(rows: list[CampaignProgress], stranded: Mapping[str, StrandedGateways] | None = None) -> str:
    lines = []
    for row in rows:
        counts = ", ".join(f"{k} {v}" for k, v in row.counts.items() if v)
        lines.append(f"{row.campaign:28} {row.backend:16} {row.state:16} {row.detail}")
        if counts:
            lines.append(f"{'':28} {counts}")
        stuck = (stranded or {}).get(row.campaign)
        if stuck is not None and stuck.count:
            lines.append(f"{'':28} {stranded_line(stuck)}")
    return "\n".join(lines)


def stranded_line(stuck: StrandedGateways) -> str:
    """``stranded: 225 gateway(s) (download 225; WAITING_FOR_DOWNLOAD 225) since ...; ...``"""
    windows = ", ".join(f"{window} {n}" for window, n in stuck.by_window.items())
    states = ", ".join(f"{state} {n}" for state, n in stuck.by_state.items())
    fixed = stuck.count - stuck.rescheduled
    then = ("the next plan gives them the next occurrence of their recurring window" if not fixed else
            f"{fixed} under a fixed window that nothing reschedules" +
            (f", {stuck.rescheduled} get the next occurrence of their recurring window" if stuck.rescheduled else ""))
    return (f"stranded: {stuck.count} gateway(s) ({windows}; {states}): their schedule window ended before they "
            f"finished, the first at {stuck.since}; {then}")


def run(args: argparse.Namespace) -> int:
    redactor = Redactor()
    configure_logging(redactor=redactor, level=os.environ.get("RECONCILE_LOG_LEVEL", "warning"))
    result = run_to_completion(read_status(list(args.paths) or [Path("campaigns.d")], root=args.root,
                                           environ=dict(os.environ), redactor=redactor,
                                           state_url=None if args.no_state else args.state, now=datetime.now(UTC)))
    if result.desired is None or result.observed is None:
        print(redactor.scrub(render_diagnostics(result.diagnostics)), file=sys.stderr)
        return 1
    rows = campaign_progress(result.desired, result.observed, result.sms)
    stranded = result.stranded
    if args.output == "json":
        iot = {name for name, spec in result.desired.campaigns.items() if isinstance(spec, IotCampaignSpec)}
        print(json.dumps({"campaigns": [{**asdict(r), **({"stranded": _stranded_json(stranded.get(r.campaign))}
                                                         if r.campaign in iot else {})} for r in rows]}, indent=2))
    else:
        print(redactor.scrub(render_rows(rows, stranded)))
    return 1 if any(r.state == "unreadable" for r in rows) else 0


def _stranded_json(stuck: StrandedGateways | None) -> dict[str, Any]:
    """``{"count": 0}`` for none, else the count, per window and state, since when, how many are rescheduled
    and the gateway ids."""
    if stuck is None:
        return {"count": 0}
    data = stuck.as_json()
    del data["campaign"], data["backend"]
    return data
