"""Figures the long runs report (kills survived, duplicates, inputs tried, fuzz examples, soak growth).

A test calls ``record(name, value)``; the figure is printed (visible with ``pytest -s``) and, when the
environment variable ``RELIABILITY_FIGURES`` names a file, appended to it as one JSON object per line,
which ``tests/reliability/run_long.py`` reads back and summarises.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

FIGURES_ENV = "RELIABILITY_FIGURES"


def record(name: str, value: Any, **detail: Any) -> None:
    line = {"figure": name, "value": value, "at": round(time.time(), 3), **detail}
    print(f"figure {name}: {value} {detail if detail else ''}".rstrip())
    target = os.environ.get(FIGURES_ENV)
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, sort_keys=True, default=str) + "\n")
