"""`upsert_contact` served by Featurebase through the MCP server: in-process (`Client(server)`) and end to end (the
real `python -m contact_mcp serve` over stdio), both against the Featurebase fake on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult

from contact_mcp import build_server, load_settings
from tests.fakes.featurebase import API_KEY, FeaturebaseFake, error_body, user_hash
from tests.fakes.harness import Fault
from tests.results import error_of, text
from tests.stdio_server import server_params

pytestmark = pytest.mark.anyio

PROVIDER = "featurebase"

SECRET = "fb_identity_secret_mcp_5d21"
CONTACTS = "/v2/contacts"


@pytest.fixture
def fake(served: tuple[FeaturebaseFake, str]) -> FeaturebaseFake:
    served[0].reset(identity_secret=SECRET)
    return served[0]


def featurebase_server(base_url: str, **overrides: Any) -> Client:
    settings = load_settings(
        providers="featurebase",
        featurebase_api_key=API_KEY,
        featurebase_base_url=base_url,
        featurebase_identity_secret=SECRET,
        read_timeout_s=0.5,
        **overrides,
    )
    return Client(build_server(settings))


def featurebase_error(status: int, kind: str, message: str, param: str | None = None, times: int = 1) -> Fault:
    body = error_body(kind, "some_code", message, status, param)
    return Fault("status", status=status, body=body, path_contains=CONTACTS, times=times)


# ---------- in-process ----------


async def test_upsert_contact_and_the_reads_are_listed_and_name_featurebase(base_url: str) -> None:
    async with featurebase_server(base_url) as client:
        tools = (await client.list_tools()).tools
    assert [tool.name for tool in tools] == ["upsert_contact", "delete_contact", "get_contact", "find_contacts"]
    assert tools[0].description is not None
    assert tools[0].description.endswith("Provider: Featurebase.")


async def test_upsert_contact_creates_then_updates_with_the_canonical_result(
    base_url: str, fake: FeaturebaseFake
) -> None:
    arguments: dict[str, Any] = {
        "email": " Ada@Example.COM ",
        "user_id": "usr_ada",
        "name": "Ada Lovelace",
        "phone": "+44 20 7946 0958",
        "companies": [{"id": "c_1", "name": "Analytical", "monthly_spend": 500}],
        "custom_fields": {"plan": "pro"},
    }
    async with featurebase_server(base_url) as client:
        first = await client.call_tool("upsert_contact", arguments)
        again = await client.call_tool("upsert_contact", {"user_id": "usr_ada", "name": "Countess"})
    stored = fake.by_user_id("usr_ada")
    assert stored is not None
    assert first.is_error is False
    assert first.structured_content == {
        "provider": "featurebase",
        "outcome": "created",
        "id": stored["id"],
        "user_id": "usr_ada",
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "phone": "+442079460958",
    }
    assert text(first) == f"Contact ada@example.com created (id {stored['id']})."
    assert again.structured_content is not None
    assert (again.structured_content["outcome"], again.structured_content["name"]) == ("updated", "Countess")
    sent = fake.requests[0].json()
    assert sent["companies"] == [{"id": "c_1", "name": "Analytical", "monthlySpend": 500}]
    assert sent["userHash"] == user_hash(SECRET, "usr_ada")
    assert stored["verified"] is True


async def test_a_call_without_email_or_user_id_is_refused_without_calling_featurebase(
    base_url: str, fake: FeaturebaseFake
) -> None:
    async with featurebase_server(base_url) as client:
        result = await client.call_tool("upsert_contact", {"name": "Nobody"})
    error = error_of(result)
    assert (error["code"], error["field"]) == ("invalid_argument", "email")
    assert fake.requests == []


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        pytest.param(
            "rotated-key",
            {"code": "unauthorized", "status": 401, "message": "Invalid API key provided.", "retryable": False},
            id="rotated-key",
        ),
        pytest.param(
            "featurebase-400",
            {"code": "invalid_argument", "status": 400, "field": "companies[0].monthly_spend", "retryable": False},
            id="featurebase-400",
        ),
        pytest.param(
            "rate-limited",
            {"code": "rate_limited", "status": 429, "retryable": True, "retry_after_s": 30.0},
            id="rate-limited",
        ),
        pytest.param("outage", {"code": "provider_unavailable", "status": 503, "retryable": True}, id="outage"),
        pytest.param("api-error", {"code": "provider_error", "status": 500, "retryable": True}, id="api-error"),
    ],
)
async def test_featurebase_failures_are_structured_error_results(
    base_url: str, fake: FeaturebaseFake, setup: str, expected: dict[str, Any]
) -> None:
    if setup == "rotated-key":
        fake.state.api_keys = {"sk_rotated"}
    elif setup == "featurebase-400":
        message = "companies.0.monthlySpend must be greater than or equal to 0."
        fake.app.push(featurebase_error(400, "invalid_request_error", message, "companies.0.monthlySpend"))
    elif setup == "rate-limited":
        fault = featurebase_error(429, "rate_limit_error", "Too many requests.", times=10)
        fault.headers = {"X-RateLimit-Limit": "2000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}
        fake.app.push(fault)
    elif setup == "outage":
        fake.app.push(Fault("status", status=503, body={}, path_contains=CONTACTS, times=10))
    else:
        fake.app.push(featurebase_error(500, "api_error", "Something went wrong on our end."))
    async with featurebase_server(base_url) as client:
        result = await client.call_tool("upsert_contact", {"email": "ada@example.com"})
    error = error_of(result)
    assert error["provider"] == "featurebase"
    assert error.get("hint")
    assert {key: error.get(key) for key in expected} == expected
    assert error["code"] in text(result)
    assert API_KEY not in text(result) + repr(result.structured_content)
    assert SECRET not in text(result) + repr(result.structured_content)


# ---------- end to end: the server as a subprocess over stdio ----------


@pytest.mark.slow
async def test_stdio_server_upserts_and_reports_featurebases_failures(
    base_url: str, fake: FeaturebaseFake, tmp_path: Path
) -> None:
    env = {
        "CONTACT_MCP_PROVIDERS": "featurebase",
        "FEATUREBASE_API_KEY": API_KEY,
        "FEATUREBASE_BASE_URL": base_url,
        "FEATUREBASE_IDENTITY_SECRET": SECRET,
        # Real retries in the subprocess (no stamina testing mode there), without the waits.
        "CONTACT_MCP_RETRY_WAIT_INITIAL": "0",
        "CONTACT_MCP_RETRY_WAIT_MAX": "0",
    }
    params = server_params(env)
    params.env = {**(params.env or {}), "CONTACT_MCP_LOG_LEVEL": "DEBUG"}
    stderr_path = tmp_path / "server.stderr"

    async def upsert(client: Client) -> CallToolResult:
        return await client.call_tool("upsert_contact", {"email": "grace@example.com", "user_id": "usr_grace"})

    with stderr_path.open("w") as errlog, anyio.fail_after(60):
        async with Client(stdio_client(params, errlog=errlog)) as client:
            created = await upsert(client)
            updated = await upsert(client)

            message = "locale must be at most 10 characters."
            fake.app.push(featurebase_error(400, "invalid_request_error", message, "locale"))
            invalid = error_of(await upsert(client))

            fake.app.push(featurebase_error(500, "api_error", "Something went wrong on our end."))
            failed = error_of(await upsert(client))

            # Retry-After beyond the 30 s retry deadline: reported at once, not waited for (nor replayed).
            limited_fault = featurebase_error(429, "rate_limit_error", "Too many requests.")
            limited_fault.headers = {"Retry-After": "45"}
            fake.app.push(limited_fault)
            limited = error_of(await upsert(client))

            fake.state.api_keys = {"sk_rotated"}
            refused = error_of(await upsert(client))

    assert created.structured_content is not None
    assert updated.structured_content is not None
    stored = fake.by_user_id("usr_grace")
    assert stored is not None
    assert (created.structured_content["outcome"], created.structured_content["id"]) == ("created", stored["id"])
    assert (updated.structured_content["outcome"], updated.structured_content["id"]) == ("updated", stored["id"])
    assert stored["verified"] is True
    assert (invalid["code"], invalid["field"], invalid["status"]) == ("invalid_argument", "locale", 400)
    assert (failed["code"], failed["retryable"]) == ("provider_error", True)
    assert (limited["code"], limited["retry_after_s"], limited["retryable"]) == ("rate_limited", 45.0, True)
    assert (refused["code"], refused["status"]) == ("unauthorized", 401)
    assert sum(1 for r in fake.requests if r.method == "POST" and r.path == CONTACTS) == 6
    logged = stderr_path.read_text()
    assert "upsert_contact" in logged, "the server logged nothing at DEBUG: the secrecy check would prove nothing"
    assert API_KEY not in logged
    assert SECRET not in logged
