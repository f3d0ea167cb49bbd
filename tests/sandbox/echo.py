"""A tiny simulator for testing the harness and the HTTP policy without any real backend's rules."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route


class CountingSimulator:
    """Counts POSTed effects so tests can tell whether a faulted request still took effect."""

    name = "counting"

    def __init__(self) -> None:
        self.effects = 0
        self.advanced_to = 0.0

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/things/{thing_id}", self._get, methods=["GET"]),
            Route("/api/things/{thing_id}", self._post, methods=["POST"]),
        ]

    async def _get(self, request: Request) -> JSONResponse:
        return JSONResponse({"id": request.path_params["thing_id"], "effects": self.effects})

    async def _post(self, request: Request) -> JSONResponse:
        self.effects += 1
        return JSONResponse({"id": request.path_params["thing_id"], "effects": self.effects})

    def advance(self, now: float) -> None:
        self.advanced_to = now

    def reset(self) -> None:
        self.effects = 0

    def snapshot(self) -> dict[str, Any]:
        return {"effects": self.effects}

    def restore(self, data: dict[str, Any]) -> None:
        self.effects = int(data["effects"])

    def malformed(self, body: bytes) -> bytes:
        return body[: len(body) // 2]
