"""Lost races on PostgreSQL are the server's to rerun, never the agent's: failures the database raises at commit or
mid-transaction (serialization_failure, deadlock_detected, unique_violation) are injected with a real trigger, and
concurrent calls on the same keys leave exactly one winner."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest
from mcp import Client
from psycopg import sql

from contact_mcp import build_server, load_settings
from tests.store.postgres.calls import gather, scalar

pytestmark = pytest.mark.anyio

# The sequence counts attempts outside any transaction, so a rolled-back attempt still counts.
_INJECT = """
CREATE SEQUENCE attempts;
CREATE FUNCTION fail_first_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('attempts') <= {times} THEN
        RAISE EXCEPTION 'injected by the test' USING ERRCODE = {code};
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER fail_first_attempts BEFORE INSERT ON contacts FOR EACH ROW EXECUTE FUNCTION fail_first_attempts();
"""


@pytest.fixture
async def client(postgres_url: str) -> AsyncIterator[Client]:
    async with Client(build_server(load_settings(db=postgres_url))) as session:
        yield session


def inject(url: str, *, code: str, times: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL(_INJECT).format(times=sql.Literal(times), code=sql.Literal(code)))


@pytest.mark.parametrize("code", ["serialization_failure", "deadlock_detected", "unique_violation"])
async def test_a_lost_race_is_rerun_and_the_agent_sees_one_success(
    client: Client, postgres_url: str, code: str
) -> None:
    await client.list_tools()  # the schema exists before the trigger goes on it
    inject(postgres_url, code=code, times=2)

    result = await client.call_tool("upsert_contact", {"email": "ann@example.com", "name": "Ann"})

    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.structured_content["outcome"] == "created"
    assert scalar(postgres_url, "SELECT count(*) FROM contacts") == 1
    assert scalar(postgres_url, "SELECT count(*) FROM methods") == 1
    assert scalar(postgres_url, "SELECT last_value FROM attempts") == 3  # two failed runs, then the one that won


async def test_a_race_lost_every_time_is_a_retryable_provider_unavailable(client: Client, postgres_url: str) -> None:
    await client.list_tools()
    inject(postgres_url, code="serialization_failure", times=1000)

    result = await client.call_tool("upsert_contact", {"email": "ann@example.com"})

    assert result.is_error
    assert result.structured_content is not None
    error = result.structured_content["error"]
    assert (error["code"], error["retryable"]) == ("provider_unavailable", True)
    assert scalar(postgres_url, "SELECT count(*) FROM contacts") == 0


async def test_concurrent_creates_of_one_username_make_one_contact(client: Client, postgres_url: str) -> None:
    names = ["ann", "bob", "cy", "dee"]
    calls = [
        (
            "create_contact",
            {"username": names[k % 4].upper() if k % 3 else names[k % 4], "phone_number": "+14155550100"},
        )
        for k in range(32)
    ]
    results = await gather([(client, tool, args) for tool, args in calls])

    created = [r for r in results if "error" not in r]
    conflicts = [r["error"] for r in results if "error" in r]
    assert len(created) == 4
    assert {c["id"] for c in created} >= {e["existing_id"] for e in conflicts}
    assert {e["code"] for e in conflicts} == {"conflict"}
    assert len(conflicts) == 28
    assert scalar(postgres_url, "SELECT count(*) FROM contacts") == 4


async def test_concurrent_attaches_of_one_identity_to_many_contacts_attach_it_once(
    client: Client, postgres_url: str
) -> None:
    contacts = await gather([(client, "upsert_contact", {"email": f"p{k}@example.com"}) for k in range(8)])
    attach = [(client, "attach_identity", {"contact_id": c["id"], "identifier": "+14155550100"}) for c in contacts * 3]
    results = await gather(attach)

    winners = {r["contact_id"] for r in results if "error" not in r}
    assert len(winners) == 1
    assert sum(r.get("created", False) for r in results) == 1
    losers = [r["error"] for r in results if "error" in r]
    assert len(losers) == 21
    assert {(e["code"], e["existing_id"]) for e in losers} == {("conflict", winners.pop())}
    assert scalar(postgres_url, "SELECT count(*) FROM identities") == 1
