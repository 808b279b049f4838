"""Who called, as the history records it over each real transport: the client's name and `stdio`, `http` or
`sse`, with real `contact-mcp serve` processes on 127.0.0.1; `/healthz` counts what was recorded."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import Implementation

from contact_mcp.store import LocalStore
from contact_mcp.store.history import HistoryQuery
from tests.http_server import spawn_http
from tests.stdio_server import server_params

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # servers in child processes

INFO = Implementation(name="transport-test", version="3")


async def recorded(db: Path) -> list[tuple[str, str | None, str | None]]:
    store = LocalStore.open(db)
    try:
        entries = (await store.backend.history_page(HistoryQuery())).entries
    finally:
        await store.aclose()
    return [(e.outcome, e.client, e.transport) for e in entries]


async def test_stdio_records_the_client_and_the_transport(tmp_path: Path) -> None:
    db = tmp_path / "contacts.db"
    async with Client(stdio_client(server_params({"CONTACT_MCP_DB": str(db)})), client_info=INFO) as client:
        assert not (await client.call_tool("upsert_contact", {"email": "ann@example.com"})).is_error
    assert await recorded(db) == [("created", "transport-test", "stdio")]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_streamable_http_records_the_client_and_health_counts_it(tmp_path: Path, mode: str) -> None:
    db = tmp_path / "contacts.db"
    with spawn_http({"CONTACT_MCP_DB": str(db)}, tmp_path / "server.log") as server:
        endpoint = streamable_http_client(f"{server.base}/mcp")
        async with Client(endpoint, client_info=INFO, mode=mode) as client:  # pyright: ignore[reportArgumentType]
            assert not (await client.call_tool("upsert_contact", {"email": "ann@example.com"})).is_error
            assert (await client.call_tool("upsert_contact", {"name": "no key"})).is_error
        async with httpx2.AsyncClient(base_url=server.base, timeout=10) as http:
            health = (await http.get("/healthz")).json()
    assert health["history"] == {"recorded": 2, "failed": 0}
    assert await recorded(db) == [("created", "transport-test", "http"), ("invalid_argument", "transport-test", "http")]


async def test_sse_records_the_client_and_the_transport(tmp_path: Path) -> None:
    db = tmp_path / "contacts.db"
    with spawn_http({"CONTACT_MCP_DB": str(db)}, tmp_path / "server.log", transport="sse") as server:
        async with Client(sse_client(f"{server.base}/sse"), client_info=INFO) as client:
            assert not (await client.call_tool("upsert_contact", {"email": "ann@example.com"})).is_error
    assert await recorded(db) == [("created", "transport-test", "sse")]
