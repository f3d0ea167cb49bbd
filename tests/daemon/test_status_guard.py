"""``/status`` shows every declaration and what was observed of it. On the default loopback address it is
served as before; on any other address only with a status token (``--status-token-env``), and a token, once
set, is required on every address (``Authorization: Bearer <token>``, compared in constant time)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from tests.daemon.daemon_process import DaemonProcess, eventually
from tests.engine import crash
from tests.engine import sandbox_repo as repo

STATUS_TOKEN = "status-token-for-tests-ü"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxOptions(port_base=0, gateway_count=20, seed=6)) as running:
        yield running


def free_port_on(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ListeningDaemon(DaemonProcess):
    """A daemon on ``host`` (DaemonProcess always listens on 127.0.0.1)."""

    def __init__(self, cwd: Path, host: str, *args: str, env: dict[str, str]) -> None:  # noqa: D107
        self.port = free_port_on(host)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / f"daemon-{self.port}.log"
        command = [sys.executable, "-m", "reconciler", "watch", *args, "--listen", f"{host}:{self.port}",
                   "--log-format", "json"]
        self.process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                        stderr=self.log.open("w"))


@pytest.fixture
def start(sandbox: RunningSandbox, tmp_path: Path) -> Iterator:
    started: list[DaemonProcess] = []

    def run(host: str, *args: str) -> DaemonProcess:
        SandboxControls.of(sandbox).reset()
        decl = repo.make_repo(tmp_path / f"ops-{len(started)}", sandbox)
        repo.write(decl, "rollout.yaml", repo.campaign_yaml("rollout", gateways=["gw-00001"]))
        daemon = ListeningDaemon(tmp_path, host, str(decl), "--state", f"sqlite:///{tmp_path}/state-{len(started)}.db",
                                 "--resync", "600", *args,
                                 env={**repo.SECRETS, **crash.environment(), "STATUS_TOKEN": STATUS_TOKEN})
        started.append(daemon)
        daemon.wait_ready()
        return daemon

    yield run
    for daemon in started:
        daemon.stop()


def status(daemon: DaemonProcess, path: str = "/status", **headers: str) -> httpx.Response:
    return httpx.get(daemon.url + path, headers=headers, timeout=10)


def test_on_loopback_without_a_token_status_is_served_as_before(start) -> None:  # type: ignore[no-untyped-def]
    daemon = start("127.0.0.1")
    reply = status(daemon)
    assert reply.status_code == 200 and reply.json()["ready"] is True


def test_on_all_interfaces_without_a_token_status_is_not_served(start) -> None:  # type: ignore[no-untyped-def]
    daemon = start("0.0.0.0")
    for path in ("/status", "/status/", "/%73tatus"):
        reply = status(daemon, path)
        assert reply.status_code == 403, (path, reply.status_code)
        assert "--status-token-env" in reply.json()["error"]
    assert "Campaign/rollout" not in status(daemon).text
    assert (status(daemon, "/healthz").status_code, status(daemon, "/readyz").status_code) == (200, 200)
    eventually(lambda: "http.status_not_served" in daemon.logs(), timeout=5)


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1"])
def test_with_a_token_status_needs_the_bearer_token(start, host: str) -> None:  # type: ignore[no-untyped-def]
    daemon = start(host, "--status-token-env", "STATUS_TOKEN")
    token = STATUS_TOKEN.encode("utf-8")
    refused = [status(daemon),
               status(daemon, Authorization="Bearer wrong"),
               status(daemon, Authorization=b"Bearer " + token[:-1]),  # type: ignore[arg-type]
               status(daemon, Authorization=b"Basic " + token),  # type: ignore[arg-type]
               status(daemon, "/status/", Authorization="Bearer")]
    assert [r.status_code for r in refused] == [401] * len(refused)
    assert all(r.headers["www-authenticate"].startswith("Bearer") for r in refused)
    accepted = httpx.get(f"{daemon.url}/status", headers={"Authorization": b"Bearer " + token}, timeout=10)
    assert accepted.status_code == 200
    assert [r["resource"] for r in accepted.json()["resources"]] == ["Campaign/rollout"]
    assert STATUS_TOKEN not in daemon.logs()


def container_command() -> list[str]:
    """The Containerfile's CMD (a JSON array, continued over lines)."""
    text = (Path(__file__).resolve().parents[2] / "examples" / "deploy" / "Containerfile").read_text()
    start = text.index("\nCMD [") + len("\nCMD ")
    return json.loads(text[start:].replace("\\\n", " ").split("\n", 1)[0])


def test_the_container_listens_on_all_interfaces_only_with_both_tokens(tmp_path: Path) -> None:
    command = container_command()
    assert command[0] == "watch" and command[command.index("--listen") + 1].startswith("0.0.0.0:")
    assert command[command.index("--ui-token-env") + 1] == "RECONCILER_UI_TOKEN"  # also guards the dashboard
    command[command.index("--state") + 1] = f"sqlite:///{tmp_path}/state.db"
    command[command.index("--listen") + 1] = f"0.0.0.0:{free_port_on('0.0.0.0')}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    for given, missing in (({}, "RECONCILER_WEBHOOK_TOKEN"), ({"RECONCILER_WEBHOOK_TOKEN": "w"}, "RECONCILER_UI_TOKEN")):
        result = subprocess.run([sys.executable, "-m", "reconciler", *command], cwd=tmp_path, capture_output=True,
                                text=True, env={**environ, **given}, timeout=60)
        assert result.returncode == 1 and f"{missing} is not set" in result.stderr, result.stderr
