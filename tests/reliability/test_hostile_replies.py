"""Hostile replies end in a clean error of their backend, through the real entry point: a dry run
against an IoT campaign manager that answers a listing with a 2 GiB gzip bomb, a body announced at 1 GiB,
1 GiB unannounced (until the connection closes), an endless chunked body, a head of 1,000 lines, a listing claiming 3,000,000 pages, or a login reply that
is itself a bomb (read inside the auth flow). Each run exits 1 with ``backend iot could not be read
(... limits.X ...)``, no traceback, within the request timeout; the server is stopped from sending long
before it would finish. Peak memory and times of the same runs are measured by
``bench/hostile_replies.py``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.hostile_servers import HostileIot, MiB, hostile_iot_repo

EXPECTED = {
    "gzip-bomb": "limits.maxCompressionRatio",
    "huge-body": "limits.maxBodyBytes",
    "huge-body-close": "limits.maxBodyBytes",
    "endless-chunked": "limits.maxBodyBytes",
    "header-flood": "limits.maxHeaderLines",
    "page-bomb": "limits.maxListPages",
    "login-bomb": "limits.maxCompressionRatio",
}


def dry_run(decl: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "reconciler", "--dry-run", *extra, str(decl)], cwd=decl.parent,
                          env={**os.environ, "IOT_PASSWORD": "hostile-password-1", "NO_COLOR": "1"},
                          capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - started


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_a_hostile_reply_is_a_clean_error_of_its_backend(mode: str, tmp_path: Path) -> None:
    server = HostileIot(mode)
    try:
        decl = tmp_path / "campaigns.d"
        decl.mkdir()
        (decl / "iot.yaml").write_text(hostile_iot_repo(server.url), encoding="utf-8")
        done, seconds = dry_run(decl)
        json_done, _ = dry_run(decl, "--output", "json")
    finally:
        server.stop()
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output + json_done.stdout + json_done.stderr
    assert "backend iot could not be read (iot " in output and EXPECTED[mode] in output, output
    assert EXPECTED[mode] in json_done.stdout + json_done.stderr
    assert seconds < 10  # the request timeout (timeoutSeconds: 10)
    listings = [r for r in server.requests if not r.startswith("POST /api/tokens")]
    assert server.sent < max(len(listings), 1) * 48 * MiB  # a 1 GiB body is not read to its end (32 MiB + buffers)
    if mode == "page-bomb":  # the first page of each listing, and nothing of the 3,000,000 more
        assert len([r for r in server.requests if "page.number" in r]) <= 2 * 2  # one retry each at most
