"""Requests per second one simulator serves on this machine, with and without latency, so other
benchmarks know the sandbox is not their bottleneck.

    .venv/bin/python bench/sandbox_capacity.py [--seconds 3] [--runs 3] [--concurrency 32] [--quick]

Drives the YateOTA simulator (``query_campaigns {campaign_id}``) and the IoT simulator
(``GET /api/campaigns``) over loopback from a separate process with a raw keep-alive HTTP/1.1 client.
Prints one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import time

import httpx

from reconciler.sandbox.run import SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls


async def drive(url: str, method: str, path: str, body: dict | None, headers: dict, seconds: float,
                concurrency: int) -> float:
    """Requests per second over ``concurrency`` keep-alive connections, each sending its next request as
    soon as the last reply is read, like ``wrk``. A raw HTTP/1.1 client (a request built once, replies
    framed by Content-Length, the simulators' only framing) costs ~30 us per request: an httpx client
    was the bottleneck at ~400 requests/s and measured itself rather than the simulator."""
    target = httpx.URL(url)
    content = json.dumps(body).encode() if body is not None else b""
    head = [f"{method} {path} HTTP/1.1", f"Host: {target.host}:{target.port}", f"Content-Length: {len(content)}",
            *(f"{name}: {value}" for name, value in headers.items())]
    if body is not None:
        head.append("Content-Type: application/json")
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + content
    done = 0
    deadline = time.monotonic() + seconds

    async def connection() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(target.host, target.port)
        try:
            while time.monotonic() < deadline:
                writer.write(request)
                reply = await reader.readuntil(b"\r\n\r\n")
                if not reply.startswith(b"HTTP/1.1 2"):
                    status_line = reply.split(b"\r\n", 1)[0].decode()
                    raise RuntimeError(f"{method} {path}: {status_line}")
                length = next(int(line.split(b":", 1)[1]) for line in reply.lower().split(b"\r\n")
                              if line.startswith(b"content-length:"))
                await reader.readexactly(length)
                done += 1
        finally:
            writer.close()

    started = time.monotonic()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return done / (time.monotonic() - started)


def client_process(args: tuple) -> float:  # runs in a separate process so client CPU does not compete
    return asyncio.run(drive(*args))


def measure(args: tuple, runs: int) -> dict[str, float]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        rates = [pool.apply(client_process, (args,)) for _ in range(runs)]
    return {"median": round(statistics.median(rates), 1), "min": round(min(rates), 1), "max": round(max(rates), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one short run per figure (smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.runs = 0.5, 1
    figures: dict[str, dict[str, float]] = {}
    with running_sandbox(SandboxOptions(port_base=0, gateway_count=100, seed=1)) as sandbox:
        yate = (sandbox.url("yateota"), "POST", "/api.php",
                {"request": "query_campaigns", "node": "ota", "params": {"campaign_id": 147}},
                {"X-Authentication": "sandbox-secret"})
        token = httpx.post(f"{sandbox.url('iot-campaigns')}/api/tokens", auth=("admin", "admin")).json()["accessToken"]
        iot = (sandbox.url("iot-campaigns"), "GET", "/api/campaigns", None, {"Authorization": f"Bearer {token}"})
        for latency in (0, 10):
            for name in ("yateota", "iot-campaigns"):
                SandboxControls.of(sandbox)[name].faults(latency_ms=latency)
            figures[f"yateota_rps_latency_{latency}ms"] = measure((*yate, args.seconds, args.concurrency), args.runs)
            figures[f"iot_campaigns_rps_latency_{latency}ms"] = measure((*iot, args.seconds, args.concurrency),
                                                                        args.runs)
    for name, figure in figures.items():
        print(f"{name}: {figure['median']} (min {figure['min']}, max {figure['max']})")
    print(json.dumps({"concurrency": args.concurrency, **{k: v["median"] for k, v in figures.items()}}))


if __name__ == "__main__":
    main()
