"""Running a command's coroutine to completion."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_to_completion(work: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(work)``, except that the result does not stay on the main task: when ``asyncio.run``
    restores the SIGINT handler it formats the main task's repr, result included (a stdlib quirk), and
    for a pass over the standard fleet that repr of the whole plan and report cost a tenth of a second."""
    box: list[T] = []

    async def main() -> None:
        box.append(await work)

    asyncio.run(main())
    return box[0]
