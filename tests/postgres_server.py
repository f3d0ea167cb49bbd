"""A throwaway PostgreSQL cluster for the tests: initdb into a temporary folder, pg_ctl on a free loopback
port, torn down at the end. As root (CI), the cluster runs as the ``postgres`` user, since initdb refuses
root. Without PostgreSQL the tests that need it are skipped with one line, except under CI (``CI=true``),
where that is a failure: CI must run them."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing(reason: str) -> None:
    """Skip outside CI; fail under CI (where PostgreSQL must be installed by .ci/run)."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"PostgreSQL is required under CI: {reason}")
    pytest.skip(f"PostgreSQL not available ({reason}); .ci/run installs it")


class PostgresCluster:
    def __init__(self, root: Path, port: int, user: str, as_user: list[str]) -> None:
        self.root = root
        self.port = port
        self.user = user
        self._as_user = as_user

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        psql = _binary("psql")
        assert psql is not None
        done = subprocess.run([psql, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", self.url(database), "-c", sql],
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)


def _run(cmd: list[str], *, timeout: float = 120) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None or _binary("psql") is None:
        missing("initdb, pg_ctl or psql not found")
    assert initdb is not None and pg_ctl is not None
    as_user: list[str] = []
    user = os.environ.get("USER") or "postgres"
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            missing("running as root without runuser to start PostgreSQL as the postgres user")
        try:
            import pwd
            pwd.getpwnam("postgres")
        except KeyError:
            missing("running as root and there is no `postgres` user")
        as_user, user = [str(runuser), "-u", "postgres", "--"], "postgres"
    else:
        import pwd
        user = pwd.getpwuid(os.getuid()).pw_name
    root = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if as_user:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()
    try:
        _run([*as_user, initdb, "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"])
        _run([*as_user, pg_ctl, "-D", str(data), "-w", "-t", "60", "-l", str(root / "log"), "-o",
              f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sockets} "
              "-c fsync=off -c max_connections=200", "start"])
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(root, ignore_errors=True)
        missing(f"the cluster did not start: {exc}")
    try:
        yield PostgresCluster(root, port, user, as_user)
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
