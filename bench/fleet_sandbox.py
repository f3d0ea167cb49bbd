"""The sandbox that holds the standard fleet (``fleet.py``): the four simulators with the fleet's
fixtures (YateOTA ``fleet=...``, enough enrolled IoT gateways), each in a process of its own, on
``port_base + 1..4``; latency is set with ``POST /_sandbox/faults``.

Apart from the reconciler, so that the reconciler's CPU time and memory are its own; one process per
simulator, because four servers in one process share one GIL, and a busy IoT simulator would then
delay every Ogangi reply by up to a GIL switch interval (5 ms). Lifecycles are slowed so that nothing
moves on its own during a measurement (a participant failing mid-run would be real work for the next
pass).

    .venv/bin/python bench/fleet_sandbox.py NAME [--port-base N] [--iot-campaigns 20] ...  # one simulator
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from fleet import BENCH_DIR, PROJECT_DIR, PYTHON, FleetSpec, add_spec_arguments, spec_arguments, spec_from

from reconciler.sandbox.testing import SandboxControl, SandboxStats

if TYPE_CHECKING:
    from reconciler.sandbox.run import SandboxOptions

SIMULATORS = ("yateota", "iot-campaigns", "ogangi", "sms-gateway")  # ports port_base+1 .. +4


def free_port_base(start: int = 18700, step: int = 10) -> int:
    """The first ``start + k * step`` whose four simulator ports are free on loopback."""
    for base in range(start, 60000, step):
        if all(_port_free(base + offset) for offset in range(1, len(SIMULATORS) + 1)):
            return base
    raise RuntimeError("no free port range for the sandbox")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def sandbox_options(spec: FleetSpec, *, port_base: int) -> SandboxOptions:
    """The ``SandboxOptions`` that hold this fleet (lifecycles slowed to a day per step)."""
    from reconciler.sandbox.run import SandboxOptions

    return SandboxOptions(port_base=port_base, seed=1, gateway_count=max(spec.gateways, 1),
                          yateota={"fleet": spec.yate_fleet(), "step_seconds": 86_400.0},
                          iot={"step_seconds": 86_400.0})


def serve(spec: FleetSpec, name: str, *, port_base: int) -> None:
    """Run one simulator of the fleet's sandbox in this process until SIGTERM; print ``ready`` once it
    serves."""
    import asyncio
    import tempfile

    from reconciler.sandbox.clock import SimClock
    from reconciler.sandbox.faults import FaultInjector
    from reconciler.sandbox.harness import SandboxApp, SandboxServer
    from reconciler.sandbox.run import build_simulators
    from reconciler.sandbox.tls import generate_tls_files

    # this process's simulator alone: building all four would hold the fleet's gateways four times
    options = replace(sandbox_options(spec, port_base=port_base), only=(name,))
    clock = SimClock()
    app = SandboxApp(build_simulators(options, clock)[name], clock=clock, faults=FaultInjector(options.faults))
    with tempfile.TemporaryDirectory(prefix="fleet-sandbox-") as tmp:
        tls = generate_tls_files(Path(tmp)) if name == "sms-gateway" else None
        server = SandboxServer(app, port=port_base + 1 + SIMULATORS.index(name), tls=tls)

        async def run() -> None:
            task = asyncio.create_task(server.serve())
            while not server.server.started and not task.done():
                await asyncio.sleep(0.01)
            print("ready", flush=True)
            await task

        asyncio.run(run())


@dataclass
class FleetSandbox:
    """The running simulator processes and how to reach their control API."""

    port_base: int
    processes: dict[str, subprocess.Popen[str]]

    def url(self, name: str) -> str:
        scheme = "https" if name == "sms-gateway" else "http"
        return f"{scheme}://127.0.0.1:{self.port_base + 1 + SIMULATORS.index(name)}"

    def control(self, name: str) -> SandboxControl:
        """The simulator's ``/_sandbox/`` API (its certificate is in the simulator's process: not verified)."""
        return SandboxControl(self.url(name), verify=False, timeout=120)

    def set_latency(self, latency_ms: float) -> None:
        for name in self.processes:
            self.control(name).faults(latency_ms=latency_ms)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the simulator processes have used so far."""
        return sum(_cpu_seconds(process.pid) for process in self.processes.values())

    def stats(self) -> dict[str, SandboxStats]:
        return {name: self.control(name).stats() for name in self.processes}

    def reset(self) -> None:
        """Empty backends again (stats cleared, latency back to 0): call ``set_latency`` afterwards."""
        for name in self.processes:
            self.control(name).reset()


def _cpu_seconds(pid: int) -> float:
    after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def fleet_sandbox(spec: FleetSpec, *, port_base: int, latency_ms: float = 10.0,
                  simulators: tuple[str, ...] = SIMULATORS) -> Iterator[FleetSandbox]:
    """Start the fleet's sandbox (one process per simulator, or only ``simulators``), set its latency,
    stop it when the block ends."""
    processes: dict[str, subprocess.Popen[str]] = {}
    try:
        for name in simulators:
            command = [PYTHON, str(BENCH_DIR / "fleet_sandbox.py"), name, "--port-base", str(port_base),
                       *spec_arguments(spec)]
            processes[name] = subprocess.Popen(command, cwd=PROJECT_DIR, stdout=subprocess.PIPE, text=True)
        for name, process in processes.items():
            line = process.stdout.readline() if process.stdout else ""
            if line.strip() != "ready":
                raise RuntimeError(f"the {name} simulator did not start (exit {process.poll()})")
        sandbox = FleetSandbox(port_base, processes)
        sandbox.set_latency(latency_ms)
        yield sandbox
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=SIMULATORS, help="the simulator to run until SIGTERM")
    parser.add_argument("--port-base", type=int, default=18700)
    add_spec_arguments(parser)
    args = parser.parse_args()
    serve(spec_from(args), args.name, port_base=args.port_base)


if __name__ == "__main__":
    main()
