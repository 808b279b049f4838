"""Waiting, in tests, for a server to reach a state it reports (bounded, never a timing assertion)."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable

import anyio


async def eventually(check: Callable[[], Awaitable[bool]], *, within_s: float = 10, every_s: float = 0.05) -> None:
    """Return once `check()` is true; `TimeoutError` after `within_s`."""
    with anyio.fail_after(within_s):
        for _ in itertools.count():
            if await check():
                return
            await anyio.sleep(every_s)
