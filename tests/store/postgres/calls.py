"""What the PostgreSQL tests share: many MCP calls at once (errors kept, not raised), and row counts read with SQL."""

from __future__ import annotations

from typing import Any, LiteralString

import anyio
import psycopg
from mcp import Client

Call = tuple[Client, str, dict[str, Any]]


async def gather(calls: list[Call]) -> list[dict[str, Any]]:
    """Every call at once; each result's structured content in call order (an error's is {"error": ...})."""
    results: list[dict[str, Any]] = [{} for _ in calls]

    async def run(index: int, client: Client, tool: str, arguments: dict[str, Any]) -> None:
        result = await client.call_tool(tool, arguments)
        assert result.structured_content is not None, result.content
        results[index] = result.structured_content

    async with anyio.create_task_group() as group:
        for index, (client, tool, arguments) in enumerate(calls):
            group.start_soon(run, index, client, tool, arguments)
    return results


def counts(url: str) -> dict[str, int]:
    """Rows in each of the store's tables."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM contacts), (SELECT count(*) FROM methods), (SELECT count(*) FROM identities)"
        ).fetchone()
    assert row is not None
    return dict(zip(("contacts", "methods", "identities"), row, strict=True))


def scalar(url: str, query: LiteralString) -> object:
    """The first column of the first row `query` returns (None for no row)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    return row[0] if row else None
