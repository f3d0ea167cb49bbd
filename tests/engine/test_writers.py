"""Exactly once across processes and stores (``../shared/design/writers.md``), with real processes, the
real sandbox and both stores: two applies at once, an apply while the daemon sends, a fresh store after a
finished send, a writer paused past its lease, and a standby daemon taking over from a killed one. Every
recipient is counted at the gateway through its own API."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.state.lease import read_holder
from reconciler.state.store import open_store
from tests.daemon.daemon_process import DaemonProcess, eventually
from tests.engine import crash
from tests.reliability.figures import record


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    options = SandboxOptions(port_base=0, gateway_count=10, seed=3, sms_gateway={"send_rate_per_port": 1000.0},
                             ogangi={})
    with running_sandbox(options) as running:
        yield running


def on_gateway(sandbox: RunningSandbox) -> dict[str, int]:
    return dict(crash.delivered_numbers(sandbox, "sms-gateway", "number"))


def apply(repo: Path, state: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*crash.reconcile_command(repo, state), *extra], cwd=repo, env=crash.environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def lease_taken(state: str, base: Path) -> bool:
    """Some writer holds the store's lease right now."""
    store = open_store(state, base_dir=base, writer=False)
    if store is None:
        return False
    try:
        holder = read_holder(store.db)
        return holder is not None and not holder.released
    finally:
        store.close()


def finish(process: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out + err


def exactly_once(sandbox: RunningSandbox, recipients: int) -> None:
    counts = on_gateway(sandbox)
    assert len(counts) == recipients and max(counts.values()) == 1, \
        f"{len(counts)} numbers, {sum(counts.values())} messages, at most {max(counts.values(), default=0)} each"


def test_two_applies_started_together_send_every_recipient_once(sandbox: RunningSandbox, tmp_path: Path,
                                                                 store_url: str) -> None:
    """The second waits for the lease (--lock-timeout), then finds everything sent."""
    repo = crash.sms_repo(tmp_path / "ops", sandbox, backend="gw", recipients=200, per_second=200)
    first, second = (apply(repo, store_url, "--lock-timeout", "120") for _ in range(2))
    results = [finish(first), finish(second)]
    assert [code for code, _ in results] == [0, 0], results
    exactly_once(sandbox, 200)


def test_a_second_writer_is_refused_at_once_naming_the_holder(sandbox: RunningSandbox, tmp_path: Path,
                                                               store_url: str) -> None:
    # 10 s of sending: longer than a second process takes to start even on a loaded machine
    repo = crash.sms_repo(tmp_path / "ops", sandbox, backend="gw", recipients=400, per_second=40)
    first = apply(repo, store_url)
    eventually(lambda: lease_taken(store_url, tmp_path), timeout=30)
    code, output = finish(apply(repo, store_url), timeout=60)
    assert first.poll() is None, "the first apply ended before the second one started"
    assert code == 1 and "locked by another writer" in output and "`reconcile apply`" in output, output
    assert "Traceback" not in output
    assert finish(first)[0] == 0
    exactly_once(sandbox, 400)


def test_an_apply_while_the_daemon_sends_is_refused(sandbox: RunningSandbox, tmp_path: Path, store_url: str,
                                                    daemons: list[DaemonProcess]) -> None:
    repo = crash.sms_repo(tmp_path / "ops", sandbox, backend="gw", recipients=400, per_second=40)
    daemon = DaemonProcess(repo, str(repo), "--state", store_url, "--resync", "300", env=crash.environment())
    daemons.append(daemon)
    eventually(lambda: lease_taken(store_url, tmp_path), timeout=30)
    code, output = finish(apply(repo, store_url), timeout=60)
    assert len(on_gateway(sandbox)) < 400, "the daemon finished before the apply started"
    assert code == 1 and "`reconcile watch`" in output, output
    eventually(lambda: len(on_gateway(sandbox)) == 400, timeout=60)
    time.sleep(0.5)
    exactly_once(sandbox, 400)


def test_a_fresh_store_asks_the_gateway_and_sends_nothing_again(sandbox: RunningSandbox, tmp_path: Path,
                                                                store_url: str) -> None:
    """A new checkout (a CI runner, another laptop) with a store that never saw the campaign: user_ids are
    derived from the campaign and the recipient, so the gateway is asked first and nobody gets it twice."""
    repo = crash.sms_repo(tmp_path / "ops", sandbox, backend="gw", recipients=300)
    assert finish(apply(repo, f"sqlite:///{tmp_path / 'first.db'}"))[0] == 0
    exactly_once(sandbox, 300)
    code, output = finish(apply(repo, store_url))
    assert code == 0, output
    exactly_once(sandbox, 300)
    dry = subprocess.run([*crash.reconcile_command(repo, store_url)[:-1], "--dry-run", "--detailed-exitcode"],
                         cwd=repo, env=crash.environment(), capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0 and "to-send 0" in dry.stdout, dry.stdout + dry.stderr


def test_a_fresh_store_refuses_to_resend_what_ogangi_cannot_be_asked_about(sandbox: RunningSandbox,
                                                                         tmp_path: Path, store_url: str) -> None:
    repo = crash.sms_repo(tmp_path / "ops", sandbox, backend="og", recipients=20)
    assert finish(apply(repo, f"sqlite:///{tmp_path / 'first.db'}"))[0] == 0
    plain = [c for c in crash.reconcile_command(repo, store_url) if c != "--risk-duplicate-sms"]
    dry = subprocess.run([*plain, "--dry-run"], cwd=repo, env=crash.environment(), capture_output=True,
                         text=True, timeout=120)
    assert "no record of earlier sends" in dry.stdout + dry.stderr
    refused = subprocess.run(plain, cwd=repo, env=crash.environment(), capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "--risk-duplicate-sms" in refused.stdout + refused.stderr
    assert len(crash.delivered_numbers(sandbox, "ogangi", "to")) == 20
    assert sum(crash.delivered_numbers(sandbox, "ogangi", "to").values()) == 20


def test_a_writer_paused_past_its_lease_sends_and_records_nothing_when_it_wakes(
    sandbox: RunningSandbox, tmp_path: Path, long_run_store_url: str, daemons: list[DaemonProcess]
) -> None:
    """SIGSTOP the sending daemon until its lease expires; another writer takes over and finishes; SIGCONT:
    the first one stops with a clear message, and nobody got two messages."""
    repo = crash.sms_repo(tmp_path / "ops", sandbox, backend="gw", recipients=200, per_second=50,
                          timeout_seconds=0.5)  # the longest request: 2 x 0.5 + 5 s, under the lease's 7 s
    paused = DaemonProcess(repo, str(repo), "--state", long_run_store_url, "--resync", "300", "--lease-ttl", "7",
                           env=crash.environment())
    daemons.append(paused)
    eventually(lambda: len(on_gateway(sandbox)) > 20, timeout=30)
    os.kill(paused.process.pid, signal.SIGSTOP)
    try:
        code, output = finish(apply(repo, long_run_store_url, "--lock-timeout", "60"), timeout=120)
        assert code == 0, output
        exactly_once(sandbox, 200)
    finally:
        os.kill(paused.process.pid, signal.SIGCONT)
    assert paused.process.wait(timeout=30) == 1, paused.logs()[-3000:]
    time.sleep(1.0)
    exactly_once(sandbox, 200)
    assert "daemon.lease_lost" in paused.logs()


@pytest.fixture(params=[pytest.param("sqlite", marks=pytest.mark.slow), "postgresql"])
def ha_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """High availability is what the shared store is for: PostgreSQL in the default suite, SQLite when slow."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("postgres").new_database())


def test_a_standby_daemon_takes_over_from_a_killed_one_and_finishes_exactly_once(
    sandbox: RunningSandbox, tmp_path: Path, ha_store_url: str, daemons: list[DaemonProcess]
) -> None:
    repo = crash.sms_repo(tmp_path / "ops", sandbox, backend="gw", recipients=300, per_second=60,
                          timeout_seconds=1)
    args = (str(repo), "--state", ha_store_url, "--resync", "300", "--standby", "--lease-ttl", "8")
    active = DaemonProcess(repo, *args, env=crash.environment())
    daemons.append(active)
    eventually(lambda: on_gateway(sandbox), timeout=30)
    standby = DaemonProcess(repo, *args, env=crash.environment())
    daemons.append(standby)
    eventually(lambda: standby.status()["role"] == "standby", timeout=30)
    assert standby.get("/readyz").status_code == 503
    active.process.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    eventually(lambda: standby.status()["role"] == "active", timeout=30)
    record("ha.takeover_seconds", round(time.monotonic() - killed, 3), store=ha_store_url.split(":")[0])
    eventually(lambda: len(on_gateway(sandbox)) == 300, timeout=60)
    time.sleep(0.5)
    exactly_once(sandbox, 300)
    assert 'reconcile_lease_takeovers_total 0.0' in standby.get("/metrics").text  # the killed one was gone


def test_ci_dry_runs_with_a_read_only_role_plan_exactly(sandbox: RunningSandbox, tmp_path: Path,
                                                       postgres: object) -> None:
    """The README's read-only role: after a converged apply, a dry run from another checkout through a role
    that can only SELECT plans nothing (exit 0 with --detailed-exitcode)."""
    writer_url = postgres.new_database()  # type: ignore[attr-defined]
    database = writer_url.rsplit("/", 1)[1]
    repo = crash.sms_repo(tmp_path / "ops", sandbox, backend="gw", recipients=50)
    assert finish(apply(repo, writer_url))[0] == 0
    role = "ci_" + database
    postgres.psql(f"CREATE ROLE {role} LOGIN; GRANT CONNECT ON DATABASE {database} TO {role}; "  # type: ignore[attr-defined]
                  f"GRANT USAGE ON SCHEMA public TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};",
                  database)
    reader_url = writer_url.replace(f"//{postgres.user}@", f"//{role}@")  # type: ignore[attr-defined]
    other = crash.sms_repo(tmp_path / "checkout", sandbox, backend="gw", recipients=50)
    dry = subprocess.run([*crash.reconcile_command(other, reader_url)[:-1], "--dry-run", "--detailed-exitcode"],
                         cwd=other, env=crash.environment(), capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0 and "to-send 0" in dry.stdout, dry.stdout + dry.stderr
    refused = subprocess.run(crash.reconcile_command(other, reader_url), cwd=other, env=crash.environment(),
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stdout + refused.stderr
    exactly_once(sandbox, 50)
