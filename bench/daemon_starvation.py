"""Whether the daemon can be starved by connections: ``reconcile watch`` runs on a small fleet in the
sandbox, N idle connections (default 20,000) are opened to its HTTP port from loopback, and ``/healthz``
is timed while they are open.

    .venv/bin/python bench/daemon_starvation.py [--connections 20000] [--probes 100] [--rounds 3] [--quick]

Three scenarios, each with a daemon of its own:

- ``defaults``: the daemon's defaults (at most 4,096 connections, a request head due within 5 s). The
  N connections are opened, then ``/healthz`` is probed for ``--probe-seconds`` while the benchmark
  still holds all N: the daemon has closed those it could not keep (beyond 4,096, or silent for 5 s).
- ``held``: ``--max-connections 1000000 --header-timeout 600``, so the daemon keeps every connection its
  descriptor limit allows (the limit less its reserve): once it has accepted them (its socket count has
  not changed for a second), ``/healthz`` is probed while it holds them.
- ``sustained``: the defaults, and every connection the daemon closes is opened again at once (an
  attacker that keeps N open from its side, for ``--probe-seconds``).

A probe is what a supervisor's health check does: a new connection, ``GET /healthz``, the reply read to
its end; timed from ``connect`` to the last byte. Probes are 50 ms apart, after a first one sent as soon
as the N connections are open: that one waits behind their accepts (reported as ``first_probe_ms``, not
in the percentiles). The idle connections are held
by child processes (one per 5,000, each from its own loopback source address, so that neither this
process's descriptor limit nor one address's ephemeral ports bound N), each raising its soft
``RLIMIT_NOFILE`` to the hard limit. Everything stays on loopback; the count and every wait are bounded.

Figures per scenario: /healthz p50, p95 and max in milliseconds (median over ``--rounds`` rounds, with
min and max), probes that failed, connections the daemon held (its socket descriptors) while probed, and
how many of the N it had closed. Goal (``defaults`` and ``held``: idle connections): every probe
answered, max <= 100 ms. ``sustained`` is reported without a goal: a client that reconnects as fast as it
can keeps the daemon's event loop accepting and closing connections (on two cores shared with the
attacker's processes), and a probe's connect waits in the kernel's accept queue behind the flood; that is
a matter for the network in front of the daemon (a per-source connection limit), not for the daemon.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import select
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import httpx

from fleet import PROJECT_DIR, PYTHON, FleetSpec, reconcile_env, wait_until, write_fleet
from fleet_sandbox import fleet_sandbox, free_port_base
from measure import Figure, print_figures

GOAL_MAX_MS = 100.0
PER_HOLDER = 5_000
SMALL_FLEET = FleetSpec(iot_campaigns=2, gateways_per_campaign=5, yate_campaigns=1, participants=20,
                        sms_recipients=10, ogangi_recipients=5)
SCENARIOS = {
    "defaults": (),
    "held": ("--max-connections", "1000000", "--header-timeout", "600"),
    "sustained": (),
}
PROBE = b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


# --- the idle connections (child processes) --------------------------------------------------------


def _raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def _connect_all(port: int, source: str, count: int, deadline: float) -> tuple[list[socket.socket], int]:
    """Open ``count`` connections (non-blocking connects, completed together); returns them and the failures."""
    pending: dict[int, socket.socket] = {}
    done: list[socket.socket] = []
    failed = 0
    poller = select.poll()
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.bind((source, 0))
            sock.connect_ex(("127.0.0.1", port))
        except OSError:
            sock.close()
            failed += 1
            continue
        pending[sock.fileno()] = sock
        poller.register(sock, select.POLLOUT)
        if len(pending) >= 512:  # complete in batches: the listen queue is bounded
            failed += _complete(poller, pending, done, deadline, keep=256)
    failed += _complete(poller, pending, done, deadline, keep=0)
    return done, failed


def _complete(poller: select.poll, pending: dict[int, socket.socket], done: list[socket.socket], deadline: float,
              *, keep: int) -> int:
    failed = 0
    while len(pending) > keep and time.monotonic() < deadline:
        for fd, _ in poller.poll(100):
            sock = pending.pop(fd)
            poller.unregister(fd)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                done.append(sock)
            else:
                sock.close()
                failed += 1
    if time.monotonic() >= deadline:
        for fd, sock in list(pending.items()):
            poller.unregister(fd)
            sock.close()
            failed += 1
        pending.clear()
    return failed


def _closed(sockets: list[socket.socket]) -> list[int]:
    """Indexes of ``sockets`` the daemon has closed (end of file or reset)."""
    poller = select.poll()
    index = {}
    for n, sock in enumerate(sockets):
        poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
        index[sock.fileno()] = n
    gone = []
    for fd, _ in poller.poll(0):
        sock = sockets[index[fd]]
        try:
            if sock.recv(1024) == b"":
                gone.append(index[fd])
        except (ConnectionResetError, BlockingIOError, OSError):
            gone.append(index[fd])
    return gone


def hold(port: int, source: str, count: int, sustain: bool, pipe: Connection) -> None:
    """A child: open ``count`` idle connections from ``source``; answer "closed?" with how many the daemon
    closed so far; with ``sustain``, open a new one for each it closed; close them all on "stop"."""
    _raise_nofile()
    sockets, failed = _connect_all(port, source, count, time.monotonic() + 120)
    pipe.send(("opened", len(sockets), failed))
    closed_total = 0
    while True:
        if pipe.poll(0.05 if sustain else 1.0):
            command = pipe.recv()
            if command == "stop":
                break
            gone = _closed(sockets)
            pipe.send(("closed", closed_total + len(gone)))
            continue
        if sustain:
            gone = _closed(sockets)
            if gone:
                closed_total += len(gone)
                for n in sorted(gone, reverse=True):
                    sockets.pop(n).close()
                fresh, _ = _connect_all(port, source, len(gone), time.monotonic() + 5)
                sockets.extend(fresh)
    for sock in sockets:
        sock.close()
    pipe.send(("stopped",))


@dataclass
class Holders:
    processes: list[multiprocessing.Process]
    pipes: list[Connection]

    @classmethod
    def start(cls, port: int, count: int, *, sustain: bool) -> tuple[Holders, int, int]:
        context = multiprocessing.get_context("fork")
        holders = cls([], [])
        for n in range(0, count, PER_HOLDER):
            ours, theirs = context.Pipe()
            source = f"127.0.{1 + n // PER_HOLDER // 250}.{2 + (n // PER_HOLDER) % 250}"
            process = context.Process(target=hold, args=(port, source, min(PER_HOLDER, count - n), sustain, theirs),
                                      daemon=True)
            process.start()
            holders.processes.append(process)
            holders.pipes.append(ours)
        opened = failed = 0
        for pipe in holders.pipes:
            if not pipe.poll(180):
                holders.stop()
                raise SystemExit("a connection holder did not report within 180 s")
            _, ok, bad = pipe.recv()
            opened += ok
            failed += bad
        return holders, opened, failed

    def closed(self) -> int:
        for pipe in self.pipes:
            pipe.send("closed?")
        return sum(pipe.recv()[1] for pipe in self.pipes)

    def stop(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send("stop")
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


# --- the daemon and the probes ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_daemon(decl: Path, state: Path, log: Path, port: int, extra: tuple[str, ...]) -> subprocess.Popen[bytes]:
    # a fresh sandbox and a fresh store: nothing was sent before, so the Ogangi campaign may be sent without
    # a record of earlier sends (otherwise it fails, and the daemon retries it: passes the benchmark would
    # measure along with the connections)
    command = [PYTHON, "-m", "reconciler", "watch", str(decl), "--state", f"sqlite:///{state}", "--resync", "86400",
               "--listen", f"127.0.0.1:{port}", "--log-format", "json", "--risk-duplicate-sms", *extra]
    process = subprocess.Popen(command, cwd=PROJECT_DIR, env=reconcile_env(), stdout=subprocess.DEVNULL,
                               stderr=log.open("w"))

    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return process.poll() is not None

    if not wait_until(ready, timeout=300, interval=0.2) or process.poll() is not None:
        process.kill()
        raise SystemExit(f"the daemon did not become ready; log:\n{log.read_text()[-3000:]}")
    return process


def probe(port: int, timeout: float = 10.0) -> float | None:
    """Seconds from connect to the end of a /healthz reply; None if it failed or was not 200."""
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(PROBE)
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
    except OSError:
        return None
    elapsed = time.perf_counter() - started
    return elapsed if reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"ok\n") else None


def socket_count(pid: int) -> int:
    try:
        return sum(1 for fd in os.listdir(f"/proc/{pid}/fd")
                   if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"))
    except OSError:
        return -1


@dataclass
class Round:
    p50_ms: float
    p95_ms: float
    max_ms: float
    failed: int
    first_ms: float  # the probe right after the N connections were opened (it queues behind their accepts)
    opened: int
    open_failed: int
    held: int
    closed_by_daemon: int


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _settle(pid: int, *, quiet_s: float = 1.0, timeout: float = 120.0) -> None:
    """Wait until the daemon's socket count stopped changing for ``quiet_s`` (it has accepted what it will)."""
    deadline = time.monotonic() + timeout
    last, since = socket_count(pid), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
        time.sleep(0.1)
        now = socket_count(pid)
        if now != last:
            last, since = now, time.monotonic()


def one_round(port: int, pid: int, connections: int, probes: int, probe_seconds: float, *, sustain: bool,
              settle: bool) -> Round:
    holders, opened, open_failed = Holders.start(port, connections, sustain=sustain)
    try:
        first = probe(port)
        if settle:
            _settle(pid)
        latencies: list[float] = []
        failed = 0
        held: list[int] = []
        deadline = time.monotonic() + probe_seconds
        while len(latencies) + failed < probes and time.monotonic() < deadline:
            took = probe(port)
            if took is None:
                failed += 1
            else:
                latencies.append(took)
            if (len(latencies) + failed) % 10 == 1:
                held.append(socket_count(pid))
            time.sleep(0.05)
        closed = holders.closed()
    finally:
        holders.stop()
    if not latencies:
        return Round(float("nan"), float("nan"), float("nan"), failed, float("nan"), opened, open_failed,
                     max(held, default=0), 0)
    return Round(statistics.median(latencies) * 1000, percentile(latencies, 0.95) * 1000, max(latencies) * 1000,
                 failed, float("nan") if first is None else first * 1000, opened, open_failed,
                 int(statistics.median(held)) if held else -1, closed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=20_000, help="idle connections (at most 100,000)")
    parser.add_argument("--probes", type=int, default=60, help="/healthz probes per round")
    parser.add_argument("--probe-seconds", type=float, default=4.0,
                        help="longest a round probes (the default header timeout is 5 s)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS))
    parser.add_argument("--quick", action="store_true", help="2,000 connections, one round (smoke test)")
    args = parser.parse_args()
    connections = min(2_000 if args.quick else args.connections, 100_000)
    rounds = 1 if args.quick else args.rounds
    _raise_nofile()
    figures: dict[str, Figure] = {}
    extra: dict[str, object] = {"connections": connections, "rounds": rounds, "probes_per_round": args.probes,
                                "goals": {}}
    base = free_port_base()
    with tempfile.TemporaryDirectory(prefix="bench-starve-") as tmp, \
            fleet_sandbox(SMALL_FLEET, port_base=base, latency_ms=1.0):
        decl = write_fleet(SMALL_FLEET, Path(tmp) / "repo", port_base=base)
        for name in args.scenarios.split(","):
            port = free_port()
            daemon = start_daemon(decl, Path(tmp) / f"{name}.db", Path(tmp) / f"{name}.log", port, SCENARIOS[name])
            try:
                results = [one_round(port, daemon.pid, connections, args.probes, args.probe_seconds,
                                     sustain=name == "sustained", settle=name == "held") for _ in range(rounds)]
                if name != "sustained":
                    time.sleep(0.5)
            finally:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait()
            log_bytes = (Path(tmp) / f"{name}.log").stat().st_size
            if daemon.returncode != 0:
                print(f"{name}: the daemon exited {daemon.returncode}; its log ends:\n"
                      + (Path(tmp) / f"{name}.log").read_text(errors="replace")[-3000:])
            for figure in ("p50_ms", "p95_ms", "max_ms"):
                figures[f"{name}_healthz_{figure}"] = Figure.of([getattr(r, figure) for r in results])
            extra[name] = {"failed_probes": sum(r.failed for r in results),
                           "first_probe_ms": [round(r.first_ms, 1) for r in results],
                           "opened": [r.opened for r in results],
                           "open_failed": [r.open_failed for r in results],
                           "held_by_daemon": [r.held for r in results],
                           "closed_by_daemon": [r.closed_by_daemon for r in results],
                           "daemon_exit": daemon.returncode, "daemon_log_bytes": log_bytes}
            if name != "sustained":  # the goal is about idle connections; a reconnect flood is reported only
                extra["goals"][f"{name}_healthz_max_ms"] = GOAL_MAX_MS  # type: ignore[index]
    print_figures(figures, digits={name: 2 for name in figures}, extra=extra)


if __name__ == "__main__":
    main()
