"""get_contact and find_contacts through a real MCP client, one provider enabled at a time, against its fake on
127.0.0.1: found, not found, a malformed id, an unsupported filter, and pagination where the API has it; and the
provider's words reach neither the result nor the log with our secrets in them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from contact_mcp import build_server, load_settings
from contact_mcp.redact import REDACTED
from tests.fakes.harness import Fault
from tests.providers.cases import CASES, ProviderCase, push
from tests.results import error_of

pytestmark = pytest.mark.anyio


@pytest.fixture
async def mcp(case: ProviderCase, fake: Any, base_url: str, db_path: Path) -> AsyncIterator[Client]:
    settings = load_settings(**case.settings(base_url, str(db_path), read_timeout_s=2.0))
    async with Client(build_server(settings)) as client:
        yield client


def find_arguments(case: ProviderCase, seeded_find: Any) -> dict[str, Any]:
    names = ("email", "phone", "username", "user_id", "query")
    return {name: getattr(seeded_find, name) for name in names if getattr(seeded_find, name) is not None}


async def test_reads_are_listed_and_name_the_provider(case: ProviderCase, mcp: Client) -> None:
    tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
    display = {"tetherai": "TetherAI"}.get(case.name, case.name.capitalize())
    for name in ("get_contact", "find_contacts"):
        description = tools[name].description or ""
        assert description.endswith(f"Provider: {display}."), description


async def test_get_contact_finds_the_contact(case: ProviderCase, fake: Any, mcp: Client) -> None:
    seeded = case.seed(fake, 1)
    result = await mcp.call_tool("get_contact", {"contact_id": f"  {seeded.id} "})
    assert result.is_error is False, result
    content = result.structured_content or {}
    assert content["provider"] == case.name
    assert {k: content.get(k) for k in seeded.expected} == seeded.expected


async def test_get_contact_of_an_unknown_id_is_not_found(case: ProviderCase, mcp: Client) -> None:
    error = error_of(await mcp.call_tool("get_contact", {"contact_id": case.missing_id}))
    assert (error["code"], error["field"], error["provider"]) == ("not_found", "contact_id", case.name)


async def test_get_contact_of_a_malformed_id_is_invalid(case: ProviderCase, fake: Any, mcp: Client) -> None:
    error = error_of(await mcp.call_tool("get_contact", {"contact_id": case.bad_id}))
    assert (error["code"], error["field"], error["provider"]) == ("invalid_argument", "contact_id", case.name)
    assert list(fake.requests) == []


async def test_find_contacts_finds_the_contact_and_its_id_reads_back(
    case: ProviderCase, fake: Any, mcp: Client
) -> None:
    seeded = case.seed(fake, 1)
    found = await mcp.call_tool("find_contacts", find_arguments(case, seeded.find))
    assert found.is_error is False, found
    ids = [c["id"] for c in (found.structured_content or {})["contacts"]]
    assert seeded.id in ids
    again = await mcp.call_tool("get_contact", {"contact_id": seeded.id})
    assert (again.structured_content or {})["id"] == seeded.id


async def test_an_unsupported_filter_is_invalid_and_names_what_the_provider_can_do(
    case: ProviderCase, fake: Any, mcp: Client
) -> None:
    value = "someone@example.com" if case.unsupported == "email" else "someone"
    error = error_of(await mcp.call_tool("find_contacts", {case.unsupported: value}))
    assert (error["code"], error["field"], error["provider"]) == ("invalid_argument", case.unsupported, case.name)
    assert "hint" in error
    assert list(fake.requests) == []


async def test_pages_follow_next_cursor(case: ProviderCase, fake: Any, mcp: Client) -> None:
    seeded = [case.seed(fake, n) for n in range(3)]
    if not case.paginates:
        result = await mcp.call_tool("find_contacts", {**find_arguments(case, seeded[0].find), "cursor": "abc"})
        assert error_of(result)["field"] == "cursor"
        return
    arguments: dict[str, Any] = {"limit": 2, **({"query": "sam"} if case.name == "blooio" else {})}
    first = (await mcp.call_tool("find_contacts", arguments)).structured_content or {}
    assert len(first["contacts"]) == 2 and first.get("next_cursor")
    second = (await mcp.call_tool("find_contacts", {**arguments, "cursor": first["next_cursor"]})).structured_content
    assert second is not None and "next_cursor" not in second
    assert sorted(c["id"] for c in first["contacts"] + second["contacts"]) == sorted(s.id for s in seeded)
    forged = error_of(await mcp.call_tool("find_contacts", {**arguments, "cursor": "OTk5OTk5OTk5OTk5OTk5OTk5OQ"}))
    assert (forged["code"], forged["field"]) == ("invalid_argument", "cursor")


async def test_a_provider_quoting_our_key_reaches_neither_the_result_nor_the_log(
    case: ProviderCase, fake: Any, mcp: Client, caplog: pytest.LogCaptureFixture
) -> None:
    quoted = f"Invalid API key provided: Bearer {case.api_key}"
    push(fake, Fault("status", status=401, body={"error": {"code": "invalid_api_key", "message": quoted}}))
    with caplog.at_level(logging.DEBUG, logger="contact_mcp"):
        result = await mcp.call_tool("get_contact", {"contact_id": case.missing_id})
    error = error_of(result)
    assert error["code"] == "unauthorized"
    assert error["message"] == f"Invalid API key provided: Bearer {REDACTED}"
    shown = str(result.model_dump()) + caplog.text
    assert case.api_key not in shown
    assert REDACTED in caplog.text


async def test_several_providers_start_together_and_all_serve_the_reads(fakes: Any, db_path: Path) -> None:
    """Every enabled provider serves the reads (which then take a `provider` argument, see test_plans_mcp.py); each
    write tool stays with the one provider that serves it (before, two providers serving the reads refused to start)."""
    settings: dict[str, Any] = {}
    for name in ("featurebase", "blooio", "tetherai"):
        settings.update(CASES[name].settings(fakes.get(name)[1], str(db_path)))
    settings["providers"] = "featurebase,blooio,tetherai"
    async with Client(build_server(load_settings(**settings))) as client:
        tools = {tool.name: tool.description or "" for tool in (await client.list_tools()).tools}
    assert set(tools) == {
        "upsert_contact",
        "attach_identity",
        "set_verification",
        "delete_contact",
        "detach_identity",
        "get_contact",
        "find_contacts",
    }
    assert tools["get_contact"].endswith("Provider: Featurebase, Blooio, TetherAI.")
    assert tools["attach_identity"].endswith("Provider: Blooio.")
