"""The SMS gateway simulator's pushes: JSON POSTs of sending results, delivery reports and incoming SMS
to a configured URL, as the real gateway makes them.

Fire-and-forget, like the product: each push is a background task on the server's event loop with a
short timeout; a failure is counted (``snapshot()["pushes"]``), never retried, and never delays the API.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

PUSH_TIMEOUT_S = 2.0


class PushSender:
    """Posts payloads to ``url`` (when set) and counts what happened to them."""

    def __init__(self, *, url: str | None, timeout_s: float = PUSH_TIMEOUT_S) -> None:
        self.url = url
        self._timeout_s = timeout_s
        self._waiting: list[dict[str, Any]] = []
        self._running: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.failed = 0
        self.last_error = ""

    def push(self, payload: dict[str, Any]) -> None:
        """Queue ``payload``; it leaves now when called on an event loop, else at the next ``flush``."""
        if self.url is not None:
            self._waiting.append(payload)
            self.flush()

    def flush(self) -> None:
        """Start a POST for every waiting payload, if an event loop is running in this thread."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        waiting, self._waiting = self._waiting, []
        for payload in waiting:
            task = loop.create_task(self._post(payload))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _post(self, payload: dict[str, Any]) -> None:
        assert self.url is not None
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s) as client:
                reply = await client.post(self.url, json=payload)
                reply.raise_for_status()
        except httpx.HTTPError as exc:
            self.failed += 1
            self.last_error = f"{exc.__class__.__name__}: {exc}"[:200]
        else:
            self.sent += 1

    def stats(self) -> dict[str, Any]:
        return {"url": self.url, "sent": self.sent, "failed": self.failed,
                "waiting": len(self._waiting), "last_error": self.last_error}

    def restore(self, data: dict[str, Any]) -> None:
        self.sent, self.failed, self.last_error = data["sent"], data["failed"], data["last_error"]
