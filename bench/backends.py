"""Scenario 6: the PostgreSQL store against the SQLite store, tool by tool, p50 over streamable HTTP.

Two `contact-mcp serve --transport http` processes, one on a PostgreSQL database, one on a SQLite file, each seeded
with the same pool of contacts through the tool, then every tool on the store is compared with the A/B rounds
of `bench.overhead.compare` (sequential calls alternating one by one between the two servers), with the same
arguments in the same order on both sides (`bench.workloads`), so both stores do the same work.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.overhead import Comparison, OverheadCounts, Workload, compare
from bench.procs import connect, contact_mcp_spec
from bench.workloads import SPARES, TOOLS, seed_contacts, seed_spares, tool_args


async def store_backends(
    postgres_url: str, workdir: Path, counts: OverheadCounts, log: Callable[[str], None]
) -> list[Comparison]:
    """One comparison per tool; "ours" is the PostgreSQL store, the baseline the SQLite store."""
    env = {"CONTACT_MCP_PROVIDERS": "local"}
    on_postgres = contact_mcp_spec({**env, "CONTACT_MCP_DB": postgres_url}, lambda: None)
    on_sqlite = contact_mcp_spec({**env, "CONTACT_MCP_DB": str(workdir / "backends.db")}, lambda: None)
    results: list[Comparison] = []
    async with connect(on_postgres, "http") as postgres, connect(on_sqlite, "http") as sqlite:
        pg_ids = await seed_contacts(postgres.client, counts.pool)
        sqlite_ids = await seed_contacts(sqlite.client, counts.pool)
        calls = counts.warmup + counts.rounds * counts.sequential_calls
        for tool in TOOLS:
            pg_spares = sqlite_spares = None
            if tool in SPARES:  # seeded just before: the tools before see the same store as ever
                pg_spares = await seed_spares(postgres.client, calls, tool)
                sqlite_spares = await seed_spares(sqlite.client, calls, tool)
            log(f"  {tool}: PostgreSQL vs SQLite over http")
            results.append(
                await compare(
                    "backends",
                    tool,
                    "http",
                    Workload(postgres.client, tool, tool_args(tool, pg_ids, pg_spares)),
                    Workload(sqlite.client, tool, tool_args(tool, sqlite_ids, sqlite_spares)),
                    1,
                    counts,
                )
            )
    return results
