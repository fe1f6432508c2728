"""Run transfers concurrently; the first failure cancels the rest and is raised as itself.

``asyncio.TaskGroup`` raises an ``ExceptionGroup``; callers (and users) want the error that
happened first, in the project's vocabulary, not a group.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any


def _first(eg: BaseExceptionGroup[Any]) -> BaseException:
    e: BaseException = eg
    while isinstance(e, BaseExceptionGroup):
        e = e.exceptions[0]
    return e


async def run_all(coros: Iterable[Coroutine[Any, Any, Any]]) -> None:
    try:
        async with asyncio.TaskGroup() as tg:
            for c in coros:
                tg.create_task(c)
    except BaseExceptionGroup as eg:
        raise _first(eg) from None
