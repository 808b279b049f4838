"""Dry runs on every provider, through a real MCP client session against each provider's fake on 127.0.0.1.

A dry run sends reads only (the fake's request log shows no other method), says it was a dry run, reports what the
provider's reads tell about the change (and in `note` what they cannot), and fails as the real call would where a
read can tell it would fail. The same arguments without `dry_run` then do write (so the scenario is a real write).
Under them all, the guard: during a dry run the HTTP client refuses to send anything but a read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from contact_mcp import build_server, dry_run, load_settings
from contact_mcp.tools.table import TOOLS
from tests.providers.cases import CASES, ProviderCase, Seeded, requests
from tests.results import error_of, json_text, text

pytestmark = pytest.mark.anyio

NEW_PHONE = "+14155550177"


@dataclass(frozen=True)
class Write:
    provider: str
    tool: str
    arguments: Callable[[Seeded, int], dict[str, Any]]
    """From the seeded contact and its number n."""


WRITES = [
    Write("feather", "attach_contact", lambda s, n: {"end_user_id": s.id, "channel": "sms", "value": NEW_PHONE}),
    Write("blooio", "attach_identity", lambda s, n: {"contact_id": s.id, "identifier": NEW_PHONE}),
    Write(
        "tetherai",
        "set_verification",
        lambda s, n: {"contact_id": s.id, "type": "email", "value": f"Alex{n}@Example.com", "verified": True},
    ),
    Write("featurebase", "upsert_contact", lambda s, n: {"user_id": f"usr_{n}", "name": "Ada Renamed"}),
    Write("protocol", "create_contact", lambda s, n: {"username": "new-user", "phone_number": NEW_PHONE}),
    *(
        Write(name, "delete_contact", lambda s, n: {"contact_id": s.id, "confirm": True})
        for name in ("feather", "blooio", "featurebase", "protocol")
    ),
    Write("blooio", "detach_identity", lambda s, n: {"contact_id": s.id, "identifier": f"sam{n}@example.com"}),
]


def test_every_write_a_provider_serves_has_a_dry_run_case() -> None:
    writers = {spec.operation for spec in TOOLS if not spec.read_only}
    served = {(name, op.value) for name, case in CASES.items() for op in case.client_class.operations & writers}
    assert served == {(write.provider, write.tool) for write in WRITES}


def _server(case: ProviderCase, base_url: str, db_path: Path) -> Client:
    return Client(build_server(load_settings(**case.settings(base_url, str(db_path)))))


def _writes_since(fake: Any, start: int) -> list[str]:
    return [f"{r.method} {r.path}" for r in requests(fake)[start:] if r.method != "GET"]


@pytest.mark.parametrize("write", WRITES, ids=[f"{w.provider}-{w.tool}" for w in WRITES])
async def test_a_dry_run_sends_no_write_and_reports_the_change(write: Write, fakes: Any, db_path: Path) -> None:
    case = CASES[write.provider]
    fake, base_url = fakes.get(case.name)
    fake.reset()
    seeded = case.seed(fake, 1)
    arguments = write.arguments(seeded, 1)
    async with _server(case, base_url, db_path) as client:
        start = len(requests(fake))
        dry = await client.call_tool(write.tool, {**arguments, "dry_run": True})

        assert _writes_since(fake, start) == []
        assert len(requests(fake)) > start, "a dry run reads what the provider can tell"
        planned = json_text(dry)
        assert planned["dry_run"] is True
        assert planned["provider"] == case.name
        assert text(dry).startswith("Dry run, nothing written")
        assert planned["changes"], planned

        done = json_text(await client.call_tool(write.tool, arguments))
    assert _writes_since(fake, start), "the same call without dry_run writes"
    assert "dry_run" not in done
    assert {k: v for k, v in planned.items() if k in ("created", "outcome", "value", "verified")} == {
        k: v for k, v in done.items() if k in ("created", "outcome", "value", "verified")
    }


@dataclass(frozen=True)
class Unchanged:
    provider: str
    tool: str
    arguments: Callable[[Seeded], dict[str, Any]]


UNCHANGED = [
    Unchanged(
        "feather", "attach_contact", lambda s: {"end_user_id": s.id, "channel": "email", "value": "jane1@example.com"}
    ),
    Unchanged(
        "blooio",
        "attach_identity",
        lambda s: {"contact_id": s.id, "identifier": "sam1@example.com", "channel_type": "blooio"},
    ),
    Unchanged("featurebase", "upsert_contact", lambda s: {"user_id": "usr_1", "name": "Ada 1"}),
]


@pytest.mark.parametrize("same", UNCHANGED, ids=[u.provider for u in UNCHANGED])
async def test_a_dry_run_of_what_is_already_there_reports_no_change(same: Unchanged, fakes: Any, db_path: Path) -> None:
    case = CASES[same.provider]
    fake, base_url = fakes.get(case.name)
    fake.reset()
    seeded = case.seed(fake, 1)
    async with _server(case, base_url, db_path) as client:
        start = len(requests(fake))
        planned = json_text(await client.call_tool(same.tool, {**same.arguments(seeded), "dry_run": True}))
    assert _writes_since(fake, start) == []
    assert planned["changes"] == []
    assert planned.get("created", False) is False


@dataclass(frozen=True)
class Failing:
    provider: str
    name: str
    tool: str
    arguments: Callable[[Seeded, ProviderCase], dict[str, Any]]


FAILING = [
    Failing(
        "feather",
        "unknown-end-user",
        "attach_contact",
        lambda s, c: {"end_user_id": c.missing_id, "channel": "email", "value": "a@example.com"},
    ),
    Failing(
        "blooio",
        "unknown-contact",
        "attach_identity",
        lambda s, c: {"contact_id": c.missing_id, "identifier": NEW_PHONE},
    ),
    Failing(
        "blooio",
        "identifier-of-another-contact",
        "attach_identity",
        lambda s, c: {"contact_id": s.id, "identifier": "sam2@example.com", "channel_type": "blooio"},
    ),
    Failing(
        "tetherai",
        "unknown-contact",
        "set_verification",
        lambda s, c: {"contact_id": c.missing_id, "type": "email", "value": "alex1@example.com", "verified": True},
    ),
    Failing(
        "tetherai",
        "value-not-held",
        "set_verification",
        lambda s, c: {"contact_id": s.id, "type": "phone", "value": NEW_PHONE, "verified": True},
    ),
    Failing(
        "protocol", "username-taken", "create_contact", lambda s, c: {"username": "lin2", "phone_number": NEW_PHONE}
    ),
    *(
        Failing(name, "delete-unknown", "delete_contact", lambda s, c: {"contact_id": c.missing_id, "confirm": True})
        for name in ("feather", "blooio", "featurebase", "protocol")
    ),
    Failing("blooio", "detach-not-held", "detach_identity", lambda s, c: {"contact_id": s.id, "identifier": NEW_PHONE}),
]


@pytest.mark.parametrize("failing", FAILING, ids=[f"{f.provider}-{f.name}" for f in FAILING])
async def test_a_dry_run_of_a_failing_call_fails_as_the_real_call(failing: Failing, fakes: Any, db_path: Path) -> None:
    case = CASES[failing.provider]
    fake, base_url = fakes.get(case.name)
    fake.reset()
    seeded = case.seed(fake, 1)
    case.seed(fake, 2)
    arguments = failing.arguments(seeded, case)
    async with _server(case, base_url, db_path) as client:
        start = len(requests(fake))
        dry = error_of(await client.call_tool(failing.tool, {**arguments, "dry_run": True}))
        assert _writes_since(fake, start) == []
        real = error_of(await client.call_tool(failing.tool, arguments))
    shared = ("code", "field", "provider", "existing_id", "retryable")
    assert {k: dry.get(k) for k in shared} == {k: real.get(k) for k in shared}


async def test_featurebase_cannot_tell_an_upsert_by_email_and_says_so(fakes: Any, db_path: Path) -> None:
    case = CASES["featurebase"]
    fake, base_url = fakes.get(case.name)
    fake.reset()
    async with _server(case, base_url, db_path) as client:
        start = len(requests(fake))
        dry = await client.call_tool("upsert_contact", {"email": "ada1@example.com", "name": "Ada", "dry_run": True})
    planned = json_text(dry)
    assert requests(fake)[start:] == []
    assert planned["dry_run"] is True
    assert "outcome" not in planned and "id" not in planned and "changes" not in planned
    assert "no read by email" in planned["note"]
    assert planned["note"] in text(dry)


async def test_a_provider_request_other_than_a_read_is_refused_unsent(fakes: Any) -> None:
    case = CASES["protocol"]
    fake, base_url = fakes.get(case.name)
    fake.reset()
    client = case.client(base_url)
    try:
        with dry_run.marked(True), pytest.raises(dry_run.DryRunWrite, match="POST /v1/contacts"):
            await client.request("POST", "/v1/contacts", replayable=False, json_body={"username": "x"})
        with dry_run.marked(True):
            await client.request("GET", "/v1/contacts", replayable=True, params={"username": "x"})
        assert [r.method for r in requests(fake)] == ["GET"]
        with dry_run.marked(False):
            await client.request(
                "POST", "/v1/contacts", replayable=False, json_body={"username": "x", "phone_number": "+14155550100"}
            )
    finally:
        await client.aclose()
    assert [r.method for r in requests(fake)] == ["GET", "POST"]
