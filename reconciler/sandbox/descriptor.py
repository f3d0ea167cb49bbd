"""What one simulator is, in one place: the sandbox registry's entry for a backend type.

A ``SimulatorDescriptor`` says which backend type it stands in for, its port (``port_base + port_offset``),
whether it serves HTTPS, how to build it from the sandbox's options, and its line in the banner
``reconcile sandbox`` prints. Each simulator package defines ``SIMULATOR`` in its ``__init__``, which stays
cheap to import: the simulator (starlette, its fixtures) is imported only when a sandbox starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.sandbox.clock import SimClock
    from reconciler.sandbox.harness import Simulator
    from reconciler.sandbox.run import SandboxOptions


@dataclass(frozen=True)
class SimulatorDescriptor:
    """One simulator of the sandbox.

    - ``type``: the backend type it simulates (``Backend.spec.type``); also its key in ``RunningSandbox``.
    - ``title``: the product, as the banner's first column shows it.
    - ``port_offset``: it listens on ``port_base + port_offset`` (a contract: 1..4 for the built-in ones).
    - ``build``: makes the simulator from the sandbox options and the shared simulated clock.
    - ``banner``: the rest of its banner line, with ``{url}`` (its base URL) and ``{ca}`` (the CA file).
    - ``tls``: it serves HTTPS with the certificate the sandbox makes at start.
    """

    type: str
    title: str
    port_offset: int
    build: Callable[[SandboxOptions, SimClock], Simulator]
    banner: str
    tls: bool = False

    def banner_line(self, url: str, ca: str) -> str:
        return f"  {self.title:<16}{self.banner.format(url=url, ca=ca)}"
