"""`attach_identity` served by Blooio through the MCP server: in-process (`Client(server)`) and end to end (the real
`python -m contact_mcp serve` over stdio), both against the Blooio fake on 127.0.0.1."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult

from contact_mcp import build_server, load_settings
from tests.fakes.blooio import DEFAULT_KEY, BlooioFake
from tests.fakes.harness import Fault
from tests.results import error_of, text
from tests.stdio_server import server_params

pytestmark = pytest.mark.anyio

PROVIDER = "blooio"

KEY = DEFAULT_KEY
_TLS = ssl.create_default_context()  # one TLS context for every in-process server: building one costs ~0.15 s


def blooio_server(base_url: str, db_path: Path) -> Client:
    settings = load_settings(
        providers="blooio", blooio_api_key=KEY, blooio_base_url=base_url, db=str(db_path), read_timeout_s=0.5
    )
    transport = httpx2.AsyncHTTPTransport(verify=_TLS)
    return Client(build_server(settings, transports={"blooio": transport}))


def posts(fake: BlooioFake) -> int:
    return sum(r.method == "POST" for r in fake.requests)


# ---------- in-process ----------


async def test_attach_identity_and_the_reads_are_listed_and_name_blooio(base_url: str, db_path: Path) -> None:
    async with blooio_server(base_url, db_path) as client:
        tools = (await client.list_tools()).tools
    assert [tool.name for tool in tools] == [
        "attach_identity",
        "delete_contact",
        "detach_identity",
        "get_contact",
        "find_contacts",
    ]
    assert tools[0].description is not None and tools[0].description.endswith("Provider: Blooio.")
    assert tools[0].annotations is not None and tools[0].annotations.open_world_hint is True


async def test_attach_identity_returns_the_canonical_result_then_reports_it_attached(
    base_url: str, db_path: Path, fake: BlooioFake
) -> None:
    contact = fake.seed_contact("Ada")
    fake.now_ms = lambda: 1_718_000_000_123
    arguments = {"contact_id": f" {contact} ", "identifier": " +1 415-555-0123 ", "channel_type": "whatsapp"}
    async with blooio_server(base_url, db_path) as client:
        first = await client.call_tool("attach_identity", arguments)
        again = await client.call_tool("attach_identity", arguments)
    (stored,) = fake.identities(contact)
    assert first.is_error is False
    assert first.structured_content == {
        "provider": "blooio",
        "created": True,
        "id": stored.id,
        "contact_id": contact,
        "channel_type": "whatsapp",
        "identifier": "+14155550123",
        "created_at": "2024-06-10T06:13:20.123Z",
    }
    assert text(first) == f"Attached identity +14155550123 on whatsapp to contact {contact} (id {stored.id})."
    assert again.structured_content is not None
    assert (again.structured_content["created"], again.structured_content["id"]) == (False, stored.id)
    assert text(again).startswith("Already attached:")
    assert fake.requests[0].json() == {"identifier": "+14155550123", "channel_type": "whatsapp"}
    assert posts(fake) == 2


async def test_email_identity_with_amb_channel_reaches_blooio_normalised(
    base_url: str, db_path: Path, fake: BlooioFake
) -> None:
    contact = fake.seed_contact()
    arguments = {"contact_id": contact, "identifier": "Ada@Example.COM", "channel_type": "amb", "channel_id": "ch_1"}
    async with blooio_server(base_url, db_path) as client:
        result = await client.call_tool("attach_identity", arguments)
    assert result.is_error is False
    assert fake.requests[-1].json() == {"identifier": "ada@example.com", "channel_type": "amb", "channel_id": "ch_1"}


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        pytest.param({"contact_id": "../me", "identifier": "+14155550123"}, "contact_id", id="contact-id"),
        pytest.param({"contact_id": "ct_abc", "identifier": "+1 415"}, "identifier", id="identifier"),
        pytest.param(
            {"contact_id": "ct_abc", "identifier": "+14155550123", "channel_type": "amb"}, "channel_id", id="amb"
        ),
        pytest.param(
            {"contact_id": "ct_abc", "identifier": "+14155550123", "channel_type": "sms"}, "channel_type", id="enum"
        ),
    ],
)
async def test_bad_arguments_are_refused_without_calling_blooio(
    base_url: str, db_path: Path, fake: BlooioFake, arguments: dict[str, str], field: str
) -> None:
    async with blooio_server(base_url, db_path) as client:
        result = await client.call_tool("attach_identity", arguments)
    error = error_of(result)
    assert (error["code"], error["field"], error["provider"]) == ("invalid_argument", field, "blooio")
    assert fake.requests == []


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        pytest.param(
            "unknown-contact",
            {"code": "not_found", "status": 404, "field": "contact_id", "retryable": False},
            id="unknown-contact",
        ),
        pytest.param(
            "rotated-key",
            {"code": "unauthorized", "status": 401, "message": "Invalid or missing API key."},
            id="rotated-key",
        ),
        pytest.param(
            "blocked-key",
            {"code": "unauthorized", "status": 403, "message": "This API key is blocked."},
            id="blocked-key",
        ),
        pytest.param(
            "chat-closed",
            {"code": "conflict", "status": 409, "message": "The chat with this contact is closed."},
            id="chat-closed",
        ),
        pytest.param(
            "blooio-422",
            {"code": "invalid_argument", "status": 422, "message": "identifier is required"},
            id="blooio-422",
        ),
        pytest.param(
            "rate-limited",
            {"code": "rate_limited", "status": 429, "retryable": True, "retry_after_s": 30.0},
            id="rate-limited",
        ),
        pytest.param("outage", {"code": "provider_unavailable", "status": 503, "retryable": False}, id="outage"),
        pytest.param("slow", {"code": "timeout", "retryable": False}, id="slow"),
    ],
)
async def test_blooio_failures_are_structured_error_results(
    base_url: str, db_path: Path, fake: BlooioFake, setup: str, expected: dict[str, Any]
) -> None:
    contact = fake.seed_contact()
    if setup == "unknown-contact":
        contact = "ct_unknown"
    elif setup == "rotated-key":
        fake.api_key = "bl_live_rotated"
    elif setup == "blocked-key":
        fake.key_blocked = True
    elif setup == "chat-closed":
        fake.close_chat(contact)
    elif setup == "blooio-422":
        body = {"error": {"code": "validation_error", "message": "identifier is required", "details": {}}}
        fake.push(Fault("status", status=422, body=body))
    elif setup == "rate-limited":
        body = {"error": {"code": "rate_limited", "message": "Too many requests."}}
        fake.push(Fault("status", status=429, body=body, headers={"Retry-After": "30"}, times=10))
    elif setup == "outage":
        fake.push(Fault("status", status=503, body={"error": {"code": "unavailable", "message": "Down"}}, times=10))
    else:
        fake.push(Fault("slow", delay=1.0, times=10))
    async with blooio_server(base_url, db_path) as client:
        result = await client.call_tool("attach_identity", {"contact_id": contact, "identifier": "+14155550123"})
    error = error_of(result)
    assert error["provider"] == "blooio"
    assert error.get("hint")
    assert {key: error.get(key) for key in expected} == expected
    assert error["code"] in text(result)
    assert posts(fake) == 1, "the attach is never replayed"
    assert KEY not in text(result) + repr(result.structured_content)


# ---------- end to end: the server as a subprocess over stdio ----------


@pytest.mark.slow
async def test_stdio_server_attaches_and_reports_blooios_failures(
    base_url: str, fake: BlooioFake, tmp_path: Path
) -> None:
    env = {
        "CONTACT_MCP_PROVIDERS": "blooio",
        "BLOOIO_API_KEY": KEY,
        "BLOOIO_BASE_URL": base_url,
        "CONTACT_MCP_DB": str(tmp_path / "contacts.db"),
        "CONTACT_MCP_RETRY_WAIT_INITIAL": "0",
        "CONTACT_MCP_RETRY_WAIT_MAX": "0",
    }
    params = server_params(env)
    params.env = {**(params.env or {}), "CONTACT_MCP_LOG_LEVEL": "DEBUG"}
    stderr_path = tmp_path / "server.stderr"
    contact = fake.seed_contact("Ada")

    async def attach(client: Client, contact_id: str, identifier: str = "ada@example.com") -> CallToolResult:
        return await client.call_tool("attach_identity", {"contact_id": contact_id, "identifier": identifier})

    with stderr_path.open("w") as errlog, anyio.fail_after(60):
        async with Client(stdio_client(params, errlog=errlog)) as client:
            ok = await attach(client, contact)
            again = await attach(client, contact)
            missing = error_of(await attach(client, "ct_unknown"))

            body = {"error": {"code": "validation_error", "message": "identifier is invalid", "details": {}}}
            fake.push(Fault("status", status=422, body=body))
            invalid = error_of(await attach(client, contact, "bob@example.com"))

            body = {"error": {"code": "rate_limited", "message": "Too many requests."}}
            fake.push(Fault("status", status=429, body=body, headers={"Retry-After": "2"}))
            limited = error_of(await attach(client, contact, "bob@example.com"))

            fake.push(Fault("status", status=503))
            outage = error_of(await attach(client, contact, "bob@example.com"))

            fake.api_key = "bl_live_rotated"
            refused = error_of(await attach(client, contact, "bob@example.com"))

    (stored,) = fake.identities(contact)
    assert ok.is_error is False and ok.structured_content is not None
    assert (ok.structured_content["created"], ok.structured_content["id"]) == (True, stored.id)
    assert again.structured_content is not None and again.structured_content["created"] is False
    assert (missing["code"], missing["field"]) == ("not_found", "contact_id")
    assert (invalid["code"], invalid["status"]) == ("invalid_argument", 422)
    assert (limited["code"], limited["retryable"], limited["retry_after_s"]) == ("rate_limited", True, 2.0)
    assert (outage["code"], outage["retryable"]) == ("provider_unavailable", False)
    assert (refused["code"], refused["status"]) == ("unauthorized", 401)
    assert posts(fake) == 7, "one POST per call: nothing was replayed"
    logged = stderr_path.read_text()
    assert "attach_identity" in logged, "the server logged nothing at DEBUG: the secrecy check would prove nothing"
    assert KEY not in logged
