"""The command modules ``reconcile`` offers (only commands that work are listed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.cli import apply, demo, history, import_cmd, sandbox, status, validate, watch

Register = Callable[[Any], None]

REGISTERED: list[Register] = [apply.register, validate.register, status.register, watch.register,
                              history.register, import_cmd.register, sandbox.register, demo.register]
