"""Serving the server: `run()` is the process entry the CLI calls, for stdio (`stdio.py`) or HTTP (`http.py`).

Importing this package loads nothing heavy; each transport module imports the SDK when it is chosen.
"""

from __future__ import annotations

import gc
from typing import Literal

from contact_mcp.settings import Settings

Transport = Literal["stdio", "sse", "http"]


def run(
    settings: Settings,
    *,
    transport: Transport = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    stateless: bool = False,
) -> None:
    """Build the server and serve it until interrupted (or, over HTTP, drained); `ConfigError` for a configuration
    that cannot work, raised before anything is served."""
    if transport == "stdio":
        from contact_mcp.serve.stdio import run_stdio

        run_stdio(settings)
        return
    from contact_mcp.serve.http import run_http

    run_http(settings, transport=transport, host=host, port=port, stateless=stateless)


def freeze_start_up_heap() -> None:
    """Take what start-up built out of the garbage collector's reach and let the collector run, before serving.

    Modules, classes and tool schemas (~90k objects with the SDK) live as long as the process, yet every full
    collection would walk them again: with 32 calls in flight the bare SDK server spends 34–60 µs a call in GC,
    contact-mcp 21–36 µs frozen (`python -m bench.insitu --in-flight 32`). What calls create is still collected.
    No `gc.collect()` first: on our machines it adds ~60 ms to every launch to free ~300 objects (~1,500 when
    `contact_mcp.__main__` kept the collector off during start-up).
    """
    gc.freeze()
    gc.enable()
