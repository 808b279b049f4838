"""How tests start the real server over streamable HTTP on loopback (a subprocess) and connect to it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.fakes.harness import free_port


@dataclass(frozen=True)
class Spawned:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path


@contextmanager
def http_server(env: dict[str, str], log: Path) -> Iterator[str]:
    with spawn_http(env, log) as spawned:
        yield spawned.base


@contextmanager
def spawn_http(
    env: dict[str, str],
    log: Path,
    *args: str,
    transport: str = "http",
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[Spawned]:
    """`contact-mcp serve --transport <transport> [args]` on a free 127.0.0.1 port, answering /healthz; stopped on
    exit (SIGTERM, then SIGKILL after 10 s). `preexec_fn` runs in the child before the server (to set its limits)."""
    port = free_port()
    argv = [sys.executable, "-m", "contact_mcp", "serve", "--transport", transport, "--port", str(port), *args]
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            argv,
            env={**os.environ, "CONTACT_MCP_LOG_LEVEL": "WARNING", **env},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            preexec_fn=preexec_fn,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {log.read_text()}")
            time.sleep(0.05)
        yield Spawned(proc, base, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@asynccontextmanager
async def http_client(base: str, token: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
    ):
        yield client
