"""Client CPU per request of the keep-alive transport: the reply framing read by hand (the module as it
was at git revision ``BASELINE``, loaded with ``git show``, never copied into the product) against the
framing read by llhttp (``httptools``), side by side in one run.

    .venv/bin/python bench/transport_cpu.py [--requests 300] [--rounds 7] [--quick]

A loopback HTTP/1.1 server in a separate process answers every request at once with a canned reply
(a 1 KiB JSON body with a Content-Length, a 16 KiB body in four chunks, a 256 KiB body streamed); the
benchmark's own process sends ``--requests`` requests through ``httpx.AsyncClient`` on each transport,
one at a time and sixteen at a time, and reads ``time.process_time`` around them: the client's CPU
only. The variants alternate, in turn first and second; each figure is the median of the rounds, and
``ratio_*`` is llhttp's over the hand parser's (below 1: llhttp costs less). A second part times the
parse of one reply head alone (hand, llhttp, and h11 for reference). About a minute on an idle
two-core machine.

The figures are the last lines, ``name: value``, then all of them as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import h11
import httpx

from canned_server import canned_server
from reconciler.backends import http_transport
from reconciler.backends.http_framing import parse_head

PROJECT_DIR = Path(__file__).resolve().parent.parent
BASELINE = "f03372f"  # the last revision whose transport parsed reply framing by hand
HEAD = (b"HTTP/1.1 200 OK\r\ndate: Mon, 07 Dec 2026 10:00:00 GMT\r\nserver: uvicorn\r\n"
        b"content-type: application/json\r\nx-request-id: 5b0e8c2e-1f4d-4a35-9d0b-8a1f2c3d4e5f\r\n")
SMALL = b'{"items": [' + b",".join(b'{"id": "gw-%04d", "state": "DOWNLOADING"}' % i for i in range(24)) + b"]}"
CHUNK = b"x" * 4096
REPLIES = {
    "small": HEAD + b"content-length: %d\r\n\r\n" % len(SMALL) + SMALL,
    "chunked": HEAD + b"transfer-encoding: chunked\r\n\r\n" + (b"1000\r\n" + CHUNK + b"\r\n") * 4 + b"0\r\n\r\n",
    "streamed": HEAD + b"content-length: %d\r\n\r\n" % (256 * 1024) + b"y" * (256 * 1024),
}


def reply_for(head: bytes) -> bytes:
    """The canned reply for a request: ``REPLIES[path]``."""
    return REPLIES[head.split(b" ", 2)[1].strip(b"/").decode()]


def baseline_module() -> types.ModuleType | None:
    """The transport as it was at ``BASELINE`` (``None`` when git or the revision is not there)."""
    try:
        source = subprocess.run(["git", "show", f"{BASELINE}:reconciler/backends/http_transport.py"],
                                cwd=PROJECT_DIR, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    spec = importlib.util.spec_from_loader("baseline_http_transport", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    exec(compile(source, f"{BASELINE}:http_transport.py", "exec"), module.__dict__)  # noqa: S102 - our own code
    return module


async def cpu_per_request(url: str, transport: httpx.AsyncBaseTransport, path: str, requests: int,
                          concurrency: int) -> float:
    """Microseconds of this process's CPU per request (after a warm-up), ``concurrency`` in flight."""
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=10) as client:
        async def worker(count: int) -> None:
            for _ in range(count):
                reply = await client.get(path)
                if reply.status_code != 200 or not reply.content:
                    raise SystemExit(f"{path}: HTTP {reply.status_code}")

        await asyncio.gather(*(worker(20) for _ in range(concurrency)))
        started = time.process_time()
        await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
        return (time.process_time() - started) * 1e6 / (requests // concurrency * concurrency)


async def transport_figures(url: str, variants: dict[str, types.ModuleType], requests: int,
                            rounds: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {}
    for round_ in range(rounds):
        order = list(variants.items())
        if round_ % 2:
            order.reverse()  # neither variant always runs first (warmer caches, the other's garbage)
        for path in REPLIES:
            for concurrency in (1, 16):
                for name, module in order:
                    transport = module.KeepAliveTransport(max_connections=concurrency)
                    figure = await cpu_per_request(url, transport, f"/{path}", requests, concurrency)
                    samples.setdefault(f"{name}_{path}_c{concurrency}_us", []).append(figure)
    figures = {key: round(statistics.median(values), 1) for key, values in samples.items()}
    if "hand" in variants:  # llhttp's CPU over the hand parser's, per reply and concurrency (< 1: cheaper)
        for key in [k for k in figures if k.startswith("hand_")]:
            figures[f"ratio_{key.removeprefix('hand_').removesuffix('_us')}"] = round(
                figures["llhttp_" + key.removeprefix("hand_")] / figures[key], 2)
    return figures


def head_parse_figures(baseline: types.ModuleType | None, repeat: int) -> dict[str, float]:
    """Microseconds to parse one reply head (the ``small`` reply's) alone."""
    raw = REPLIES["small"].split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    request = httpx.Request("GET", "http://127.0.0.1/small")

    def llhttp() -> object:
        return parse_head(raw, "GET", max_chunks=4096, max_header_lines=100, max_header_bytes=65536)

    def h11_parse() -> object:
        connection = h11.Connection(h11.CLIENT)
        connection.send(h11.Request(method="GET", target="/small", headers=[("Host", "127.0.0.1")]))
        connection.send(h11.EndOfMessage())
        connection.receive_data(raw)
        return connection.next_event()

    parsers: dict[str, Callable[[], object]] = {"llhttp": llhttp, "h11": h11_parse}
    if baseline is not None:
        parsers["hand"] = lambda: baseline._parse_head(raw, request)
    figures = {}
    for name, parse in parsers.items():
        best = min(_timed(parse, repeat) for _ in range(5))
        figures[f"head_parse_{name}_us"] = round(best * 1e6, 2)
    return figures


def _timed(parse: Callable[[], object], repeat: int) -> float:
    started = time.process_time()
    for _ in range(repeat):
        parse()
    return (time.process_time() - started) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="300 requests, one round")
    options = parser.parse_args()
    requests, rounds = (300, 1) if options.quick else (options.requests, options.rounds)
    baseline = baseline_module()
    variants = {"llhttp": http_transport}
    if baseline is None:
        print(f"baseline: git revision {BASELINE} not found; measuring llhttp alone", file=sys.stderr)
    else:
        variants = {"hand": baseline, **variants}
    with canned_server(reply_for) as url:
        figures: dict[str, object] = dict(asyncio.run(transport_figures(url, variants, requests, rounds)))
    figures.update(head_parse_figures(baseline, 2000 if options.quick else 20000))
    figures.update(requests=requests, rounds=rounds, baseline=BASELINE)
    for name, value in figures.items():
        print(f"{name}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
