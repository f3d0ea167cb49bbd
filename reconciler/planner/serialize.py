"""The JSON form of actions: used by ``--output json``, ``--out FILE`` and ``--plan FILE``."""

from __future__ import annotations

from typing import Any

from reconciler.actions import Action, Produced


def jsonable(value: Any) -> Any:
    """Action parameters as JSON data; a ``Produced`` reference becomes ``{"$produced", "field"}``."""
    if isinstance(value, Produced):
        return {"$produced": value.action_id, "field": value.field}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def action_json(action: Action) -> dict[str, Any]:
    return {"id": action.id, "verb": action.verb.value, "resource": str(action.key), "backend": action.backend,
            "params": jsonable(dict(action.params)), "depends_on": list(action.depends_on),
            "reason": action.reason, "destructive": action.destructive}
