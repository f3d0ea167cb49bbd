"""campaign-reconciler side by side with what an operator would otherwise write: an Ansible playbook.

Both converge the same reduced fleet on the same sandbox (IoT programs, campaigns, gateways with
overrides and windows, start; YateOTA retries of failed participants; SMS-gateway sends), alternately,
``--rounds`` times each (a fresh sandbox and state every run). Per tool it prints the medians (with min
and max) of:

- ``wall_s``: the converge from empty backends, process start to exit;
- ``requests``: requests the converge issued (every simulator's ``/_sandbox/stats``);
- ``client_cpu_s``: CPU (user + system) of the tool's process and every child it reaped (Ansible's
  forks and module processes included);
- ``second_run_writes``: write requests of a second run with nothing to do (goal 0);
- ``duplicates``: SMS messages the gateway received twice for one recipient after the tool was
  SIGKILLed as its first message arrived and then run again (goal 0); ``lost`` counts recipients
  that never got one.

The playbook is ``fleet_playbook.yml``; ansible-core is pinned in ``requirements.txt`` and installed
into ``.venv-peers/`` (next to the project's ``.venv``) on first use.

    .venv/bin/python bench/peers/run_peers.py [--rounds 3] [--latency-ms 10] [--forks 16]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

PEERS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(PEERS_DIR.parent))

from converge import snapshot, write_requests  # noqa: E402
from fleet import (  # noqa: E402
    FLEET_ENV, PROJECT_DIR, PYTHON, WINDOWS, FleetSpec, gateway_ids, reconcile_env, wait_until, write_fleet,
)
from fleet_sandbox import FleetSandbox, fleet_sandbox, free_port_base  # noqa: E402
from measure import Figure, run_reconciler, state_url  # noqa: E402

#: the fleet both tools converge: every kind of work of the standard fleet, at a size a playbook finishes
REDUCED = FleetSpec(iot_campaigns=4, gateways_per_campaign=25, yate_campaigns=2, participants=200,
                    sms_recipients=1024, sms_ports=8, ogangi_recipients=1)
PEER_VENV = PROJECT_DIR / ".venv-peers"
SMS_TEXT = "Maintenance tonight in #param#"
GOALS = {"speedup": 10.0, "second_run_writes": 0, "duplicates": 0}


def ensure_ansible() -> Path:
    """``ansible-playbook`` from ``requirements.txt`` in ``.venv-peers/`` (created with uv when missing)."""
    playbook = PEER_VENV / "bin" / "ansible-playbook"
    if not playbook.exists():
        uv = ["uv"] if _has("uv") else [PYTHON, "-m", "uv"]
        subprocess.run([*uv, "venv", "--quiet", str(PEER_VENV)], check=True)
        subprocess.run([*uv, "pip", "install", "--quiet", "--python", str(PEER_VENV / "bin" / "python"),
                        "-r", str(PEERS_DIR / "requirements.txt")], check=True)
    return playbook


def _has(command: str) -> bool:
    return any((Path(folder) / command).exists() for folder in os.environ.get("PATH", "").split(os.pathsep))


# --- the two repositories of the same fleet ------------------------------------------------------


def reconciler_repo(spec: FleetSpec, out: Path, port_base: int) -> Path:
    """The fleet's ``campaigns.d`` without the Ogangi campaign (the playbook does not send through Ogangi)."""
    decl = write_fleet(spec, out, port_base=port_base)
    sms = (decl / "sms.yaml").read_text(encoding="utf-8").split("---\n")
    (decl / "sms.yaml").write_text("---\n".join(doc for doc in sms if "backend: og" not in doc), encoding="utf-8")
    return decl


def inventory(spec: FleetSpec, repo: Path, port_base: int) -> dict[str, object]:
    """The playbook's inventory: the same fleet, one host per IoT campaign, YateOTA campaign, SMS batch."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    overrides = spec.overrides_per_campaign
    iot_hosts = {
        f"iot-{n:03d}": {**local, "campaign": f"fw-{n:03d}", "description": f"Fleet rollout {n}",
                         "packages": ["pkg-0.bin", "pkg-1.bin"], "override_packages": ["pkg-2.bin"],
                         "gateways": gateway_ids(spec, n), "overrides": gateway_ids(spec, n)[len(gateway_ids(spec, n))
                                                                                           - overrides:]}
        for n in range(spec.iot_campaigns)}
    yate_hosts = {f"yate-{cid}": {**local, "campaign_id": cid, "max_attempts": 3} for cid, _, _ in spec.yate_fleet()}
    with (repo / "recipients" / "gateway.csv").open(encoding="utf-8") as file:
        rows = [{"number": r["number"], "user_id": i + 1, "text_param": [r["area"]]}
                for i, r in enumerate(csv.DictReader(file))]
    sms_hosts = {f"sms-{i // 128:03d}": {**local, "recipients": rows[i:i + 128]} for i in range(0, len(rows), 128)}
    packages = [{"name": f"pkg-{n}.bin", "file": str(repo / "packages" / f"pkg-{n}.bin"),
                 "description": f"Fleet package {n}"} for n in range(3)]
    return {"all": {
        "vars": {
            "iot_url": f"http://127.0.0.1:{port_base + 2}", "yate_url": f"http://127.0.0.1:{port_base + 1}",
            "gw_url": f"https://127.0.0.1:{port_base + 4}", "iot_password": FLEET_ENV["IOT_PASSWORD"],
            "yate_secret": FLEET_ENV["YATE_SECRET"], "gw_password": FLEET_ENV["GW_PASSWORD"],
            "packages": packages, "sms_text": SMS_TEXT, "ports": list(range(spec.sms_ports)),
            "download_window": [_ms(w) for w in WINDOWS["download"]],
            "activation_window": [_ms(w) for w in WINDOWS["activation"]]},
        "hosts": {"localhost": local},
        "children": {"iot": {"hosts": iot_hosts}, "yate": {"hosts": yate_hosts}, "sms": {"hosts": sms_hosts}}}}


def _ms(instant: str) -> str:
    return str(int(datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp() * 1000))


# --- one tool's runs -----------------------------------------------------------------------------


class Tool:
    """How to run one converge of the fleet with one tool, as a process (killable)."""

    def __init__(self, name: str, command: Callable[[int], list[str]], env: Mapping[str, str]) -> None:
        self.name, self.command, self.env = name, command, dict(env)

    def run(self, run: int) -> tuple[float, float, int]:
        """Wall seconds, CPU seconds (own + reaped children), exit code of one complete run."""
        with tempfile.TemporaryFile("w+") as out:
            started = time.perf_counter()
            process = subprocess.Popen(self.command(run), cwd=PROJECT_DIR, env=self.env, stdout=out,
                                       stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
            code = os.waitstatus_to_exitcode(status)
            process.returncode = code
            if code != 0:
                out.seek(0)
                raise SystemExit(f"{self.name} exited {code}:\n{out.read()[-3000:]}")
            return wall, usage.ru_utime + usage.ru_stime, code

    def start(self, run: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command(run), cwd=PROJECT_DIR, env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)


def measure(tool: Tool, sandbox: FleetSandbox, run: int, latency_ms: float) -> dict[str, float]:
    sandbox.reset()
    sandbox.set_latency(latency_ms)
    wall, cpu, _ = tool.run(run)
    after_first, yate_first = snapshot(sandbox)
    tool.run(run)
    after_second, yate_second = snapshot(sandbox)
    writes = sum(write_requests(n, after_second[n] - after_first[n], yate_second - yate_first) for n in after_second)
    return {"wall_s": wall, "requests": sum(sum(c.values()) for c in after_first.values()),
            "client_cpu_s": cpu, "second_run_writes": writes}


def kill_and_rerun(tool: Tool, sandbox: FleetSandbox, run: int, latency_ms: float, recipients: int) -> dict[str, int]:
    """SIGKILL the tool (its whole process group) as the gateway takes its first message, run it again,
    then count recipients with more than one message and recipients with none."""
    sandbox.reset()
    sandbox.set_latency(latency_ms)
    process = tool.start(run)
    arrived = wait_until(lambda: bool(_gateway_numbers(sandbox)) or process.poll() is not None, timeout=600,
                         interval=0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    if not arrived:
        raise SystemExit(f"{tool.name}: no SMS reached the gateway within 600 s")
    tool.run(run)
    sent = Counter(_gateway_numbers(sandbox))
    return {"duplicates": sum(n - 1 for n in sent.values() if n > 1), "lost": recipients - len(sent)}


def _gateway_numbers(sandbox: FleetSandbox) -> list[str]:
    state = sandbox.control("sms-gateway").state()
    return [message["number"] for message in state["messages"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each tool, alternating (default 3)")
    parser.add_argument("--latency-ms", type=float, default=10.0, help="sandbox response time per request")
    parser.add_argument("--forks", type=int, default=16, help="Ansible forks (default 16, the reconciler's "
                                                              "concurrency per backend)")
    args = parser.parse_args()
    playbook = ensure_ansible()
    spec, base = REDUCED, free_port_base()
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp, \
            fleet_sandbox(spec, port_base=base, latency_ms=args.latency_ms) as sandbox:
        folder = Path(tmp)
        decl = reconciler_repo(spec, folder / "repo", base)
        (folder / "inventory.yml").write_text(json.dumps(inventory(spec, folder / "repo", base)), encoding="utf-8")
        tools = [
            Tool("reconciler", lambda run: [PYTHON, "-m", "reconciler", str(decl), "--state",
                                            state_url(folder, f"state-{run}.db")], reconcile_env()),
            Tool("ansible", lambda run: [str(playbook), "-i", str(folder / "inventory.yml"), "--forks",
                                         str(args.forks), str(PEERS_DIR / "fleet_playbook.yml")],
                 {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_LOCALHOST_WARNING": "False",
                  "ANSIBLE_PYTHON_INTERPRETER": str(PEER_VENV / "bin" / "python"), "ANSIBLE_NOCOLOR": "1",
                  "ANSIBLE_CONFIG": str(folder / "none.cfg")}),
        ]
        results: dict[str, list[dict[str, float]]] = {tool.name: [] for tool in tools}
        for round_ in range(args.rounds):
            for tool in tools:
                run = len(results[tool.name]) + 100 * round_
                results[tool.name].append(measure(tool, sandbox, run, args.latency_ms))
                print(f"round {round_ + 1} {tool.name}: {results[tool.name][-1]}", flush=True)
        kills = {tool.name: kill_and_rerun(tool, sandbox, 999, args.latency_ms, spec.sms_recipients)
                 for tool in tools}
    report(results, kills, args)


def report(results: Mapping[str, list[dict[str, float]]], kills: Mapping[str, Mapping[str, int]],
           args: argparse.Namespace) -> None:
    figures: dict[str, object] = {}
    for name, runs in results.items():
        for key in runs[0]:
            figure = Figure.of([run[key] for run in runs])
            print(f"{name} {key}: {figure.median:.3f} (min {figure.low:.3f}, max {figure.high:.3f})")
            figures[f"{name}_{key}"] = round(figure.median, 3)
            figures[f"{name}_{key}_spread"] = [round(figure.low, 3), round(figure.high, 3)]
        for key, value in kills[name].items():
            print(f"{name} {key} after SIGKILL and rerun: {value}")
            figures[f"{name}_{key}"] = value
    speedup = Figure.of([a["wall_s"] / r["wall_s"] for a, r in zip(results["ansible"], results["reconciler"])])
    print(f"speedup (ansible wall / reconciler wall): {speedup.median:.1f} (min {speedup.low:.1f}, "
          f"max {speedup.high:.1f}; goal >= {GOALS['speedup']})")
    print(json.dumps({**figures, "speedup": round(speedup.median, 2), "rounds": args.rounds,
                      "latency_ms": args.latency_ms, "forks": args.forks, "fleet": str(REDUCED), "goals": GOALS}))


if __name__ == "__main__":
    main()
