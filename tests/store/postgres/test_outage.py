"""PostgreSQL stopped and started again under a running `contact-mcp serve` (stdio, a real MCP client): calls while
it is down are a retryable `provider_unavailable`, and the server recovers by itself when it is back (the pool
reconnects in the background). On the PostgreSQL the suite started, which this test stops."""

from __future__ import annotations

import anyio
import pytest
from mcp import Client

from contact_mcp.errors import ProviderUnavailable
from contact_mcp.store import LocalStore
from tests.postgres_server import PostgresServer
from tests.stdio_server import server_params
from tests.store.postgres.calls import counts

pytestmark = pytest.mark.anyio


async def test_the_server_rides_out_a_database_outage(
    postgres_server: PostgresServer, started_postgres_url: str
) -> None:
    env = {"CONTACT_MCP_DB": started_postgres_url, "CONTACT_MCP_CONNECT_TIMEOUT": "1"}
    async with Client(server_params(env)) as client:
        before = await client.call_tool("upsert_contact", {"email": "ann@example.com"})
        assert before.structured_content is not None and not before.is_error
        ann = before.structured_content["id"]

        postgres_server.stop()
        try:
            down = [
                await client.call_tool("upsert_contact", {"email": "bob@example.com"}),
                await client.call_tool("get_contact", {"contact_id": ann}),
                await client.call_tool("find_contacts", {}),
            ]
        finally:
            postgres_server.start()

        for result in down:
            assert result.is_error
            assert result.structured_content is not None
            error = result.structured_content["error"]
            assert (error["code"], error["retryable"]) == ("provider_unavailable", True), error
        with anyio.fail_after(60):  # the pool reconnects in the background, with backoff
            while (back := await client.call_tool("get_contact", {"contact_id": ann})).is_error:
                assert back.structured_content is not None
                assert back.structured_content["error"]["code"] == "provider_unavailable"
                await anyio.sleep(0.2)
        after = await client.call_tool("upsert_contact", {"email": "bob@example.com"})

    assert after.structured_content is not None and not after.is_error, after.content
    assert after.structured_content["outcome"] == "created"
    assert counts(started_postgres_url) == {"contacts": 2, "methods": 2, "identities": 0}


async def test_readiness_fails_while_the_database_is_down_and_returns_with_it(
    postgres_server: PostgresServer, started_postgres_url: str
) -> None:
    store = LocalStore.open(started_postgres_url)
    try:
        await store.ready()
        postgres_server.stop()
        try:
            with pytest.raises(ProviderUnavailable):
                await store.ready()
        finally:
            postgres_server.start()
        with anyio.fail_after(60):
            while True:
                try:
                    await store.ready()
                    break
                except ProviderUnavailable:
                    await anyio.sleep(0.2)
    finally:
        await store.aclose()
