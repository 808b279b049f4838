"""`attach_contact` served by Feather through the MCP server: in-process (`Client(server)`) and end to end (the
real `python -m contact_mcp serve` over stdio), both against the Feather fake on 127.0.0.1."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult

from contact_mcp import build_server, load_settings
from tests.fakes.feather import API_KEY, RATE_LIMITED_BODY, UNAUTHORIZED_BODY, FeatherFake, validation_error
from tests.fakes.harness import Fault
from tests.results import error_of, text
from tests.stdio_server import server_params

pytestmark = pytest.mark.anyio

PROVIDER = "feather"

CONTACTS = "/contacts"


@pytest.fixture
def end_user(fake: FeatherFake) -> str:
    fake.reset()
    return fake.add_end_user(display_name="Jane")


def feather_server(base_url: str, db_path: Path, **overrides: Any) -> Client:
    settings = load_settings(
        providers="feather",
        feather_api_key=API_KEY,
        feather_base_url=base_url,
        db=str(db_path),
        read_timeout_s=0.5,
        **overrides,
    )
    return Client(build_server(settings))


# ---------- in-process ----------


async def test_attach_contact_and_the_reads_are_listed_and_name_feather(base_url: str, db_path: Path) -> None:
    async with feather_server(base_url, db_path) as client:
        tools = (await client.list_tools()).tools
    assert [tool.name for tool in tools] == ["attach_contact", "delete_contact", "get_contact", "find_contacts"]
    assert tools[0].description is not None
    assert tools[0].description.endswith("Provider: Feather.")


async def test_attach_contact_returns_the_canonical_result(
    base_url: str, db_path: Path, fake: FeatherFake, end_user: str
) -> None:
    arguments = {"end_user_id": end_user.upper(), "channel": " Email ", "value": " Jane@Example.COM "}
    async with feather_server(base_url, db_path) as client:
        first = await client.call_tool("attach_contact", arguments)
        again = await client.call_tool("attach_contact", arguments)
    (stored,) = fake.end_users[end_user].contacts
    assert first.is_error is False
    assert first.structured_content == {
        "provider": "feather",
        "created": True,
        "end_user_id": end_user,
        "uid": stored.uid,
        "channel": "email",
        "type": "email",
        "normalized_value": "jane@example.com",
    }
    assert text(first) == f"Attached email jane@example.com to end user {end_user} (uid {stored.uid})."
    assert again.structured_content is not None
    assert again.structured_content["created"] is False
    assert text(again).startswith("Already attached:")
    assert fake.requests[1].json() == {"channel": "email", "value": "jane@example.com"}


async def test_phone_written_for_the_default_region_reaches_feather_as_e164(
    base_url: str, db_path: Path, fake: FeatherFake, end_user: str
) -> None:
    arguments = {"end_user_id": end_user, "channel": "sms", "value": "(415) 555-0123"}
    async with feather_server(base_url, db_path, default_region="US") as client:
        result = await client.call_tool("attach_contact", arguments)
    assert fake.requests[-1].json() == {"channel": "sms", "value": "+14155550123"}
    assert result.structured_content is not None
    assert (result.structured_content["type"], result.structured_content["normalized_value"]) == (
        "sms",
        "+14155550123",
    )


async def test_non_uuid_end_user_is_refused_by_the_tool_without_calling_feather(
    base_url: str, db_path: Path, fake: FeatherFake, end_user: str
) -> None:
    async with feather_server(base_url, db_path) as client:
        result = await client.call_tool(
            "attach_contact", {"end_user_id": "../whoami", "channel": "email", "value": "a@example.com"}
        )
    error = error_of(result)
    assert (error["code"], error["field"], error["provider"]) == ("invalid_argument", "end_user_id", "feather")
    assert fake.requests == []


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("unknown-end-user", {"code": "not_found", "status": 404, "field": "end_user_id", "retryable": False}),
        ("rotated-key", {"code": "unauthorized", "status": 401, "message": UNAUTHORIZED_BODY["message"]}),
        ("feather-422", {"code": "invalid_argument", "status": 422, "field": "value", "message": "Field required"}),
        ("rate-limited", {"code": "rate_limited", "status": 429, "retryable": True}),
        ("outage", {"code": "provider_unavailable", "status": 503, "retryable": True}),
        ("slow", {"code": "timeout", "retryable": True}),
    ],
    ids=["unknown-end-user", "rotated-key", "feather-422", "rate-limited", "outage", "slow"],
)
async def test_feather_failures_are_structured_error_results(
    base_url: str, db_path: Path, fake: FeatherFake, end_user: str, setup: str, expected: dict[str, Any]
) -> None:
    target = end_user
    if setup == "unknown-end-user":
        target = str(uuid.uuid4())
    elif setup == "rotated-key":
        fake.api_key = "fth_live_rotated"
    elif setup == "feather-422":
        body = validation_error(["body", "value"], "Field required", "missing")
        fake.app.push(Fault(kind="status", status=422, body=body, path_contains=CONTACTS))
    elif setup == "rate-limited":
        fake.app.push(Fault(kind="status", status=429, body=RATE_LIMITED_BODY, path_contains=CONTACTS, times=10))
    elif setup == "outage":
        down = {"error": "service_unavailable", "message": "Maintenance"}
        fake.app.push(Fault(kind="status", status=503, body=down, path_contains=CONTACTS, times=10))
    else:
        fake.app.push(Fault(kind="slow", delay=1.0, path_contains=CONTACTS, times=10))
    async with feather_server(base_url, db_path) as client:
        result = await client.call_tool(
            "attach_contact", {"end_user_id": target, "channel": "email", "value": "jane@example.com"}
        )
    error = error_of(result)
    assert error["provider"] == "feather"
    if setup != "slow":  # a timeout's text says "Retrying may succeed"; HttpProvider gives it no hint
        assert error.get("hint")
    assert {key: error.get(key) for key in expected} == expected
    assert error["code"] in text(result)
    assert API_KEY not in text(result) + repr(result.structured_content)


# ---------- end to end: the server as a subprocess over stdio ----------


@pytest.mark.slow
async def test_stdio_server_attaches_and_reports_feathers_failures(
    base_url: str, fake: FeatherFake, end_user: str, tmp_path: Path
) -> None:
    env = {
        "CONTACT_MCP_PROVIDERS": "feather",
        "FEATHER_API_KEY": API_KEY,
        "FEATHER_BASE_URL": base_url,
        "CONTACT_MCP_DB": str(tmp_path / "contacts.db"),
        # Real retries in the subprocess (no stamina testing mode there), without the waits.
        "CONTACT_MCP_RETRY_WAIT_INITIAL": "0",
        "CONTACT_MCP_RETRY_WAIT_MAX": "0",
    }
    params = server_params(env)
    params.env = {**(params.env or {}), "CONTACT_MCP_LOG_LEVEL": "DEBUG"}
    stderr_path = tmp_path / "server.stderr"

    async def attach(client: Client, end_user_id: str) -> CallToolResult:
        arguments = {"end_user_id": end_user_id, "channel": "whatsapp", "value": "+44 20 7946 0958"}
        return await client.call_tool("attach_contact", arguments)

    with stderr_path.open("w") as errlog, anyio.fail_after(60):
        async with Client(stdio_client(params, errlog=errlog)) as client:
            ok = await attach(client, end_user)
            missing = error_of(await attach(client, str(uuid.uuid4())))

            body = validation_error(["body", "channel"], "Input should be a valid string", "string_type", 1)
            fake.app.push(Fault(kind="status", status=422, body=body, path_contains=CONTACTS))
            invalid = error_of(await attach(client, end_user))

            fake.app.push(Fault(kind="status", status=429, body=RATE_LIMITED_BODY, path_contains=CONTACTS, times=3))
            limited = error_of(await attach(client, end_user))

            fake.api_key = "fth_live_rotated"
            refused = error_of(await attach(client, end_user))

    assert ok.is_error is False
    assert ok.structured_content is not None
    (stored,) = fake.end_users[end_user].contacts
    assert (ok.structured_content["uid"], ok.structured_content["normalized_value"]) == (stored.uid, "+442079460958")
    assert (missing["code"], missing["field"]) == ("not_found", "end_user_id")
    assert (invalid["code"], invalid["field"], invalid["status"]) == ("invalid_argument", "channel", 422)
    assert (limited["code"], limited["retryable"]) == ("rate_limited", True)
    assert refused["code"] == "unauthorized"
    assert sum(1 for r in fake.requests if r.method == "POST" and r.path.endswith(CONTACTS)) == 1 + 1 + 3
    logged = stderr_path.read_text()
    assert "attach_contact" in logged, "the server logged nothing at DEBUG: the secrecy check would prove nothing"
    assert API_KEY not in logged
