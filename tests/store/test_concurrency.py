"""The store under concurrent writers, on every backend: one session, two servers, two processes.

Overlapping writes must neither lose nor duplicate anything: the counts checked here are exact, read back both
through the tools and through the store's export.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client

from contact_mcp import Settings, build_server
from contact_mcp.store import LocalStore
from tests.store.calls import counts

pytestmark = pytest.mark.anyio

EMAILS = [f"user{i}@example.com" for i in range(8)]
PHONES = [f"+1415555010{i}" for i in range(8)]


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def gather(*calls: tuple[Client, str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Run every call at once in one task group; results in call order."""
    results: list[dict[str, Any]] = [{} for _ in calls]

    async def run(index: int, client: Client, tool: str, arguments: dict[str, Any]) -> None:
        results[index] = await call(client, tool, **arguments)

    async with anyio.create_task_group() as group:
        for index, (client, tool, arguments) in enumerate(calls):
            group.start_soon(run, index, client, tool, arguments)
    return results


async def test_64_concurrent_writers_on_one_session_lose_and_duplicate_nothing(
    client: Client, store: LocalStore
) -> None:
    upserts = await gather(
        *((client, "upsert_contact", {"email": EMAILS[k % 8], "name": f"Name {k}"}) for k in range(64))
    )

    assert sum(r["outcome"] == "created" for r in upserts) == 8
    ids = {r["email"]: r["id"] for r in upserts}
    assert len(ids) == 8

    mixed: list[tuple[Client, str, dict[str, Any]]] = []
    for k in range(64):
        i, kind = k % 8, (k // 8) % 4
        contact = ids[EMAILS[i]]
        mixed.append(
            [
                (client, "upsert_contact", {"email": EMAILS[i], "phone": PHONES[i], "name": f"Later {k}"}),
                (client, "attach_contact", {"end_user_id": contact, "channel": "email", "value": EMAILS[i].upper()}),
                (client, "attach_contact", {"end_user_id": contact, "channel": "sms", "value": PHONES[i]}),
                (client, "attach_identity", {"contact_id": contact, "identifier": EMAILS[i]}),
            ][kind]
        )
    results = await gather(*mixed)

    made = list(zip(mixed, results, strict=True))
    email_attaches = [r for (_, tool, args), r in made if tool == "attach_contact" and args["channel"] == "email"]
    sms_attaches = [r for (_, tool, args), r in made if tool == "attach_contact" and args["channel"] == "sms"]
    identities = [r for (_, tool, _), r in made if tool == "attach_identity"]
    assert [r["created"] for r in email_attaches] == [False] * 16  # upsert made them: attaching verifies them
    assert sum(r["created"] for r in sms_attaches) == 8
    assert sum(r["created"] for r in identities) == 8
    assert await counts(store) == {"contacts": 8, "methods": 24, "identities": 8}
    page = await call(client, "find_contacts", limit=50)
    assert sorted(c["email"] for c in page["contacts"]) == EMAILS
    for email, contact_id in ids.items():
        contact = await call(client, "get_contact", contact_id=contact_id)
        assert sorted((m["channel"], m["value"], m["verified"]) for m in contact["methods"]) == sorted(
            [
                ("email", email, True),
                ("phone", PHONES[EMAILS.index(email)], False),
                ("sms", PHONES[EMAILS.index(email)], True),
            ]
        )
        assert [i["identifier"] for i in contact["identities"]] == [email]


async def test_two_servers_on_one_database_share_every_write(
    store_settings: Settings, empty_store: str, store: LocalStore
) -> None:
    async with Client(build_server(store_settings)) as first, Client(build_server(store_settings)) as second:
        results = await gather(
            *(
                (first if k % 2 else second, "upsert_contact", {"email": EMAILS[k % 8], "name": f"Name {k}"})
                for k in range(64)
            )
        )
        created_by_first = next(r["id"] for r in results if r["email"] == EMAILS[0])
        seen_by_second = await call(second, "get_contact", contact_id=created_by_first)
        page = await call(first, "find_contacts", limit=50)

    assert sum(r["outcome"] == "created" for r in results) == 8
    assert seen_by_second["id"] == created_by_first
    assert len(page["contacts"]) == 8
    assert await counts(store) == {"contacts": 8, "methods": 8, "identities": 0}


_WRITER = """
import sys, anyio
from contact_mcp.models import AttachContactInput, UpsertContactInput
from contact_mcp.store import LocalStore

async def main(path: str, tag: str) -> None:
    store = LocalStore.open(path)
    print("ready", flush=True)
    sys.stdin.readline()
    contacts = methods = 0
    for k in range(100):
        i = k % 8
        upserted = await store.upsert_contact(
            UpsertContactInput(email=f"user{i}@example.com", user_id=None, name=f"{tag} {k}")
        )
        phone = f"+1415555010{i}"
        attached = await store.attach_contact(
            AttachContactInput(
                end_user_id=upserted.id, channel="sms", raw_value=phone, type="sms", normalized_value=phone
            )
        )
        contacts += upserted.outcome == "created"
        methods += attached.created
    await store.aclose()
    print(contacts, methods, flush=True)

anyio.run(main, sys.argv[1], sys.argv[2])
"""


@pytest.mark.slow
async def test_two_processes_on_one_database_lose_and_duplicate_nothing(empty_store: str, store: LocalStore) -> None:
    async with (
        await anyio.open_process([sys.executable, "-c", _WRITER, empty_store, "a"]) as a,
        await anyio.open_process([sys.executable, "-c", _WRITER, empty_store, "b"]) as b,
    ):
        lines: list[BufferedByteReceiveStream] = []
        for process in (a, b):
            assert process.stdout is not None
            lines.append(BufferedByteReceiveStream(process.stdout))
            assert await lines[-1].receive_until(b"\n", 100) == b"ready"
        for process in (a, b):  # both are ready before either writes, so their writes overlap
            assert process.stdin is not None
            await process.stdin.send(b"go\n")
        outputs = [[int(n) for n in (await line.receive_until(b"\n", 100)).split()] for line in lines]
        assert [await a.wait(), await b.wait()] == [0, 0]

    assert sum(created for created, _ in outputs) == 8
    assert sum(attached for _, attached in outputs) == 8
    assert await counts(store) == {"contacts": 8, "methods": 16, "identities": 0}
