"""Helpers shared by the IoT campaign manager adapter tests (no tests in here): a sandbox with a user
whose password is distinctive enough to search for, and specs / contexts pointing at it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reconciler.backends.protocol import ConnectContext
from reconciler.model import BackendLimits, BackendSpec
from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import SandboxServer
from reconciler.sandbox.iot_campaigns.app import IotCampaignsSimulator
from reconciler.sandbox.iot_campaigns.model import ALL_PERMISSIONS
from reconciler.sandbox.testing import running_simulator
from reconciler.secrets import Redactor, SecretRef

USER = "ops"
PASSWORD = "correct-horse-battery-staple"
VIEWER = "viewer"
VIEWER_PASSWORD = "viewer-horse-battery"
USERS = {USER: (PASSWORD, ALL_PERMISSIONS), VIEWER: (VIEWER_PASSWORD, frozenset({"View Campaign", "View Package"}))}


@contextmanager
def iot_sandbox(**options: Any) -> Iterator[SandboxServer]:
    clock = SimClock()
    sim = IotCampaignsSimulator(clock=clock, seed=11, users=USERS, **options)
    with running_simulator(sim, clock=clock) as server:
        yield server


def backend_spec(url: str, *, user: str = USER, options: Mapping[str, object] | None = None,
                 max_retries: int = 4) -> BackendSpec:
    return BackendSpec(
        name="b1", type="iot-campaigns", url=url,
        auth={"username": user, "password": SecretRef(env="B1_SECRET")},
        limits=BackendLimits(timeout_seconds=10, max_retries=max_retries),
        options=dict(options or {}),
    )


def connect_context(root: Path, *, password: str = PASSWORD) -> ConnectContext:
    return ConnectContext(root=root, environ={"B1_SECRET": password}, redactor=Redactor())


async def no_sleep(seconds: float) -> None:
    return None
