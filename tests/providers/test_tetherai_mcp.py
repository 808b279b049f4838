"""`set_verification` served by TetherAI through the MCP server: in-process and as a stdio subprocess."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import TextContent

from contact_mcp import build_server, load_settings
from tests.confirming import User
from tests.fakes.harness import Fault
from tests.fakes.tetherai import TOKEN, TetherAIFake, user_id_for
from tests.stdio_server import server_params

pytestmark = pytest.mark.anyio

PROVIDER = "tetherai"

PHONE = "+14165550100"
EMAIL = "alex.morgan@example.com"
WHEN = "2026-05-20T15:04:01.135Z"


@pytest.fixture
def contact_id(fake: TetherAIFake) -> str:
    return fake.add_contact(phones=[PHONE], emails=[EMAIL])


def _server(base_url: str, tmp_path: Path, api_key: str = TOKEN) -> Any:
    settings = load_settings(
        providers="tetherai",
        tetherai_api_key=api_key,
        tetherai_base_url=base_url,
        db=str(tmp_path / "contacts.db"),
        default_region="CA",
        read_timeout_s=2.0,
    )
    return build_server(settings)


@pytest.fixture
async def mcp(base_url: str, tmp_path: Path) -> AsyncIterator[Client]:
    async with Client(_server(base_url, tmp_path), raise_exceptions=True) as client:
        yield client


def _error(result: Any) -> dict[str, Any]:
    assert result.is_error is True
    error: dict[str, Any] = result.structured_content["error"]
    return error


# ---------- in-process ----------


async def test_set_verification_and_the_reads_are_listed_and_name_tetherai(mcp: Client) -> None:
    tools = (await mcp.list_tools()).tools

    assert [tool.name for tool in tools] == ["set_verification", "get_contact", "find_contacts"]
    tool = tools[0]
    assert tool.description is not None
    assert tool.description.endswith("Provider: TetherAI.")
    assert tool.annotations is not None
    assert tool.annotations.open_world_hint is True


async def test_verify_a_nationally_written_phone(mcp: Client, fake: TetherAIFake, contact_id: str) -> None:
    result = await mcp.call_tool(
        "set_verification",
        {
            "contact_id": contact_id,
            "type": "phone",
            "value": "(416) 555-0100",
            "verified": True,
            "verification_source": "webchat",
            "verified_at": "2026-05-20T11:04:01.135-04:00",
        },
    )

    assert result.is_error is False
    assert result.structured_content == {
        "provider": "tetherai",
        "message": "Phone number verified",
        "contact_id": contact_id,
        "type": "phone",
        "value": PHONE,
        "verified": True,
        "verified_at": WHEN,
        "verified_by": user_id_for(TOKEN),
        "verification_source": "webchat",
    }
    assert fake.requests[0].json() == {
        "type": "phone",
        "value": PHONE,
        "verifiedAt": WHEN,
        "verificationSource": "webchat",
    }


async def test_clear_an_email_written_in_capitals(mcp: Client, fake: TetherAIFake, contact_id: str) -> None:
    args = {"contact_id": contact_id, "type": "email", "value": "Alex.Morgan@EXAMPLE.com"}
    await mcp.call_tool("set_verification", {**args, "verified": True})
    result = await mcp.call_tool("set_verification", {**args, "verified": False, "confirm": True})

    assert result.structured_content == {
        "provider": "tetherai",
        "message": "Email verification cleared",
        "contact_id": contact_id,
        "type": "email",
        "value": EMAIL,
        "verified": False,
    }
    assert fake.requests[-1].json() == {"type": "email", "value": EMAIL, "verifiedAt": None}


async def test_unknown_contact_is_a_structured_not_found(mcp: Client, fake: TetherAIFake) -> None:
    result = await mcp.call_tool(
        "set_verification", {"contact_id": "f" * 24, "type": "phone", "value": PHONE, "verified": True}
    )

    assert _error(result) == {
        "code": "not_found",
        "message": "Contact not found",
        "field": "contact_id",
        "hint": "No TetherAI contact has this contact_id; check the id (the contact's 24-hex _id, from find_contacts)",
        "retryable": False,
        "provider": "tetherai",
        "status": 404,
    }


async def test_malformed_contact_id_is_refused_without_a_request(mcp: Client, fake: TetherAIFake) -> None:
    result = await mcp.call_tool(
        "set_verification", {"contact_id": "not-an-id", "type": "phone", "value": PHONE, "verified": True}
    )

    error = _error(result)
    assert (error["code"], error["field"], error["provider"]) == ("invalid_argument", "contact_id", "tetherai")
    assert fake.requests == []


async def test_value_not_on_contact_names_the_values_it_has(mcp: Client, fake: TetherAIFake, contact_id: str) -> None:
    result = await mcp.call_tool(
        "set_verification", {"contact_id": contact_id, "type": "phone", "value": "+14165550123", "verified": True}
    )

    error = _error(result)
    assert (error["code"], error["field"], error["status"]) == ("invalid_argument", "value", 400)
    assert error["hint"] == f"value must be one of the contact's phone numbers: {PHONE}"
    (text,) = result.content
    assert isinstance(text, TextContent)
    assert PHONE in text.text  # the text a model reads says the same


async def test_refused_token_is_unauthorized(
    base_url: str, tmp_path: Path, fake: TetherAIFake, contact_id: str
) -> None:
    async with Client(_server(base_url, tmp_path, api_key="revoked-token"), raise_exceptions=True) as client:
        result = await client.call_tool(
            "set_verification", {"contact_id": contact_id, "type": "phone", "value": PHONE, "verified": True}
        )

    error = _error(result)
    assert (error["code"], error["status"], error["retryable"]) == ("unauthorized", 401, False)
    assert "revoked-token" not in str(result)


async def test_outage_is_retryable_provider_unavailable(mcp: Client, fake: TetherAIFake, contact_id: str) -> None:
    fake.app.push(Fault("status", status=503, body={"error": {"code": "DOWN", "message": "maintenance"}}, times=10))

    result = await mcp.call_tool(
        "set_verification", {"contact_id": contact_id, "type": "phone", "value": PHONE, "verified": True}
    )

    error = _error(result)
    assert (error["code"], error["message"], error["retryable"]) == ("provider_unavailable", "maintenance", True)
    assert len(fake.requests) == 3  # the default CONTACT_MCP_RETRY_ATTEMPTS


# ---------- end to end: the server as a stdio subprocess ----------


@pytest.mark.slow
async def test_stdio_server_verifies_and_reports_failures(
    base_url: str, fake: TetherAIFake, contact_id: str, tmp_path: Path
) -> None:
    env = {
        "CONTACT_MCP_PROVIDERS": "tetherai",
        "TETHERAI_API_KEY": TOKEN,
        "TETHERAI_BASE_URL": base_url,
        "CONTACT_MCP_DB": str(tmp_path / "contacts.db"),
        "CONTACT_MCP_RETRY_WAIT_INITIAL": "0.01",
        "CONTACT_MCP_RETRY_WAIT_MAX": "0.02",
    }
    args = {"contact_id": contact_id, "type": "phone", "value": PHONE, "verified": True}
    with anyio.fail_after(60):
        async with Client(server_params(env)) as client:
            ok = await client.call_tool("set_verification", {**args, "verification_source": "admin-manual"})
            fake.app.push(Fault("status", status=401, body={"message": "jwt expired", "code": "UNAUTHORIZED"}))
            unauthorized = await client.call_tool("set_verification", args)
            not_found = await client.call_tool("set_verification", {**args, "contact_id": "0" * 24})
            wrong_value = await client.call_tool("set_verification", {**args, "value": "+14165550123"})
            fake.app.push(Fault("status", status=429, body={"message": "slow down"}, headers={"Retry-After": "90"}))
            limited = await client.call_tool("set_verification", args)

    assert ok.is_error is False
    assert ok.structured_content is not None
    assert (ok.structured_content["message"], ok.structured_content["verification_source"]) == (
        "Phone number verified",
        "admin-manual",
    )
    assert (_error(unauthorized)["code"], _error(unauthorized)["message"]) == ("unauthorized", "jwt expired")
    assert (_error(not_found)["code"], _error(not_found)["field"]) == ("not_found", "contact_id")
    assert (_error(wrong_value)["code"], _error(wrong_value)["field"]) == ("invalid_argument", "value")
    assert (_error(limited)["code"], _error(limited)["retry_after_s"]) == ("rate_limited", 90.0)
    assert fake.entry(contact_id, "phone", PHONE)["verificationSource"] == "admin-manual"


# ---------- confirmation ----------


async def test_clearing_asks_the_user_naming_tetherai_and_a_no_writes_nothing(
    base_url: str, tmp_path: Path, fake: TetherAIFake, contact_id: str
) -> None:
    server = _server(base_url, tmp_path)
    args = {"contact_id": contact_id, "type": "email", "value": EMAIL}
    async with Client(server) as plain:
        verified = await plain.call_tool("set_verification", {**args, "verified": True})
        assert not verified.is_error, verified.content
    sent = len(fake.requests)
    user = User(action="decline")
    async with Client(server, elicitation_callback=user) as asking:
        result = await asking.call_tool("set_verification", {**args, "verified": False})

    assert _error(result)["code"] == "declined"
    (question,) = user.asked
    assert f"Clear the verification of email {EMAIL} on contact Alex Morgan (id {contact_id}) in TetherAI" in question
    # The reads that described the call (once per round at 2026-07-28: the question, then the answer); no write.
    assert {request.method for request in fake.requests[sent:]} == {"GET"}
    assert fake.entry(contact_id, "email", EMAIL)["verifiedAt"] is not None
