"""``reconcile history``: what every apply and daemon pass did, newest first, from the state store (any
checkout of a shared store sees the same history)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from reconciler.escape import escape
from reconciler.errors import StateStoreError
from reconciler.state.database import display_url
from reconciler.state.history import HistoryEntry
from reconciler.state.store import DEFAULT_STATE_URL, STATE_ENV, open_store


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "history", help="what applies and daemon passes did, from the state store",
        description="Every apply and daemon pass that acted, newest first: when, which git revision, who "
                    "(user@host), the command, and each action with its outcome. Read only: takes no lease.")
    parser.add_argument("--state", default=os.environ.get(STATE_ENV) or DEFAULT_STATE_URL, metavar="URL",
                        help=f"state store (default: ${STATE_ENV}, else {DEFAULT_STATE_URL})")
    parser.add_argument("--campaign", metavar="NAME", help="only what was done to this campaign")
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="at most N entries (default 20)")
    parser.add_argument("--output", choices=("text", "json"), default="text")
    parser.set_defaults(func=run)


def render_entry(entry: HistoryEntry) -> str:
    head = (f"{entry.at}  {'ok    ' if entry.ok else 'FAILED'}  {entry.revision or '-':12}  {escape(entry.who)}  "
            f"{escape(entry.command)}  {entry.seconds:.1f}s  {len(entry.actions)} action(s)")
    lines = [head]
    for action in entry.actions:
        message = f"  ({escape(str(action['message']))})" if action.get("message") else ""
        lines.append(f"    {action['outcome']:9} {action['verb']:22} {escape(str(action['resource']))}{message}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.limit < 1:
        print("reconcile history: --limit must be at least 1", file=sys.stderr)
        return 1
    try:
        store = open_store(args.state, writer=False)
        if store is None:
            print(f"reconcile history: no state store at {display_url(args.state)} (nothing was applied with it)",
                  file=sys.stderr)
            return 1
        try:
            entries = store.history.entries(campaign=args.campaign, limit=args.limit)
        finally:
            store.close()
    except StateStoreError as exc:
        print(f"reconcile history: {exc}", file=sys.stderr)
        return 1
    if args.output == "json":
        print(json.dumps([e.as_json() for e in entries], indent=2))
    elif not entries:
        print("No history" + (f" for campaign {args.campaign}." if args.campaign else "."))
    else:
        print("\n".join(render_entry(e) for e in entries))
    return 0
