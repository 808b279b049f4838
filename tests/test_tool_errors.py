"""Bad input from an agent gets a structured `isError` result it can act on — over every transport.

Each case names the tool, the arguments, and the code and field the agent must be told. The same table runs
in-memory (one test per case), over a stdio subprocess and over streamable HTTP with a bearer token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult

from contact_mcp import build_server, load_settings
from tests.http_server import http_client, http_server
from tests.stdio_server import server_params

pytestmark = pytest.mark.anyio

UNKNOWN_UUID = "6f1c2a0e-8a3b-4c5d-9e7f-0a1b2c3d4e5f"


@pytest.fixture(autouse=True)
def _retries_off() -> None:
    """The conftest switches stamina to testing mode; these tests need no retries at all."""


CASES: list[tuple[str, str, dict[str, Any], str, str | None]] = [
    # id, tool, arguments, code, field
    (
        "phone-invalid",
        "create_contact",
        {"username": "a", "phone_number": "+1415555012"},
        "invalid_argument",
        "phone_number",
    ),
    (
        "phone-no-country",
        "create_contact",
        {"username": "a", "phone_number": "4155550123"},
        "invalid_argument",
        "phone_number",
    ),
    (
        "phone-letters",
        "create_contact",
        {"username": "a", "phone_number": "call me"},
        "invalid_argument",
        "phone_number",
    ),
    (
        "username-wrong-type",
        "create_contact",
        {"username": 42, "phone_number": "+14155550123"},
        "invalid_argument",
        "username",
    ),
    ("username-missing", "create_contact", {"phone_number": "+14155550123"}, "invalid_argument", "username"),
    (
        "username-too-long",
        "create_contact",
        {"username": "u" * 101, "phone_number": "+14155550123"},
        "invalid_argument",
        "username",
    ),
    (
        "avatar-not-url",
        "create_contact",
        {"username": "a", "phone_number": "+14155550123", "avatar_url": "me.png"},
        "invalid_argument",
        "avatar_url",
    ),
    ("email-malformed", "upsert_contact", {"email": "not-an-email"}, "invalid_argument", "email"),
    ("email-no-domain-dot", "upsert_contact", {"email": "a@localhost"}, "invalid_argument", "email"),
    ("upsert-no-key", "upsert_contact", {"name": "Ann"}, "invalid_argument", "email"),
    ("name-too-long", "upsert_contact", {"email": "a@example.com", "name": "n" * 501}, "invalid_argument", "name"),
    (
        "locale-too-long",
        "upsert_contact",
        {"email": "a@example.com", "locale": "en-GB-oxendict"},
        "invalid_argument",
        "locale",
    ),
    (
        "company-missing-name",
        "upsert_contact",
        {"email": "a@example.com", "companies": [{"id": "c1"}]},
        "invalid_argument",
        "companies[0].name",
    ),
    (
        "company-unknown-key",
        "upsert_contact",
        {"email": "a@example.com", "companies": [{"id": "c", "name": "C", "ceo": "x"}]},
        "invalid_argument",
        "companies[0].ceo",
    ),
    (
        "company-negative-spend",
        "upsert_contact",
        {"email": "a@example.com", "companies": [{"id": "c", "name": "C", "monthly_spend": -1}]},
        "invalid_argument",
        "companies[0].monthly_spend",
    ),
    (
        "companies-wrong-type",
        "upsert_contact",
        {"email": "a@example.com", "companies": "Acme"},
        "invalid_argument",
        "companies",
    ),
    (
        "custom-field-object",
        "upsert_contact",
        {"email": "a@example.com", "custom_fields": {"k": {"nested": 1}}},
        "invalid_argument",
        "custom_fields.k",
    ),
    (
        "picture-not-url",
        "upsert_contact",
        {"email": "a@example.com", "profile_picture": "ftp://x/y.png"},
        "invalid_argument",
        "profile_picture",
    ),
    ("upsert-phone-invalid", "upsert_contact", {"email": "a@example.com", "phone": "12"}, "invalid_argument", "phone"),
    (
        "channel-type-unknown",
        "attach_identity",
        {"contact_id": UNKNOWN_UUID, "identifier": "+14155550123", "channel_type": "telegram"},
        "invalid_argument",
        "channel_type",
    ),
    (
        "amb-without-channel-id",
        "attach_identity",
        {"contact_id": UNKNOWN_UUID, "identifier": "+14155550123", "channel_type": "amb"},
        "invalid_argument",
        "channel_id",
    ),
    (
        "identifier-neither",
        "attach_identity",
        {"contact_id": UNKNOWN_UUID, "identifier": "hello"},
        "invalid_argument",
        "identifier",
    ),
    (
        "identity-unknown-contact",
        "attach_identity",
        {"contact_id": UNKNOWN_UUID, "identifier": "a@example.com"},
        "not_found",
        "contact_id",
    ),
    (
        "end-user-not-uuid",
        "attach_contact",
        {"end_user_id": "nope", "channel": "email", "value": "a@example.com"},
        "invalid_argument",
        "end_user_id",
    ),
    (
        "end-user-unknown",
        "attach_contact",
        {"end_user_id": UNKNOWN_UUID, "channel": "email", "value": "a@example.com"},
        "not_found",
        "end_user_id",
    ),
    (
        "attach-email-malformed",
        "attach_contact",
        {"end_user_id": UNKNOWN_UUID, "channel": "email", "value": "@@"},
        "invalid_argument",
        "value",
    ),
    (
        "attach-empty-channel",
        "attach_contact",
        {"end_user_id": UNKNOWN_UUID, "channel": " ", "value": "x"},
        "invalid_argument",
        "channel",
    ),
    ("get-unknown", "get_contact", {"contact_id": UNKNOWN_UUID}, "not_found", "contact_id"),
    ("get-not-uuid", "get_contact", {"contact_id": "ct_123"}, "invalid_argument", "contact_id"),
    (
        "verify-type-unknown",
        "set_verification",
        {"contact_id": UNKNOWN_UUID, "type": "fax", "value": "1", "verified": True},
        "invalid_argument",
        "type",
    ),
    (
        "verify-flag-wrong-type",
        "set_verification",
        {"contact_id": UNKNOWN_UUID, "type": "email", "value": "a@example.com", "verified": [1]},
        "invalid_argument",
        "verified",
    ),
    (
        "verify-bad-instant",
        "set_verification",
        {
            "contact_id": UNKNOWN_UUID,
            "type": "email",
            "value": "a@example.com",
            "verified": True,
            "verified_at": "yesterday",
        },
        "invalid_argument",
        "verified_at",
    ),
    (
        "clear-with-instant",
        "set_verification",
        {
            "contact_id": UNKNOWN_UUID,
            "type": "email",
            "value": "a@example.com",
            "verified": False,
            "verified_at": "2026-01-01T00:00:00Z",
        },
        "invalid_argument",
        "verified_at",
    ),
    (
        "verify-unknown-contact",
        "set_verification",
        {"contact_id": UNKNOWN_UUID, "type": "email", "value": "a@example.com", "verified": True},
        "not_found",
        "contact_id",
    ),
    ("find-limit-zero", "find_contacts", {"limit": 0}, "invalid_argument", "limit"),
    ("find-limit-too-big", "find_contacts", {"limit": 51}, "invalid_argument", "limit"),
    ("find-limit-text", "find_contacts", {"limit": "many"}, "invalid_argument", "limit"),
    ("find-bad-cursor", "find_contacts", {"cursor": "not-a-cursor"}, "invalid_argument", "cursor"),
    ("find-bad-phone", "find_contacts", {"phone": "12"}, "invalid_argument", "phone"),
    ("unknown-argument", "find_contacts", {"emial": "a@example.com"}, "invalid_argument", "emial"),
    ("unknown-tool", "delete_everything", {}, "invalid_argument", None),
]
KNOWN_CODES = {
    "invalid_argument",
    "not_found",
    "conflict",
    "unauthorized",
    "rate_limited",
    "provider_unavailable",
    "timeout",
    "provider_error",
}


def check(case_id: str, result: CallToolResult, code: str, field: str | None) -> None:
    assert result.is_error, f"{case_id}: expected an error result"
    assert result.structured_content is not None, f"{case_id}: no structured error"
    error = result.structured_content["error"]
    assert error["code"] == code, f"{case_id}: {error}"
    assert error.get("field") == field, f"{case_id}: {error}"
    assert error["message"]
    assert isinstance(error["retryable"], bool)
    assert error["code"] in KNOWN_CODES
    if code == "invalid_argument":
        assert error.get("hint"), f"{case_id}: no hint to fix the call"
    text = result.content[0].text if result.content and result.content[0].type == "text" else ""
    assert text.startswith(f"{code}: "), f"{case_id}: {text!r}"
    for raw in ("errors.pydantic.dev", "input_value", "validation error for", "Traceback"):
        assert raw not in text, f"{case_id}: leaked raw text {raw!r}"


@pytest.mark.parametrize(("case_id", "tool", "args", "code", "field"), CASES, ids=[c[0] for c in CASES])
async def test_bad_call_in_memory(
    client: Client, case_id: str, tool: str, args: dict[str, Any], code: str, field: str | None
) -> None:
    check(case_id, await client.call_tool(tool, args), code, field)


async def test_phone_without_country_code_says_how_to_fix(client: Client) -> None:
    result = await client.call_tool("create_contact", {"username": "a", "phone_number": "(415) 555-0123"})
    assert result.structured_content is not None
    hint = result.structured_content["error"]["hint"]
    assert "+" in hint and "CONTACT_MCP_DEFAULT_REGION" in hint


async def test_default_region_lets_national_numbers_through(db_path: Path) -> None:
    settings = load_settings(db=str(db_path), default_region="US")
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("create_contact", {"username": "ann", "phone_number": "(415) 555-0123"})
    assert not result.is_error
    assert result.structured_content is not None
    assert result.structured_content["phone_number"] == "+14155550123"


async def test_bad_calls_change_nothing(client: Client) -> None:
    for _, tool, args, _, _ in CASES:
        await client.call_tool(tool, args)
    page = await client.call_tool("find_contacts", {})
    assert page.structured_content == {"provider": "local", "contacts": []}


async def _run_table(client: Client) -> None:
    for case_id, tool, args, code, field in CASES:
        check(case_id, await client.call_tool(tool, args), code, field)


@pytest.mark.slow
async def test_bad_calls_over_stdio(db_path: Path) -> None:
    async with Client(server_params({"CONTACT_MCP_DB": str(db_path)})) as client:
        await _run_table(client)


@pytest.mark.slow
async def test_bad_calls_over_streamable_http_with_token(db_path: Path) -> None:
    token = "test-token-0123456789"
    env = {"CONTACT_MCP_DB": str(db_path), "CONTACT_MCP_HTTP_TOKEN": token}
    with http_server(env, db_path.parent.parent / "server.log") as base:
        async with http_client(base, token) as client:
            await _run_table(client)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ('{"email": "a@example.com", "custom_fields": {"x": 1e400}}', "custom_fields.x"),
        ('{"email": "a@example.com", "companies": [{"id": "c", "name": "C", "monthly_spend": 1e400}]}', "companies"),
    ],
    ids=["custom-field", "company-spend"],
)
def test_a_number_past_a_float_is_refused_not_stored_as_null(db_path: Path, arguments: str, field: str) -> None:
    # JSON has no infinity, but 1e400 reads as one: it was stored as null, the value silently lost. Written as raw
    # JSON on stdio, since an SDK client would itself send an infinity as null.
    init = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }  # fmt: skip
    lines = [
        json.dumps(init),
        '{"jsonrpc": "2.0", "method": "notifications/initialized"}',
        '{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "upsert_contact", "arguments": '
        + arguments
        + "}}",
        '{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "find_contacts", "arguments": {}}}',
    ]
    done = subprocess.run(
        [sys.executable, "-m", "contact_mcp", "serve"],
        input="\n".join(lines).encode() + b"\n",
        env={**os.environ, "CONTACT_MCP_DB": str(db_path)},
        capture_output=True,
        timeout=60,
        check=True,
    )
    replies = {reply["id"]: reply for reply in map(json.loads, done.stdout.splitlines())}
    refused = replies[2]["result"]
    assert refused["isError"] is True
    assert refused["structuredContent"]["error"]["code"] == "invalid_argument"
    assert refused["structuredContent"]["error"]["field"].startswith(field)
    assert replies[3]["result"]["structuredContent"]["contacts"] == []
