"""A saved plan (``--out FILE``) held against the plan of now (``--plan FILE``): a plan is applied exactly
or not at all, so any difference in its actions, in their JSON form (``serialize``), makes it stale."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.planner.plan import Plan
from reconciler.planner.serialize import action_json


def compare_saved(saved: Sequence[Mapping[str, Any]], current: Plan) -> str:
    """Why a saved plan no longer fits the world ('' if it still does)."""
    now = [action_json(a) for a in current.actions]
    if json.dumps(list(saved), sort_keys=True) == json.dumps(now, sort_keys=True):
        return ""
    saved_ids = {a.get("id") for a in saved}
    now_ids = {a["id"] for a in now}
    return (f"the saved plan is stale: {len(saved_ids - now_ids)} of its actions are no longer needed and "
            f"{len(now_ids - saved_ids)} new ones are; run `reconcile --dry-run --out FILE` again")
