"""`create_contact` served by Protocol through the MCP server: in-process, and end to end over stdio."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from mcp import Client

from contact_mcp import build_server, load_settings
from tests.fakes.harness import Fault, RecordedRequest
from tests.fakes.protocol import API_KEY, ProtocolFake
from tests.results import error_of
from tests.stdio_server import server_params

pytestmark = pytest.mark.anyio

PROVIDER = "protocol"

KEY = API_KEY


def server_for(base_url: str, key: str = KEY) -> Any:
    settings = load_settings(providers="protocol", protocol_api_key=key, protocol_base_url=base_url, read_timeout_s=0.5)
    return build_server(settings)


@pytest.fixture
async def mcp(fake: ProtocolFake, base_url: str) -> AsyncIterator[Client]:
    async with Client(server_for(base_url), raise_exceptions=True) as client:
        yield client


def posts(fake: ProtocolFake) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method == "POST"]


# ---------- in-process ----------


async def test_create_contact_and_the_reads_are_listed_and_name_protocol(mcp: Client) -> None:
    tool, *others = (await mcp.list_tools()).tools

    assert [t.name for t in others] == ["delete_contact", "get_contact", "find_contacts"]

    assert tool.name == "create_contact"
    assert tool.description is not None
    assert tool.description.endswith("Provider: Protocol.")
    assert tool.annotations is not None
    assert (tool.annotations.idempotent_hint, tool.annotations.open_world_hint) == (False, True)


async def test_create_contact_normalises_the_phone_and_returns_the_canonical_result(
    mcp: Client, fake: ProtocolFake
) -> None:
    result = await mcp.call_tool(
        "create_contact", {"username": " alice ", "phone_number": "+1 (415) 555-0123", "display_name": "  "}
    )

    assert result.is_error is False
    stored = fake.by_username("alice")
    assert stored is not None
    assert result.structured_content is not None
    assert {k: v for k, v in result.structured_content.items() if k != "created_at"} == {
        "provider": "protocol",
        "id": stored["id"],
        "username": "alice",
        "phone_number": "+14155550123",
        "display_name": "alice",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result.structured_content["created_at"])
    assert [r.json() for r in posts(fake)] == [{"username": "alice", "phone_number": "+14155550123"}]


async def test_duplicate_username_is_a_conflict_result_with_the_existing_id(mcp: Client, fake: ProtocolFake) -> None:
    existing = fake.seed("alice")

    result = await mcp.call_tool("create_contact", {"username": "alice", "phone_number": "+14155550123"})

    assert error_of(result) == {
        "code": "conflict",
        "message": "A contact with this username already exists.",
        "field": "username",
        "hint": f"Contact 'alice' already exists (id {existing['id']}): use it or pick another username",
        "retryable": False,
        "provider": "protocol",
        "status": 409,
        "existing_id": existing["id"],
    }


async def test_refused_key_is_an_unauthorized_result(fake: ProtocolFake, base_url: str) -> None:
    async with Client(server_for(base_url, key="pk_wrong"), raise_exceptions=True) as client:
        result = await client.call_tool("create_contact", {"username": "alice", "phone_number": "+14155550123"})

    error = error_of(result)
    assert (error["code"], error["status"], error["retryable"]) == ("unauthorized", 401, False)
    assert "PROTOCOL_API_KEY" in error["hint"]
    assert "pk_wrong" not in str(result)


async def test_outage_during_create_is_reported_once_as_an_unknown_outcome(mcp: Client, fake: ProtocolFake) -> None:
    fake.push(Fault("status", status=503, body={"error": {"code": "unavailable", "message": "down"}}, times=5))

    result = await mcp.call_tool("create_contact", {"username": "alice", "phone_number": "+14155550123"})

    error = error_of(result)
    assert (error["code"], error["retryable"]) == ("provider_unavailable", False)
    assert "GET /v1/contacts?username=alice" in error["hint"]
    assert "GET /v1/contacts?username=alice" in result.content[0].text  # type: ignore[union-attr]
    assert len(posts(fake)) == 1


async def test_timeout_is_a_non_retryable_timeout_result(mcp: Client, fake: ProtocolFake) -> None:
    fake.push(Fault("slow", delay=0.8))

    result = await mcp.call_tool("create_contact", {"username": "alice", "phone_number": "+14155550123"})

    error = error_of(result)
    assert (error["code"], error["retryable"]) == ("timeout", False)
    assert "GET /v1/contacts?username=alice" in error["hint"]
    with anyio.fail_after(5):
        # The slow create still lands in the fake (another thread); let it, so the next test starts clean.
        while fake.by_username("alice") is None:  # noqa: ASYNC110
            await anyio.sleep(0.05)


async def test_invalid_phone_is_rejected_before_any_request(mcp: Client, fake: ProtocolFake) -> None:
    result = await mcp.call_tool("create_contact", {"username": "alice", "phone_number": "not a phone"})

    error = error_of(result)
    assert (error["code"], error["field"]) == ("invalid_argument", "phone_number")
    assert fake.requests == []


async def test_provider_invalid_request_is_an_invalid_argument_result(mcp: Client, fake: ProtocolFake) -> None:
    body = {"error": {"code": "invalid_request", "message": "phone_number is required."}}
    fake.push(Fault("status", status=400, body=body))

    result = await mcp.call_tool("create_contact", {"username": "alice", "phone_number": "+14155550123"})

    error = error_of(result)
    assert (error["code"], error["field"], error["message"], error["status"]) == (
        "invalid_argument",
        "phone_number",
        "phone_number is required.",
        400,
    )


# ---------- end to end: the server as a stdio subprocess ----------


@pytest.mark.slow
async def test_stdio_server_creates_and_reports_failures_as_structured_results(
    fake: ProtocolFake, base_url: str
) -> None:
    env = {"CONTACT_MCP_PROVIDERS": "protocol", "PROTOCOL_API_KEY": KEY, "PROTOCOL_BASE_URL": base_url}
    taken = fake.seed("taken")
    args = {"username": "alice", "phone_number": "+14155550123"}

    with anyio.fail_after(30):
        async with Client(server_params(env)) as client:
            created = await client.call_tool("create_contact", args)
            conflict = await client.call_tool("create_contact", {**args, "username": "taken"})
            fake.push(Fault("status", status=401, body={"error": {"code": "unauthorized", "message": "Bad key."}}))
            unauthorized = await client.call_tool("create_contact", {**args, "username": "bob"})
            limited = {"error": {"code": "rate_limited", "message": "Slow down."}}
            fake.push(Fault("status", status=429, body=limited, headers={"Retry-After": "2"}))
            rate_limited = await client.call_tool("create_contact", {**args, "username": "bob"})
            fake.push(Fault("status", status=502, body={"error": {"code": "bad_gateway", "message": "Upstream."}}))
            outage = await client.call_tool("create_contact", {**args, "username": "bob"})
            invalid = await client.call_tool("create_contact", {**args, "phone_number": "12"})

    assert created.is_error is False
    assert created.structured_content is not None
    assert created.structured_content["username"] == "alice"
    assert error_of(conflict)["existing_id"] == taken["id"]
    assert error_of(unauthorized)["code"] == "unauthorized"
    assert (error_of(rate_limited)["code"], error_of(rate_limited)["retry_after_s"]) == ("rate_limited", 2.0)
    assert (error_of(outage)["code"], error_of(outage)["retryable"]) == ("provider_unavailable", False)
    assert error_of(invalid)["field"] == "phone_number"
    assert len([r for r in posts(fake) if r.json()["username"] == "bob"]) == 3
