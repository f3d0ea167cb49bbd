"""Fault injection for the sandbox: what can go wrong with a request, decided by a seeded RNG.

The model of failure (documented in the README) is chosen so that tests exercise the hard cases:
- ``error_status`` (default 503) and 429 are answered *before* the simulator acts: the request had
  no effect, and 429/503 carry ``Retry-After``;
- timeouts, dropped connections and malformed bodies happen *after* the simulator acted: the effect
  took place but the client cannot know it. This is what makes duplicate sends possible, so it is
  what the send ledger must survive.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class FaultSettings:
    """The knobs of ``POST /_sandbox/faults`` (all rates are 0..1)."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    retry_after_s: float = 1.0
    timeout_rate: float = 0.0
    timeout_s: float = 30.0
    drop_rate: float = 0.0
    malformed_rate: float = 0.0
    seed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FaultDraw:
    """What will happen to one request."""

    latency_s: float = 0.0
    error: bool = False
    timeout: bool = False
    drop: bool = False
    malformed: bool = False


class FaultInjector:
    """Holds the settings and the seeded RNG; ``draw()`` decides the fate of one request."""

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self._lock = threading.Lock()
        self.settings = FaultSettings()
        self._rng = random.Random()
        self.configure((settings or FaultSettings()).as_dict())

    def configure(self, values: dict[str, Any]) -> FaultSettings:
        """Update some settings; unknown names or bad values raise ``ValueError``."""
        known = {f.name: f.type for f in fields(FaultSettings)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)}; known: {', '.join(known)}")
        with self._lock:
            current = self.settings.as_dict()
            for name, value in values.items():
                current[name] = _coerce(name, value)
            self.settings = FaultSettings(**current)
            self._rng = random.Random(self.settings.seed)
            return self.settings

    def draw(self) -> FaultDraw:
        with self._lock:
            s, rng = self.settings, self._rng
            roll = rng.random()
            error = roll < s.error_rate
            roll -= s.error_rate
            timeout = not error and 0 <= roll < s.timeout_rate
            roll -= s.timeout_rate
            drop = not (error or timeout) and 0 <= roll < s.drop_rate
            malformed = not (error or timeout or drop) and rng.random() < s.malformed_rate
            return FaultDraw(s.latency_ms / 1000.0, error, timeout, drop, malformed)


def _coerce(name: str, value: Any) -> Any:
    if name == "seed":
        return None if value is None else int(value)
    if name == "error_status":
        status = int(value)
        if not 400 <= status <= 599:
            raise ValueError("error_status must be an HTTP error status (400-599)")
        return status
    number = float(value)
    if number < 0 or (name.endswith("_rate") and number > 1):
        raise ValueError(f"{name} must be {'between 0 and 1' if name.endswith('_rate') else '>= 0'}")
    return number
