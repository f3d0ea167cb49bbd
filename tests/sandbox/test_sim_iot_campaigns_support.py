"""Helpers shared by the IoT campaign manager simulator and adapter tests (no tests in here):
seed-shaped reply checks, a loopback receiver for callbacks, and a logged-in sandbox client."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


def assert_shape(value: Any, template: Any, where: str = "reply") -> None:
    """``value`` has the seed's shape: same keys, ``"string"`` -> str, ``0`` -> int, ``True`` -> bool,
    ``[x]`` -> a list whose items have the shape of ``x``."""
    if isinstance(template, dict):
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
        assert set(value) == set(template), f"{where}: keys {sorted(value)} != {sorted(template)}"
        for key, inner in template.items():
            assert_shape(value[key], inner, f"{where}.{key}")
    elif isinstance(template, list):
        assert isinstance(value, list), f"{where}: expected a list, got {value!r}"
        for index, item in enumerate(value):
            assert_shape(item, template[0], f"{where}[{index}]")
    elif isinstance(template, bool):
        assert isinstance(value, bool), f"{where}: expected a boolean, got {value!r}"
    elif isinstance(template, int):
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: expected a number, got {value!r}"
    else:
        assert isinstance(value, str), f"{where}: expected a string, got {value!r}"


class CallbackReceiver:
    """A plain HTTP server on loopback that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self._arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server naming)
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                with receiver._arrived:
                    receiver.bodies.append(body)
                    receiver._arrived.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def wait_for(self, count: int, *, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The bodies received, once there are at least ``count`` of them (or the timeout passed)."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.bodies) >= count, timeout=timeout)
            return list(self.bodies)

    @contextmanager
    def running(self) -> Iterator[CallbackReceiver]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=5)


@contextmanager
def logged_in(base_url: str, *, user: str = "admin", password: str = "admin") -> Iterator[httpx.Client]:
    """An httpx client for the sandbox carrying a fresh bearer token."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        reply = client.post("/api/tokens", auth=(user, password))
        reply.raise_for_status()
        client.headers["Authorization"] = f"Bearer {reply.json()['accessToken']}"
        yield client
