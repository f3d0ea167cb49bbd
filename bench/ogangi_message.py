"""Where one Ogangi message's time goes: Ogangi sets the ideal of the standard fleet (2,000 messages one after
the other, ``ideal.py``), so everything the client spends per message lands on the critical path.

    .venv/bin/python bench/ogangi_message.py [--messages 2000] [--quick]

Three parts, the first two against the fleet's simulators (one process each, ``fleet_sandbox.py``):

1. Phases, warm, in this process, µs of CPU per message over ``--messages`` messages (the simulator at
   0.01 ms latency, so the loop never sleeps):
   - ``send_us``: ``OgangiClient.send`` as the engine calls it (build, sign, send, read, parse);
   - ``build_sign_us``: building and signing the request alone (``build_request`` of the signed path);
   - ``parse_us``: parsing one send reply (the XML ``parse_message``);
   - ``ledger_cpu_us`` / ``ledger_wall_us``: the ledger's ``begin_dispatch`` of one message with the previous
     one's fate (the durable commit before a message leaves), on this disk; ``ledger_tmpfs_*`` the same on
     ``/dev/shm`` (no fsync cost), when it exists.
2. The whole send from a ``reconcile`` process, Ogangi alone (``converge.py``'s fleet with every other part
   at 0), at 0.1 ms and at 10 ms of latency: wall time and the process's CPU per message
   (``cpu_per_message_fast_us``, ``cpu_per_message_10ms_us``). Their difference is what sleeping 10 ms
   between messages costs the same code (the process wakes to cold caches on a small VM).
3. The machine alone: one fixed pure-Python workload with none of our code, back to back and after a 10 ms
   sleep each time (``workload_back_to_back_us``, ``workload_after_10ms_sleep_us``).

The figures are the last lines, ``name: value``, then all of them as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx
from converge import one_run
from fleet import FleetSpec, write_fleet
from fleet_sandbox import fleet_sandbox, free_port_base

from reconciler.backends.ogangi.adapter import OgangiClient, connect_client
from reconciler.backends.ogangi.signing import OgangiSigner
from reconciler.backends.ogangi.wire import parse_message
from reconciler.backends.protocol import ConnectContext
from reconciler.engine.store_access import open_writer
from reconciler.model import BackendLimits, BackendSpec
from reconciler.secrets import Redactor, SecretRef, SecretValue
from reconciler.state.ledger import NewSend, SendState

TEXT = "Maintenance tonight between 01:00 and 03:00; your service may be interrupted briefly."
TMPFS = Path("/dev/shm")


def client_for(url: str, root: Path) -> OgangiClient:
    spec = BackendSpec(name="og", type="ogangi", url=url, limits=BackendLimits(), options={},
                       auth={"instanceId": "7", "publicKey": "sandbox-public", "privateKey": SecretRef(env="OG_KEY")})
    return connect_client(spec, ConnectContext(root=root, environ={"OG_KEY": "sandbox-private"}, redactor=Redactor()))


def per_message_us(started: float, messages: int) -> float:
    return round((time.process_time() - started) / messages * 1e6, 1)


async def client_phases(url: str, root: Path, messages: int) -> dict[str, float]:
    client = client_for(url, root)
    try:
        await client.send("4917000000000", TEXT, sender="OPS")  # the connection, once
        started = time.process_time()
        for n in range(messages):
            await client.send(f"4917{n:09d}", TEXT, sender="OPS")
        send = per_message_us(started, messages)
        signer = OgangiSigner(public_key="sandbox-public", private_key=SecretValue("sandbox-private"))
        path = "rest/api/" + "/".join(["tools/sendSMS", "7", "null", "OPS", "NDkxNzAwMDAwMDAwMA", "TWFpbnRlbmFuY2U"])
        started = time.process_time()
        for _ in range(messages):
            client.http.client.build_request("GET", url + "/" + signer.sign(path))
        build = per_message_us(started, messages)
        reply = httpx.get(url + "/" + signer.sign(path), headers={"Accept": "application/xml"})
        started = time.process_time()
        for _ in range(messages):
            parse_message(reply)
        parse = per_message_us(started, messages)
    finally:
        await client.aclose()
    return {"send_us": send, "build_sign_us": build, "parse_us": parse}


def ledger_phase(folder: Path, messages: int) -> tuple[float, float]:
    """CPU and wall µs of one ``begin_dispatch`` of one message (with the previous one's fate)."""
    store = open_writer(f"sqlite:///{folder / 'ledger.db'}", base_dir=folder, command="bench")
    try:
        previous: list[tuple[int, SendState, str, str]] = []
        started, wall = time.process_time(), time.perf_counter()
        for n in range(messages):
            rows, _ = store.ledger.begin_dispatch("og", "c", [NewSend(f"4917{n:09d}", "h")], settle=previous)
            previous = [(rows[0].key, SendState.ACCEPTED, f"m{n}", "")]
        return per_message_us(started, messages), round((time.perf_counter() - wall) / messages * 1e6, 1)
    finally:
        store.close()


def whole_send(messages: int) -> dict[str, float]:
    """A reconcile process sending ``messages`` Ogangi messages, at 0.1 ms and at 10 ms of latency."""
    spec = replace(FleetSpec(), iot_campaigns=0, yate_campaigns=0, sms_recipients=0, ogangi_recipients=messages)
    base = free_port_base()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ogangi-") as tmp, \
            fleet_sandbox(spec, port_base=base) as sandbox:
        decl = write_fleet(spec, Path(tmp) / "repo", port_base=base)
        for name, latency in (("fast", 0.1), ("10ms", 10.0)):
            run = one_run(sandbox, spec, decl, Path(tmp), len(figures), latency)
            startup = run["noop_cpu_s"]  # a run with nothing to do: start-up, load, plan
            figures[f"wall_{name}_s"] = round(run["converge_s"], 2)
            figures[f"cpu_per_message_{name}_us"] = round((run["cpu_s"] - startup) / messages * 1e6, 1)
        figures["ideal_10ms_s"] = messages * 0.010
    return figures


WORKLOAD = [{"id": n, "name": f"gw-{n:05d}", "state": "DOWNLOADING"} for n in range(200)]


def machine_after_sleep(rounds: int, repeats: int = 3) -> dict[str, float]:
    """The machine's share of the 10 ms penalty: the CPU µs of one fixed pure-Python workload (JSON out and
    back in of 200 small objects, none of our code), back to back and with a 10 ms sleep before each run,
    alternating ``repeats`` times (medians). Where the second is well above the first, a process that sleeps
    between messages pays for it whatever its code does."""
    def per_run(gap: float) -> float:
        spent = 0.0
        for _ in range(rounds):
            if gap:
                time.sleep(gap)
            started = time.process_time()
            json.loads(json.dumps(WORKLOAD))
            spent += time.process_time() - started
        return spent / rounds * 1e6

    per_run(0)
    pairs = [(per_run(0), per_run(0.010)) for _ in range(repeats)]
    return {"workload_back_to_back_us": round(statistics.median(p[0] for p in pairs), 1),
            "workload_after_10ms_sleep_us": round(statistics.median(p[1] for p in pairs), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="200 messages")
    options = parser.parse_args()
    messages = 200 if options.quick else options.messages
    spec = replace(FleetSpec(), iot_campaigns=0, yate_campaigns=0, sms_recipients=0, ogangi_recipients=1)
    base = free_port_base()
    results: dict[str, object] = {"messages": messages}
    with tempfile.TemporaryDirectory(prefix="bench-ogangi-") as tmp, \
            fleet_sandbox(spec, port_base=base, latency_ms=0.01, simulators=("ogangi",)) as sandbox:
        results.update(asyncio.run(client_phases(sandbox.url("ogangi"), Path(tmp), messages)))
        results["ledger_cpu_us"], results["ledger_wall_us"] = ledger_phase(Path(tmp), messages)
    if TMPFS.is_dir():
        with tempfile.TemporaryDirectory(prefix="bench-ogangi-", dir=TMPFS) as tmp:
            results["ledger_tmpfs_cpu_us"], results["ledger_tmpfs_wall_us"] = ledger_phase(Path(tmp), messages)
    results.update(whole_send(messages))
    results.update(machine_after_sleep(100 if options.quick else 1000))
    for name, value in results.items():
        print(f"{name}: {value}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
