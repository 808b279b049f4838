"""Calling the store's tools in contract tests: a success's structured result, an error's payload, row counts."""

from __future__ import annotations

from typing import Any

from mcp import Client
from mcp.types import TextContent

from contact_mcp.store import LocalStore

UNKNOWN_UUID = "6f1c2a0e-8a3b-4c5d-9e7f-0a1b2c3d4e5f"
PHONE = "+14155550123"
PHONE_2 = "+14155550124"


async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.structured_content["provider"] == "local"
    return result.structured_content


async def err(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """The error payload; also checks the result's shape: only `error`, and text for the model."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    assert result.structured_content is not None
    assert set(result.structured_content) == {"error"}
    error: dict[str, Any] = result.structured_content["error"]
    assert error["provider"] == "local"
    text = result.content[0]
    assert isinstance(text, TextContent)
    assert error["code"] in text.text
    return error


async def new_contact(client: Client, email: str = "ann@example.com", **fields: Any) -> str:
    contact = await ok(client, "upsert_contact", email=email, **fields)
    return contact["id"]


async def method(client: Client, contact_id: str, channel: str, value: str) -> dict[str, Any]:
    contact = await ok(client, "get_contact", contact_id=contact_id)
    (found,) = [m for m in contact["methods"] if m["channel"] == channel and m["value"] == value]
    return found


async def counts(store: LocalStore) -> dict[str, int]:
    """Contacts, methods and identities the store holds, read through export (the same on every backend)."""
    totals = {"contacts": 0, "methods": 0, "identities": 0}
    async for batch in store.iter_records():
        totals["contacts"] += len(batch)
        totals["methods"] += sum(len(r.methods) for r in batch)
        totals["identities"] += sum(len(r.identities) for r in batch)
    return totals
