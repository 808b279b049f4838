"""The local store under concurrent writers: one session, two servers, two processes, a held lock, a failed call.

Overlapping writes must neither lose nor duplicate anything: the counts checked here are exact, read back both
through the tools and with direct SQL on the file.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client

from contact_mcp import Settings, build_server
from contact_mcp.errors import ProviderUnavailable
from contact_mcp.models import AttachContactInput, FindContactsInput, UpsertContactInput
from contact_mcp.providers.local import LocalStore

pytestmark = pytest.mark.anyio

EMAILS = [f"user{i}@example.com" for i in range(8)]
PHONES = [f"+1415555010{i}" for i in range(8)]


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def counts(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as db:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("contacts", "methods", "identities")}


async def gather(*calls: tuple[Client, str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Run every call at once in one task group; results in call order."""
    results: list[dict[str, Any]] = [{} for _ in calls]

    async def run(index: int, client: Client, tool: str, arguments: dict[str, Any]) -> None:
        results[index] = await call(client, tool, **arguments)

    async with anyio.create_task_group() as group:
        for index, (client, tool, arguments) in enumerate(calls):
            group.start_soon(run, index, client, tool, arguments)
    return results


async def test_64_concurrent_writers_on_one_session_lose_and_duplicate_nothing(client: Client, db_path: Path) -> None:
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
    assert counts(db_path) == {"contacts": 8, "methods": 24, "identities": 8}
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


async def test_two_servers_on_one_file_share_every_write(settings: Settings, db_path: Path) -> None:
    async with Client(build_server(settings)) as first, Client(build_server(settings)) as second:
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
    assert counts(db_path) == {"contacts": 8, "methods": 8, "identities": 0}


_WRITER = """
import sys, anyio
from contact_mcp.models import AttachContactInput, UpsertContactInput
from contact_mcp.providers.local import LocalStore

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
async def test_two_processes_on_one_file_lose_and_duplicate_nothing(settings: Settings, db_path: Path) -> None:
    LocalStore.preflight(settings)
    async with (
        await anyio.open_process([sys.executable, "-c", _WRITER, str(db_path), "a"]) as a,
        await anyio.open_process([sys.executable, "-c", _WRITER, str(db_path), "b"]) as b,
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
    assert counts(db_path) == {"contacts": 8, "methods": 16, "identities": 0}


# ---------- a held lock, a failed call ----------


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's writer, as far as SQLite can tell: a connection inside BEGIN IMMEDIATE."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO contacts (id, created_at, updated_at) VALUES ('other', 'now', 'now')")
    return holder


async def test_a_call_waits_for_another_writer_then_succeeds(db_path: Path) -> None:
    store = LocalStore.open(db_path)
    holder = _hold_write_lock(db_path)
    release = threading.Timer(0.2, holder.execute, ("COMMIT",))
    release.start()
    try:
        result = await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None))
    finally:
        release.join()
        holder.close()
        await store.aclose()

    assert result.outcome == "created"
    assert counts(db_path)["contacts"] == 2


async def test_a_lock_held_past_busy_timeout_is_a_retryable_provider_unavailable(db_path: Path) -> None:
    store = LocalStore.open(db_path, busy_timeout_ms=50)
    holder = _hold_write_lock(db_path)
    try:
        with pytest.raises(ProviderUnavailable) as caught:
            await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None))
        holder.execute("ROLLBACK")
        after = await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None))
    finally:
        holder.close()
        await store.aclose()

    info = caught.value.info()
    assert (info.code.value, info.retryable) == ("provider_unavailable", True)
    assert after.outcome == "created"  # the store was left outside any transaction


async def test_a_failure_mid_transaction_rolls_the_whole_call_back(db_path: Path) -> None:
    store = LocalStore.open(db_path)
    with closing(sqlite3.connect(db_path)) as db:
        db.execute(
            "CREATE TRIGGER refuse AFTER INSERT ON methods WHEN new.value = 'boom@example.com' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    boom = AttachContactInput(
        end_user_id="", channel="email", raw_value="x", type="email", normalized_value="boom@example.com"
    )
    try:
        with pytest.raises(sqlite3.IntegrityError):
            await store.upsert_contact(UpsertContactInput(email="boom@example.com", user_id=None, name="Boom"))
        survivor = await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None))
        with pytest.raises(sqlite3.IntegrityError):
            await store.attach_contact(replace(boom, end_user_id=survivor.id))
        page = await store.find_contacts(FindContactsInput())
    finally:
        await store.aclose()

    # The failed upsert's contact row, written before its method insert failed, is gone too.
    assert [c.id for c in page.contacts] == [survivor.id]
    assert survivor.outcome == "created"  # the store was left outside any transaction
    assert counts(db_path) == {"contacts": 1, "methods": 1, "identities": 0}
