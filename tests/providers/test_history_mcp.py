"""The history of writes when only a provider API serves the tools: recorded in CONTACT_MCP_DB all the same, and
shown by get_contact on that provider (Feather's fake on 127.0.0.1)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.types import Implementation

from contact_mcp import build_server, load_settings
from contact_mcp.store import LocalStore
from contact_mcp.store.history import HistoryQuery
from tests.fakes.feather import API_KEY, FeatherFake

pytestmark = pytest.mark.anyio

PROVIDER = "feather"


async def test_a_provider_write_is_recorded_in_the_store_that_serves_no_tool(
    base_url: str, db_path: Path, fake: FeatherFake
) -> None:
    end_user = fake.add_end_user(display_name="Jane")
    settings = load_settings(providers="feather", feather_api_key=API_KEY, feather_base_url=base_url, db=str(db_path))
    server = build_server(settings)
    async with Client(server, client_info=Implementation(name="crm-agent", version="2")) as client:
        attached = await client.call_tool(
            "attach_contact", {"end_user_id": end_user, "channel": "email", "value": "jane@example.com"}
        )
        refused = await client.call_tool(
            "attach_contact", {"end_user_id": end_user, "channel": "email", "value": "not an email"}
        )
        shown = await client.call_tool("get_contact", {"contact_id": end_user, "include_history": True})
    assert not attached.is_error and refused.is_error and not shown.is_error
    store = LocalStore.open(db_path)
    try:
        entries = (await store.backend.history_page(HistoryQuery())).entries
    finally:
        await store.aclose()
    assert [(e.tool, e.provider, e.contact_id, e.outcome, e.client) for e in entries] == [
        ("attach_contact", "feather", end_user, "created", "crm-agent"),
        ("attach_contact", "feather", end_user, "invalid_argument", "crm-agent"),
    ]
    assert shown.structured_content is not None
    assert [e["outcome"] for e in shown.structured_content["history"]] == ["invalid_argument", "created"]


async def test_a_provider_write_stays_a_success_when_its_history_cannot_be_recorded(
    base_url: str, db_path: Path, fake: FeatherFake
) -> None:
    end_user = fake.add_end_user(display_name="Jane")
    settings = load_settings(providers="feather", feather_api_key=API_KEY, feather_base_url=base_url, db=str(db_path))
    server = build_server(settings)  # its preflight creates the database: then it starts refusing history rows
    with closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON history BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    async with Client(server) as client:
        attached = await client.call_tool(
            "attach_contact", {"end_user_id": end_user, "channel": "email", "value": "jane@example.com"}
        )
        assert server.history is not None
        counts = server.history.counts()
    assert not attached.is_error
    assert attached.structured_content is not None and attached.structured_content["created"] is True
    assert [contact.normalized_value for contact in fake.end_users[end_user].contacts] == ["jane@example.com"]
    assert counts == {"recorded": 0, "failed": 1}
    # Never replayed: once the database accepts rows again, a new server records only its own calls.
    with closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute("DROP TRIGGER refuse")
        assert conn.execute("SELECT count(*) FROM history").fetchone() == (0,)


async def test_a_read_only_server_on_a_provider_alone_opens_no_database(base_url: str, fake: FeatherFake) -> None:
    """Nothing to record and no CONTACT_MCP_DB given: no file appears, and include_history says there is none."""
    end_user = fake.add_end_user(display_name="Jane")
    settings = load_settings(providers="feather", feather_api_key=API_KEY, feather_base_url=base_url, read_only=True)
    async with Client(build_server(settings)) as client:
        plain = await client.call_tool("get_contact", {"contact_id": end_user})
        result = await client.call_tool("get_contact", {"contact_id": end_user, "include_history": True})
    assert not await anyio.Path(settings.db).exists()
    assert not plain.is_error
    assert result.is_error and result.structured_content is not None
    assert result.structured_content["error"]["field"] == "include_history"
