"""SQLite only: another process's write lock, the busy timeout, a failed statement mid-call, and the event loop.

"Another process" is a second connection inside `BEGIN IMMEDIATE`: to SQLite that is exactly what another
contact-mcp writing to the same file looks like.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import anyio
import pytest
from mcp import Client

from contact_mcp import build_server, load_settings
from contact_mcp.errors import ProviderUnavailable
from contact_mcp.models import AttachContactInput, FindContactsInput, UpsertContactInput
from contact_mcp.store import LocalStore
from contact_mcp.store.sqlite import SqliteBackend
from tests.store.calls import counts

pytestmark = pytest.mark.anyio


@pytest.fixture
def holder(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A connection, as another process would hold one, on a file whose schema exists."""
    LocalStore.preflight(load_settings(db=str(db_path)))
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    yield conn
    conn.close()


def hold_write_lock(holder: sqlite3.Connection) -> None:
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO contacts (id, created_at, updated_at) VALUES ('other', 'now', 'now')")


async def test_a_call_waits_for_another_writer_then_succeeds(db_path: Path, holder: sqlite3.Connection) -> None:
    store = LocalStore(SqliteBackend.open(db_path))
    hold_write_lock(holder)
    release = threading.Timer(0.2, holder.execute, ("COMMIT",))
    release.start()
    try:
        result = await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None))
        totals = await counts(store)
    finally:
        release.join()
        await store.aclose()

    assert result.outcome == "created"
    assert totals["contacts"] == 2


async def test_a_lock_held_past_busy_timeout_is_a_retryable_provider_unavailable(
    db_path: Path, holder: sqlite3.Connection
) -> None:
    store = LocalStore(SqliteBackend.open(db_path, busy_timeout_ms=50))
    hold_write_lock(holder)
    try:
        with pytest.raises(ProviderUnavailable) as caught:
            await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None))
        holder.execute("ROLLBACK")
        after = await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None))
    finally:
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
        totals = await counts(store)
    finally:
        await store.aclose()

    # The failed upsert's contact row, written before its method insert failed, is gone too.
    assert [c.id for c in page.contacts] == [survivor.id]
    assert survivor.outcome == "created"  # the store was left outside any transaction
    assert totals == {"contacts": 1, "methods": 1, "identities": 0}


async def test_a_write_waiting_for_the_lock_blocks_neither_the_event_loop_nor_reads(
    db_path: Path, holder: sqlite3.Connection
) -> None:
    """While a write waits for another process's lock, the server still answers: `tools/list` (which never
    touches the database) and a read complete while the upsert is still waiting. On the event loop, neither could;
    on one connection, the read would queue behind the write."""
    order: list[str] = []
    async with Client(build_server(load_settings(db=str(db_path)))) as client:
        made = await client.call_tool("upsert_contact", {"email": "bob@example.com"})
        assert made.structured_content is not None
        hold_write_lock(holder)

        async def upsert() -> None:
            result = await client.call_tool("upsert_contact", {"email": "ann@example.com"})
            assert not result.is_error, result.content
            order.append("upsert")

        async with anyio.create_task_group() as group:
            group.start_soon(upsert)
            await anyio.sleep(0.05)  # let the upsert reach the lock
            await client.list_tools()
            order.append("tools/list")
            read = await client.call_tool("get_contact", {"contact_id": made.structured_content["id"]})
            assert not read.is_error, read.content
            order.append("get_contact")
            holder.execute("COMMIT")

    assert order == ["tools/list", "get_contact", "upsert"]


async def test_a_session_opens_while_another_process_holds_the_write_lock(
    db_path: Path, holder: sqlite3.Connection
) -> None:
    """Start-up proves the file writable once; opening the store for a session takes no write lock."""
    server = build_server(load_settings(db=str(db_path)))
    hold_write_lock(holder)
    try:
        async with Client(server) as client:
            page = await client.call_tool("find_contacts", {})
    finally:
        holder.execute("ROLLBACK")

    assert not page.is_error, page.content


async def test_a_cancelled_call_still_finishes_its_transaction_and_the_store_goes_on(
    db_path: Path, holder: sqlite3.Connection
) -> None:
    """Cancelling the caller (a client gone, a timeout) while its write waits for the lock neither abandons the
    transaction half-done nor wedges the connection: the write completes, and the next call is answered."""
    store = LocalStore(SqliteBackend.open(db_path))
    hold_write_lock(holder)
    try:
        with anyio.move_on_after(0.1) as scope:
            await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None))
        holder.execute("ROLLBACK")
        after = await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None, name="Ann"))
        totals = await counts(store)
    finally:
        await store.aclose()

    assert scope.cancelled_caught
    assert after.outcome == "updated"  # the cancelled call's contact was written, then found
    assert totals == {"contacts": 1, "methods": 1, "identities": 0}


async def test_a_read_answered_on_the_event_loop_never_waits_there_for_a_lock(db_path: Path) -> None:
    """Short reads are answered on the event loop's thread; a file not in WAL mode, whose reader must wait while
    another process writes, sends them to the reader's thread instead, and the loop goes on meanwhile."""
    seeded = LocalStore(SqliteBackend.open(db_path))
    made = await seeded.upsert_contact(UpsertContactInput(email="bob@example.com", user_id=None))
    await seeded.aclose()
    made_id = made.id
    assert made_id is not None
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    try:
        assert other.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
        store = LocalStore(SqliteBackend.open(db_path, read_only=True))  # read-only: the file stays in DELETE mode
        other.execute("BEGIN EXCLUSIVE")  # another process writing: a reader must wait
        order: list[str] = []

        async def read() -> None:
            found = await store.get_contact(made_id)
            page = await store.find_contacts(FindContactsInput(email="bob@example.com"))
            assert [found.id, *(c.id for c in page.contacts)] == [made_id, made_id]
            order.append("read")

        # The other process commits a second later, on its own: a read waiting on the loop's thread would hold the
        # loop until then and finish first.
        commit = threading.Timer(1.0, other.execute, ("COMMIT",))
        commit.start()
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(read)
                await anyio.sleep(0.05)
                order.append("loop")
        finally:
            commit.join()
        await store.aclose()
    finally:
        other.close()

    assert order == ["loop", "read"]
