"""The command modules ``reconcile`` offers (only commands that work are listed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.cli import apply, demo, history, sandbox, status, validate, watch

Register = Callable[[Any], None]

REGISTERED: list[Register] = [apply.register, validate.register, status.register, watch.register,
                              history.register, sandbox.register, demo.register]
