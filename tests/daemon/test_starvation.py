"""The daemon cannot be starved by connections: a real ``reconcile watch`` process with thousands of idle
connections open still answers ``/healthz``, closes connections that send no complete request head within
``--header-timeout``, answers a trickled head 408 and an oversized one 431, and at ``--max-connections``
closes the connection idle longest to admit a new one.

(Once, 20,000 idle connections exhausted its descriptors: ``/healthz`` stopped answering and passes failed
with "cannot open state store". ``bench/daemon_starvation.py`` measures ``/healthz`` latency at 20,000.)
"""

from __future__ import annotations

import json
import resource
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.daemon.http_api import ServerOptions, connection_budget
from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from tests.daemon.daemon_process import DaemonProcess, eventually
from tests.engine import crash
from tests.engine import sandbox_repo as repo

IDLE = 2000
HEADER_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxOptions(port_base=0, gateway_count=20, seed=4)) as running:
        yield running


def start(daemons: list[DaemonProcess], sandbox: RunningSandbox, cwd: Path, *args: str) -> DaemonProcess:
    SandboxControls.of(sandbox).reset()
    decl = repo.make_repo(cwd / "ops", sandbox)
    repo.write(decl, "rollout.yaml", repo.campaign_yaml("rollout", gateways=["gw-00001"]))
    daemon = DaemonProcess(cwd, str(decl), "--state", f"sqlite:///{cwd}/state.db", "--resync", "600", *args,
                           env={**repo.SECRETS, **crash.environment()})
    daemons.append(daemon)
    daemon.wait_ready()
    return daemon


@pytest.fixture(autouse=True)
def enough_descriptors() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = IDLE + 512
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"needs {wanted} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def open_idle(port: int, count: int) -> list[socket.socket]:
    """``count`` connected sockets that never send a byte."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.setblocking(False)
            sockets.append(sock)
    except BaseException:
        close_all(sockets)
        raise
    return sockets


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def closed_by_peer(sockets: list[socket.socket]) -> int:
    """How many of ``sockets`` the other side has closed (end of file or reset)."""
    poller = select.poll()
    by_fd = {}
    for sock in sockets:
        poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
        by_fd[sock.fileno()] = sock
    closed = 0
    for fd, _ in poller.poll(0):
        try:
            closed += by_fd[fd].recv(4096) == b""
        except (ConnectionResetError, BlockingIOError):
            closed += 1
    return closed


def test_healthz_answers_with_2000_idle_connections_and_they_are_closed_after_the_header_timeout(
    sandbox: RunningSandbox, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    daemon = start(daemons, sandbox, tmp_path, "--header-timeout", str(HEADER_TIMEOUT_S))
    idle = open_idle(daemon.port, IDLE)
    try:
        opened = time.monotonic()
        with httpx.Client(timeout=10) as client:
            assert all(client.get(f"{daemon.url}/healthz").status_code == 200 for _ in range(20))
            assert client.get(f"{daemon.url}/readyz").status_code == 200
            assert "reconcile_pass_duration_seconds" in client.get(f"{daemon.url}/metrics").text
        eventually(lambda: closed_by_peer(idle) == IDLE, timeout=HEADER_TIMEOUT_S + 15, interval=0.2)
        assert time.monotonic() - opened >= HEADER_TIMEOUT_S * 0.9  # closed by the deadline, not at once
    finally:
        close_all(idle)
    assert daemon.get("/healthz").status_code == 200
    assert "Traceback" not in daemon.logs()


def test_a_trickled_head_gets_408_and_an_oversized_head_431(
    sandbox: RunningSandbox, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    daemon = start(daemons, sandbox, tmp_path, "--header-timeout", str(HEADER_TIMEOUT_S))
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as slow:
        started = time.monotonic()
        reply = b""
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:  # never finished
            try:
                slow.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.05)
            if select.select([slow], [], [], 0)[0]:
                break
        slow.settimeout(10)
        try:
            while chunk := slow.recv(4096):
                reply += chunk
        except ConnectionResetError:
            pass
        assert reply.startswith(b"HTTP/1.1 408"), reply
        assert HEADER_TIMEOUT_S * 0.9 <= time.monotonic() - started < HEADER_TIMEOUT_S + 5
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as big:
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"b" * 1000)
                                                                 for i in range(100))
        try:
            big.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert big.recv(4096).startswith(b"HTTP/1.1 431")
    assert daemon.get("/healthz").status_code == 200


def test_at_the_connection_limit_the_connection_idle_longest_makes_room(
    sandbox: RunningSandbox, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    daemon = start(daemons, sandbox, tmp_path, "--max-connections", "50", "--header-timeout", "60")
    idle = open_idle(daemon.port, 200)
    try:
        # the first 150 were closed to admit the later ones, long before any header timeout
        eventually(lambda: closed_by_peer(idle[:150]) == 150, timeout=10, interval=0.1)
        assert closed_by_peer(idle[150:]) == 0
        with httpx.Client(timeout=10) as client:  # a probe still gets in (and closes one more idle one)
            assert [client.get(f"{daemon.url}/healthz").status_code for _ in range(5)] == [200] * 5
    finally:
        close_all(idle)
    # 150+ evictions in a second are one log line (repeats within the window are counted, not written)
    assert daemon.logs().count('"http.connection_evicted"') == 1


def test_the_daemon_raises_its_descriptor_limit_and_keeps_a_reserve(
    sandbox: RunningSandbox, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 1024:
        pytest.skip(f"the hard limit ({hard}) leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # inherited by the daemon
    try:
        daemon = start(daemons, sandbox, tmp_path)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    limits = Path(f"/proc/{daemon.process.pid}/limits").read_text()
    line = next(row for row in limits.splitlines() if row.startswith("Max open files"))
    assert line.split()[3:5] == [str(hard), str(hard)], line
    shown = next(json.loads(row) for row in daemon.logs().splitlines() if '"daemon.limits"' in row)
    assert shown["open_files"] == hard
    assert shown["max_connections"] == connection_budget(ServerOptions(), descriptor_limit=hard).max_connections


@pytest.mark.parametrize("limit", [1024, 4096, 20_000, 1 << 20])
def test_the_connection_budget_leaves_the_reserve_and_one_accept_burst(limit: int) -> None:
    budget = connection_budget(ServerOptions(), descriptor_limit=limit)
    assert budget.max_connections + budget.backlog + ServerOptions().fd_reserve <= limit
    assert budget.max_connections == min(ServerOptions().max_connections,
                                         limit - ServerOptions().fd_reserve - budget.backlog)
