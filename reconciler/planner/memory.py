"""Keys and values under which write-only settings are remembered in the state store.

The planner compares against them and the executor records them, so both use these functions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from reconciler.actions import Action, Verb
from reconciler.remembered import canonical

SCHEDULE = "schedule"
CALLBACK = "callback"
SETTINGS = "settings"
PARTICIPANT_RETRIES = "retries"


def schedule_key(campaign_id: str, gateway_id: str, window: str) -> str:
    return f"{campaign_id}/{gateway_id}/{window}"


def schedule_value(begin_ms: int, end_ms: int) -> str:
    return canonical({"begin_ms": begin_ms, "end_ms": end_ms})


def schedule_window(value: str | None) -> tuple[int, int] | None:
    """(begin_ms, end_ms) of a remembered ``schedule_value``; None when absent or unreadable."""
    if value is None:
        return None
    try:
        data = json.loads(value)
        return int(data["begin_ms"]), int(data["end_ms"])
    except (ValueError, TypeError, KeyError):
        return None


def callback_key(campaign_id: str, callback: str) -> str:
    return f"{campaign_id}/{callback}"


def callback_value(destination: str, tracked_states: tuple[str, ...] | list[str]) -> str:
    return canonical({"destination": destination, "tracked_states": list(tracked_states)})


def settings_value(settings: Mapping[str, str]) -> str:
    return canonical(dict(settings))


def participant_key(campaign_id: int, participant_id: int) -> str:
    return f"{campaign_id}/{participant_id}"


def records_for(action: Action, produced: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(scope, key, value) to remember after ``action`` succeeded; ``action.params`` are resolved."""
    p = action.params
    if action.verb is Verb.SCHEDULE_GATEWAY:
        return [(SCHEDULE, schedule_key(p["campaign_id"], p["gateway_id"], p["window"]),
                 schedule_value(p["begin_ms"], p["end_ms"]))]
    if action.verb is Verb.SET_CALLBACK:
        return [(CALLBACK, callback_key(p["campaign_id"], p["callback"]),
                 callback_value(p["destination"], p.get("tracked_states", [])))]
    if action.verb is Verb.CREATE_CAMPAIGN:
        return [(SETTINGS, str(produced["campaign_id"]), settings_value(p.get("settings", {})))]
    if action.verb is Verb.UPDATE_CAMPAIGN:
        return [(SETTINGS, str(p["campaign_id"]), settings_value(p.get("settings", {})))]
    return []
