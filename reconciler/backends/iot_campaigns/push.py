"""The IoT campaign manager's callbacks as the daemon receives them (``/webhooks/iot-campaigns/<token>``).

A callback says a gateway or campaign changed state; the daemon acts on it by running a pass (the pass reads
the backend again), so only a JSON object is required and two bounded fields are kept for the log.
"""

from __future__ import annotations

import json

from reconciler.backends.descriptor import PushError, PushReport

LOGGED_CHARS = 64


def parse_callback(body: bytes) -> PushReport:
    """A callback body: any JSON object; its ``campaignId`` and ``state`` (shortened) go to the log."""
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        raise PushError("body is not a JSON object") from None
    if not isinstance(event, dict):
        raise PushError("body is not a JSON object")
    return PushReport(wake="iot callback", log={"campaign": str(event.get("campaignId", ""))[:LOGGED_CHARS],
                                                "state": str(event.get("state", ""))[:LOGGED_CHARS]})
