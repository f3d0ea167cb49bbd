"""Run a real ``reconcile watch`` process for tests, and poll until something becomes true."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

T = TypeVar("T")
TOKEN = "hook-token-for-tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def eventually(check: Callable[[], T | None], *, timeout: float = 20.0, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, KeyError, ValueError, StopIteration):
            last = None
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


class DaemonProcess:
    def __init__(self, cwd: Path, *args: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / f"daemon-{self.port}.log"
        command = [sys.executable, "-m", "reconciler", "watch", *args, "--listen", f"127.0.0.1:{self.port}",
                   "--log-format", "json"]
        self.process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env, "HOOK_TOKEN": TOKEN},
                                        stdout=subprocess.DEVNULL, stderr=self.log.open("w"))

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=5)

    def wait_ready(self, timeout: float = 30.0) -> None:
        eventually(lambda: self.get("/readyz").status_code == 200, timeout=timeout)

    def status(self) -> dict:
        return self.get("/status").json()

    def terminate(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def logs(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
