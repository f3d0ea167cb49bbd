"""The dashboard's CSS and script, served by the daemon itself (no CDN: it works with no internet).

Each asset's URL carries a hash of its content (``/static/dashboard.css?v=1a2b...``) and is cached as
immutable: a browser fetches it once per daemon version and never asks again, so a page load costs one
request (the page) instead of three.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

STATIC = Path(__file__).parent / "static"
TYPES = {"dashboard.css": "text/css; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8"}
IMMUTABLE = "public, max-age=31536000, immutable"


class Assets:
    """The static files, read once; ``url(name)`` for templates, ``serve`` for ``/static/{name}``."""

    def __init__(self, folder: Path = STATIC) -> None:
        self.bodies = {name: (folder / name).read_bytes() for name in TYPES}
        self.versions = {name: hashlib.sha256(body).hexdigest()[:16] for name, body in self.bodies.items()}

    def url(self, name: str) -> str:
        return f"/static/{name}?v={self.versions[name]}"

    async def serve(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.bodies:
            return PlainTextResponse("not found\n", status_code=404)
        etag = f'"{self.versions[name]}"'
        headers = {"etag": etag, "x-content-type-options": "nosniff",
                   "cache-control": IMMUTABLE if request.query_params.get("v") == self.versions[name] else "no-cache"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(self.bodies[name], media_type=TYPES[name], headers=headers)
