"""Scenario 5: does the server's memory grow with use? RSS after 1k and after 20k tool calls.

The server runs as its own process (stdio and streamable HTTP); 32 tasks on one session alternate an upsert that
creates a new contact and a get of an existing one, so the store grows as it would in use. The process's current RSS
and its peak (VmHWM) are read with psutil//proc at each checkpoint. The bare SDK server answers the same stream of
calls with its trivial tool, which shows how much of any growth is the SDK's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from mcp import Client

from bench.procs import ServerSpec, Transport, connect, memory_of
from bench.stats import ratio

CONCURRENCY = 32


@dataclass(frozen=True)
class MemoryRow:
    server: str
    transport: Transport
    checkpoints: tuple[int, ...]
    rss_mib: tuple[float, ...]
    peak_mib: tuple[float, ...]

    @property
    def peak_growth(self) -> float:
        return ratio(self.peak_mib[-1], self.peak_mib[0])

    @property
    def rss_growth(self) -> float:
        return ratio(self.rss_mib[-1], self.rss_mib[0])

    def as_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "transport": self.transport,
            "checkpoints": list(self.checkpoints),
            "rss_mib": list(self.rss_mib),
            "peak_mib": list(self.peak_mib),
            "peak_growth": self.peak_growth,
            "rss_growth": self.rss_growth,
        }


def _call(i: int, seeded: list[str], ours: bool) -> tuple[str, dict[str, Any]]:
    if i % 2:
        contact_id = seeded[i % len(seeded)]
        return ("get_contact" if ours else "ping"), {"contact_id": contact_id}
    args = {"user_id": f"mem-{i}", "email": f"mem{i}@example.com", "name": f"Memory {i}", "phone": "+14155550100"}
    return ("upsert_contact" if ours else "ping"), args


async def _drive(client: Client, start: int, stop: int, seeded: list[str], ours: bool) -> None:
    numbers = iter(range(start, stop))

    async def worker() -> None:
        for i in numbers:
            tool, args = _call(i, seeded, ours)
            result = await client.call_tool(tool, args)
            if result.is_error:
                raise RuntimeError(f"{tool} failed during the memory run: {result.content}")

    async with anyio.create_task_group() as tasks:
        for _ in range(CONCURRENCY):
            tasks.start_soon(worker)


async def _seed(client: Client, ours: bool) -> list[str]:
    if not ours:
        return ["00000000-0000-4000-8000-000000000000"]
    ids: list[str] = []
    for i in range(50):
        result = await client.call_tool("upsert_contact", {"user_id": f"seed-{i}", "email": f"seed{i}@example.com"})
        if result.is_error or not isinstance(result.structured_content, dict):
            raise RuntimeError(f"seeding failed: {result.content}")
        ids.append(str(result.structured_content["id"]))
    return ids


async def memory_growth(
    spec: ServerSpec, transport: Transport, checkpoints: tuple[int, ...], ours: bool, log: Callable[[str], None]
) -> MemoryRow:
    rss: list[float] = []
    peak: list[float] = []
    async with connect(spec, transport) as connection:
        if connection.pid is None:
            raise RuntimeError(f"no process id for {spec.label} over {transport}")
        seeded = await _seed(connection.client, ours)
        done = 0
        for checkpoint in checkpoints:
            await _drive(connection.client, done, checkpoint, seeded, ours)
            done = checkpoint
            now, high = memory_of(connection.pid)
            rss.append(now)
            peak.append(high)
    row = MemoryRow(spec.label, transport, checkpoints, tuple(rss), tuple(peak))
    log(f"  {spec.label} over {transport}: peak " + " -> ".join(f"{p:.1f}" for p in peak) + " MiB")
    return row
