"""Every tool, used as an agent would, through a real MCP client: in-memory, stdio subprocess, streamable HTTP.

One story per transport: create a contact, attach a verified email and a messaging identity, verify and clear a
phone, upsert by email (same contact), read it back, find it — and repeat the idempotent calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from contact_mcp import build_server, load_settings
from contact_mcp.tools.table import TOOL_NAMES
from tests.http_server import http_client, http_server
from tests.results import assert_described, json_text
from tests.stdio_server import server_params

pytestmark = pytest.mark.anyio


async def call(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """A successful call: its text carries the result as JSON, and its published output schema describes it all."""
    result = await client.call_tool(tool, args)
    assert not result.is_error, f"{tool}: {result.content}"
    assert result.structured_content is not None
    data = json_text(result)
    (listed,) = [t for t in (await client.list_tools()).tools if t.name == tool]
    assert_described(data, listed.output_schema or {})
    return data


async def story(client: Client) -> None:
    tools = {tool.name for tool in (await client.list_tools()).tools}
    assert tools == set(TOOL_NAMES)

    created = await call(client, "create_contact", {"username": "grace", "phone_number": "+1 202 555 0143"})
    cid = created["id"]
    assert created["phone_number"] == "+12025550143"
    assert created["display_name"] == "grace"

    email = await call(client, "attach_contact", {"end_user_id": cid, "channel": "email", "value": "Grace@Navy.MIL"})
    assert (email["created"], email["normalized_value"], email["type"]) == (True, "grace@navy.mil", "email")
    again = await call(client, "attach_contact", {"end_user_id": cid, "channel": "email", "value": "grace@navy.mil"})
    assert (again["created"], again["uid"]) == (False, email["uid"])

    identity = {"contact_id": cid, "identifier": "+12025550143", "channel_type": "whatsapp"}
    first = await call(client, "attach_identity", identity)
    second = await call(client, "attach_identity", identity)
    assert (first["created"], second["created"], second["id"]) == (True, False, first["id"])

    verify = {"contact_id": cid, "type": "phone", "value": "+1 (202) 555-0143", "verified": True}
    verified = await call(client, "set_verification", verify | {"verification_source": "call"})
    assert (verified["message"], verified["verified"], verified["verification_source"]) == (
        "Phone number verified",
        True,
        "call",
    )
    cleared = await call(client, "set_verification", verify | {"verified": False, "confirm": True})
    assert cleared["message"] == "Phone number verification cleared"
    assert "verified_at" not in cleared
    assert "verification_source" not in cleared

    upserted = await call(client, "upsert_contact", {"email": "GRACE@navy.mil", "name": "Grace Hopper"})
    assert (upserted["outcome"], upserted["id"]) == ("updated", cid)
    unchanged = await call(client, "upsert_contact", {"email": "grace@navy.mil", "name": "Grace Hopper"})
    assert unchanged["outcome"] == "unchanged"

    contact = await call(client, "get_contact", {"contact_id": cid})
    assert contact["name"] == "Grace Hopper"
    assert {(m["type"], m["value"]) for m in contact["methods"]} == {
        ("phone", "+12025550143"),
        ("email", "grace@navy.mil"),
    }
    assert [i["identifier"] for i in contact["identities"]] == ["+12025550143"]

    page = await call(client, "find_contacts", {"phone": "+12025550143"})
    assert [c["id"] for c in page["contacts"]] == [cid]
    assert (await call(client, "find_contacts", {"query": "hopper"}))["contacts"][0]["id"] == cid

    twin = (await call(client, "upsert_contact", {"email": "g.hopper@navy.mil", "name": "Grace B. Hopper"}))["id"]
    (group,) = (await call(client, "find_duplicates", {}))["groups"]
    assert [c["id"] for c in group["contacts"]] == [cid, twin]
    assert {e["kind"] for e in group["evidence"]} == {"email_domain", "name"}
    merged = await call(client, "merge_contacts", {"survivor_id": cid, "duplicate_ids": [twin], "confirm": True})
    assert (merged["merged_ids"], merged["moved_methods"]) == ([twin], 1)
    assert (await call(client, "get_contact", {"contact_id": twin}))["merged_into"] == cid
    assert (await call(client, "find_duplicates", {}))["groups"] == []
    detached = await call(client, "detach_identity", {"contact_id": cid, "identifier": "+1 202 555 0143"})
    assert detached["ids"] == [first["id"]]
    removed = await call(client, "detach_contact", {"contact_id": cid, "channel": "email", "value": "grace@navy.mil"})
    assert removed["uid"] == email["uid"]
    assert (await call(client, "delete_contact", {"contact_id": cid, "confirm": True}))["id"] == cid
    gone = await client.call_tool("get_contact", {"contact_id": cid})
    assert gone.is_error and (gone.structured_content or {})["error"]["code"] == "not_found"


async def test_every_tool_in_memory(db_path: Path) -> None:
    async with Client(build_server(load_settings(db=str(db_path)))) as client:
        await story(client)


@pytest.mark.slow
async def test_every_tool_over_stdio(db_path: Path) -> None:
    async with Client(server_params({"CONTACT_MCP_DB": str(db_path)})) as client:
        await story(client)


@pytest.mark.slow
async def test_every_tool_over_streamable_http_with_token(db_path: Path) -> None:
    token = "e2e-token-abcdef0123456789"
    env = {"CONTACT_MCP_DB": str(db_path), "CONTACT_MCP_HTTP_TOKEN": token}
    with http_server(env, db_path.parent.parent / "server.log") as base:
        async with http_client(base, token) as client:
            await story(client)
