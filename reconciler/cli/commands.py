"""The list of command modules ``reconcile`` offers (only commands that work are listed)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

REGISTERED: list[Register] = []
