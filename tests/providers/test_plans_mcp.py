"""Providers side by side, through a real MCP client against the fakes on 127.0.0.1: find a contact on one
provider, then act on it with the id found. Every success carries its JSON in text as well as structured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from contact_mcp import build_server, load_settings
from tests.providers.cases import CASES
from tests.results import assert_described, json_text

pytestmark = pytest.mark.anyio


async def call(client: Client, tool: str, arguments: dict[str, Any], *, provider: str) -> dict[str, Any]:
    """A successful call served by `provider`, whose result its text carries and its output schema describes."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error is not True, result.content
    data = json_text(result)
    assert data["provider"] == provider
    (listed,) = [t for t in (await client.list_tools()).tools if t.name == tool]
    assert_described(data, listed.output_schema or {})
    return data


async def _client(names: list[str], fakes: Any, db_path: Path) -> AsyncIterator[tuple[Client, dict[str, Any]]]:
    overrides: dict[str, Any] = {"providers": ",".join(names), "db": str(db_path)}
    served: dict[str, Any] = {}
    for name in names:
        if name == "local":
            continue
        fake, url = fakes.get(name)
        fake.reset()
        served[name] = fake
        overrides |= {
            key: value for key, value in CASES[name].settings(url, str(db_path)).items() if key != "providers"
        }
    async with Client(build_server(load_settings(**overrides))) as client:
        yield client, served


@pytest.fixture
async def local_blooio(fakes: Any, db_path: Path) -> AsyncIterator[tuple[Client, dict[str, Any]]]:
    async for pair in _client(["local", "blooio"], fakes, db_path):
        yield pair


@pytest.fixture
async def three(fakes: Any, db_path: Path) -> AsyncIterator[tuple[Client, dict[str, Any]]]:
    async for pair in _client(["featurebase", "blooio", "tetherai"], fakes, db_path):
        yield pair


async def test_local_and_blooio(local_blooio: tuple[Client, dict[str, Any]]) -> None:
    client, fakes = local_blooio
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert tools["attach_identity"].description is not None
    assert tools["attach_identity"].description.endswith("Provider: Blooio.")

    # The local store does the writes Blooio does not, and reads what it holds.
    upserted = await call(client, "upsert_contact", {"email": "lin@example.com", "name": "Lin"}, provider="local")
    found = await call(client, "find_contacts", {"provider": "local", "email": "lin@example.com"}, provider="local")
    assert [c["id"] for c in found["contacts"]] == [upserted["id"]]
    contact = await call(client, "get_contact", {"provider": "local", "contact_id": upserted["id"]}, provider="local")
    assert contact["name"] == "Lin"

    # A contact found on Blooio gets a Blooio identity, by the id Blooio gave it.
    seeded = CASES["blooio"].seed(fakes["blooio"], 7)
    found = await call(client, "find_contacts", {"provider": "blooio", "email": "sam7@example.com"}, provider="blooio")
    (match,) = found["contacts"]
    assert match["id"] == seeded.id
    attached = await call(
        client,
        "attach_identity",
        {"contact_id": match["id"], "identifier": "+1 202 555 0143", "channel_type": "blooio"},
        provider="blooio",
    )
    assert (attached["contact_id"], attached["identifier"], attached["created"]) == (seeded.id, "+12025550143", True)
    contact = await call(client, "get_contact", {"provider": "blooio", "contact_id": match["id"]}, provider="blooio")
    assert "+12025550143" in [identity["identifier"] for identity in contact["identities"]]

    # The local store never heard of the Blooio contact: each read asks only the provider named.
    missing = await client.call_tool("get_contact", {"provider": "local", "contact_id": seeded.id})
    assert missing.is_error and (missing.structured_content or {})["error"]["provider"] == "local"


async def test_featurebase_blooio_and_tetherai(three: tuple[Client, dict[str, Any]]) -> None:
    client, fakes = three
    listed = [tool.name for tool in (await client.list_tools()).tools]
    assert listed == [
        "attach_identity",
        "set_verification",
        "upsert_contact",
        "delete_contact",
        "detach_identity",
        "get_contact",
        "find_contacts",
    ]

    # Featurebase: upsert, find by user id, read back by the id found.
    upserted = await call(
        client,
        "upsert_contact",
        {"user_id": "usr_42", "email": "ada@example.com", "name": "Ada"},
        provider="featurebase",
    )
    found = await call(
        client, "find_contacts", {"provider": "featurebase", "user_id": "usr_42"}, provider="featurebase"
    )
    (match,) = found["contacts"]
    assert match["id"] == upserted["id"]
    contact = await call(
        client, "get_contact", {"provider": "featurebase", "contact_id": match["id"]}, provider="featurebase"
    )
    assert (contact["user_id"], contact["name"]) == ("usr_42", "Ada")

    # TetherAI: list, then verify the email of the contact found, by its id.
    fakes["tetherai"].add_contact(first_name="Alex", last_name="Morgan", emails=["alex@example.com"])
    page = await call(client, "find_contacts", {"provider": "tetherai"}, provider="tetherai")
    (alex,) = [c for c in page["contacts"] if c.get("name") == "Alex Morgan"]
    verified = await call(
        client,
        "set_verification",
        {"contact_id": alex["id"], "type": "email", "value": "alex@example.com", "verified": True},
        provider="tetherai",
    )
    assert (verified["message"], verified["contact_id"]) == ("Email verified", alex["id"])
    contact = await call(client, "get_contact", {"provider": "tetherai", "contact_id": alex["id"]}, provider="tetherai")
    (method,) = [m for m in contact["methods"] if m["value"] == "alex@example.com"]
    assert method["verified"] is True

    # Blooio: find by email, attach an identity to the contact found.
    seeded = CASES["blooio"].seed(fakes["blooio"], 3)
    found = await call(client, "find_contacts", {"provider": "blooio", "email": "sam3@example.com"}, provider="blooio")
    (sam,) = found["contacts"]
    attached = await call(
        client,
        "attach_identity",
        {"contact_id": sam["id"], "identifier": "sam3@example.com", "channel_type": "blooio"},
        provider="blooio",
    )
    assert (attached["contact_id"], attached["created"]) == (seeded.id, False)
