"""What a receiver gets: the body (the event as JSON, or Slack's ``{"text": ...}``) and the headers that
name and sign it.

- ``X-Reconciler-Event``: the event, e.g. ``rollout.halted``;
- ``X-Reconciler-Delivery``: the event id, the same on every attempt: a receiver that already handled it
  answers 2xx and does nothing (a repeat happens only when a crash or a timeout came between its 2xx and
  our record of it);
- ``X-Reconciler-Signature: sha256=<hex>``: HMAC-SHA256 of the exact body bytes with the Notification's
  ``signingSecret`` (absent without one). Verify it over the raw body, before parsing, with a
  constant-time comparison (``signature_matches``), as for GitHub's and Flux's webhooks.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from hashlib import sha256
from typing import Any

from reconciler.model import NotificationFormat

USER_AGENT = "campaign-reconciler-notifications/1"
SEVERITY_MARKS = {"error": ":red_circle:", "warning": ":warning:", "info": ":large_blue_circle:"}


def render_body(body_format: NotificationFormat, event: Mapping[str, Any]) -> bytes:
    """The request body in ``body_format`` (compact JSON, UTF-8)."""
    if body_format is NotificationFormat.SLACK:
        return json.dumps({"text": slack_text(event)}, ensure_ascii=False).encode("utf-8")
    return json.dumps(event, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def slack_text(event: Mapping[str, Any]) -> str:
    """One Slack line: severity mark, event, summary (``&``, ``<``, ``>`` escaped as Slack asks)."""
    mark = SEVERITY_MARKS.get(str(event.get("severity")), "")
    text = f"{mark} *{event.get('event')}* {event.get('summary')}".strip()
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver checks: the header is the signature of these exact bytes (constant time)."""
    return header is not None and hmac.compare_digest(signature(secret, body), header)


def request_headers(*, event: str, delivery: str, body: bytes, secret: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "X-Reconciler-Event": event,
               "X-Reconciler-Delivery": delivery}
    if secret is not None:
        headers["X-Reconciler-Signature"] = signature(secret, body)
    return headers
