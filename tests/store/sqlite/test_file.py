"""SQLite only: the store's file, created with its folder on first use, configured for safe sharing, refused clearly.

A path the store cannot use is the operator's problem, so it fails at start-up (`build_server` runs the
preflight) with a `ConfigError` naming CONTACT_MCP_DB, before any tool call could fail on it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import anyio
import pytest
from mcp import Client

from contact_mcp import ConfigError, build_server, load_settings
from contact_mcp.errors import ProviderUnavailable
from contact_mcp.models import HistoryEntry, UpsertContactInput
from contact_mcp.store import LocalStore
from contact_mcp.store.migrations.sqlite import SCHEMA_VERSION
from contact_mcp.store.sqlite import SqliteBackend

pytestmark = pytest.mark.anyio


def scalar(path: Path, sql: str) -> object:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchone()[0]


async def test_db_file_and_folder_are_created_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "contacts.db"

    server = build_server(load_settings(db=str(path)))

    assert path.is_file()
    assert scalar(path, "PRAGMA user_version") == SCHEMA_VERSION
    async with Client(server) as client:
        result = await client.call_tool("upsert_contact", {"email": "ann@example.com"})
    assert result.structured_content is not None
    assert result.structured_content["outcome"] == "created"


async def test_the_store_uses_wal_mode(db_path: Path) -> None:
    async with Client(build_server(load_settings(db=str(db_path)))) as client:
        await client.call_tool("upsert_contact", {"email": "ann@example.com"})

    assert scalar(db_path, "PRAGMA journal_mode") == "wal"


async def test_the_store_connection_is_configured_for_sharing(db_path: Path) -> None:
    store = SqliteBackend.open(db_path, busy_timeout_ms=1234)
    try:
        settings = {
            name: store._db.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("foreign_keys", "synchronous", "busy_timeout")
        }
    finally:
        await store.aclose()

    assert settings == {"foreign_keys": 1, "synchronous": 1, "busy_timeout": 1234}  # synchronous 1 is NORMAL


async def test_probe_names_the_file(db_path: Path) -> None:
    store = LocalStore.open(db_path)

    verdict = await store.probe()
    await store.aclose()

    assert str(db_path) in verdict
    assert "journal_mode=wal" in verdict


async def test_a_closed_store_refuses_calls(db_path: Path) -> None:
    store = LocalStore.open(db_path)

    await store.aclose()

    with pytest.raises(sqlite3.ProgrammingError):
        await store.probe()


async def test_a_store_whose_file_vanished_is_not_ready(db_path: Path) -> None:
    """An open connection keeps working on an unlinked file; readiness looks for the file by name."""
    store = LocalStore.open(db_path)
    await store.ready()
    for path in db_path.parent.iterdir():
        path.unlink()

    try:
        with pytest.raises(ProviderUnavailable):
            await store.ready()
    finally:
        await store.aclose()


# ---------- unusable paths ----------


def _parent_is_a_file(tmp_path: Path) -> Path:
    (tmp_path / "file").write_text("not a folder")
    return tmp_path / "file" / "contacts.db"


def _grandparent_is_a_file(tmp_path: Path) -> Path:
    (tmp_path / "file").write_text("not a folder")
    return tmp_path / "file" / "sub" / "contacts.db"


def _path_is_a_folder(tmp_path: Path) -> Path:
    (tmp_path / "contacts.db").mkdir()
    return tmp_path / "contacts.db"


def _not_a_database(tmp_path: Path) -> Path:
    path = tmp_path / "contacts.db"
    path.write_text("name,email\nann,ann@example.com\n" * 200)
    return path


def _newer_schema(tmp_path: Path) -> Path:
    path = tmp_path / "contacts.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    return path


def _another_apps_database(tmp_path: Path) -> Path:
    path = tmp_path / "contacts.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE contacts (name TEXT)")
    return path


UNUSABLE: list[tuple[Callable[[Path], Path], str]] = [
    (_parent_is_a_file, "is a file, not a folder"),
    (_grandparent_is_a_file, "is a file, not a folder"),
    (_path_is_a_folder, "is a folder"),
    (_not_a_database, "not a usable contact database"),
    (_newer_schema, "newer than this contact-mcp"),
    (_another_apps_database, "not a usable contact database"),
]
UNUSABLE_IDS = [
    "parent-is-a-file",
    "ancestor-is-a-file",
    "path-is-a-folder",
    "not-sqlite",
    "newer-schema",
    "foreign-db",
]


@pytest.mark.parametrize(("make", "reason"), UNUSABLE, ids=UNUSABLE_IDS)
def test_unusable_path_fails_at_start_up_naming_the_variable(
    tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    path = make(tmp_path)

    with pytest.raises(ConfigError) as caught:
        build_server(load_settings(db=str(path)))

    assert "CONTACT_MCP_DB" in str(caught.value)
    assert reason in str(caught.value)


@pytest.mark.parametrize(("make", "reason"), UNUSABLE, ids=UNUSABLE_IDS)
def test_unusable_path_fails_when_the_store_is_opened(
    tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    path = make(tmp_path)

    with pytest.raises(ConfigError, match="CONTACT_MCP_DB"):
        LocalStore.from_settings(load_settings(db=str(path)))


def test_a_refused_file_is_left_as_it_was(tmp_path: Path) -> None:
    path = _not_a_database(tmp_path)
    before = path.read_bytes()

    with pytest.raises(ConfigError):
        LocalStore.preflight(load_settings(db=str(path)))

    assert path.read_bytes() == before


async def test_history_appended_by_many_callers_at_once_is_all_kept(db_path: Path) -> None:
    """Provider writes record their history concurrently; none may be lost to SQLite's "API misuse" (a cursor
    handed back to the event loop's thread and reset there while the writer's thread runs the next insert)."""
    backend = SqliteBackend.open(db_path)
    entry = HistoryEntry(at="2026-12-03T00:00:00.000Z", tool="upsert_contact", provider="featurebase", outcome="ok")
    try:

        async def add(n: int) -> None:
            for _ in range(n):
                await backend.add_history([entry])

        async with anyio.create_task_group() as group:
            for _ in range(32):
                group.start_soon(add, 100)
    finally:
        await backend.aclose()
    with closing(sqlite3.connect(db_path)) as db:
        assert db.execute("SELECT count(*) FROM history").fetchone() == (3200,)


async def test_a_store_call_may_not_hand_its_cursor_to_the_event_loop(db_path: Path) -> None:
    backend = SqliteBackend.open(db_path)
    try:
        with pytest.raises(TypeError, match="returned its cursor"):
            await backend._run(lambda db: db.execute("SELECT 1"), begin=None)  # pyright: ignore[reportPrivateUsage]
    finally:
        await backend.aclose()


def _entry() -> HistoryEntry:
    return HistoryEntry(at="2026-12-03T00:00:00.000Z", tool="upsert_contact", provider="featurebase", outcome="ok")


async def test_a_history_entry_waits_for_another_writer_off_the_event_loop(db_path: Path) -> None:
    """Appended on the loop's thread only when the write lock is free at once; held by another connection, the
    entry waits on the writer's thread while the loop goes on, and is kept once the lock is released."""
    backend = SqliteBackend.open(db_path)
    other = sqlite3.connect(db_path, isolation_level=None)
    ticks = 0
    try:
        other.execute("BEGIN IMMEDIATE")
        async with anyio.create_task_group() as group:
            group.start_soon(backend.add_history, [_entry()])
            for _ in range(20):  # the loop runs while the append waits for the lock
                await anyio.sleep(0.01)
                ticks += 1
            other.execute("COMMIT")
    finally:
        other.close()
        await backend.aclose()
    assert ticks == 20
    with closing(sqlite3.connect(db_path)) as db:
        assert db.execute("SELECT count(*) FROM history").fetchone() == (1,)


async def test_history_appended_on_the_loop_is_checkpointed_so_the_wal_stays_small(db_path: Path) -> None:
    backend = SqliteBackend.open(db_path)
    try:
        for _ in range(3_000):  # each append is its own commit: at least a page of WAL without checkpoints
            await backend.add_history([_entry()])
        wal = await anyio.Path(f"{db_path}-wal").stat()
    finally:
        await backend.aclose()
    assert wal.st_size < 3_000 * 4096  # a page (and its frame header) per append without checkpoints


async def test_a_short_write_runs_on_the_loops_connection_when_the_lock_is_free(db_path: Path) -> None:
    """No hop to the writer's thread when the write lock is free at once: the statements run on the appender."""
    backend = SqliteBackend.open(db_path)
    store = LocalStore(backend)
    on_loop: list[str] = []
    try:
        appender = backend._appender  # pyright: ignore[reportPrivateUsage]
        assert appender is not None
        appender.set_trace_callback(on_loop.append)
        created = await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None, name="Ann"))
    finally:
        await backend.aclose()
    assert created.outcome == "created"
    assert any(statement.startswith("INSERT INTO contacts") for statement in on_loop), on_loop


async def test_short_writes_on_the_loop_are_checkpointed_so_the_wal_stays_small(db_path: Path) -> None:
    backend = SqliteBackend.open(db_path)
    store = LocalStore(backend)
    try:
        for i in range(1_000):  # each a commit of a few pages (contact, index, history) without checkpoints
            await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None, name=f"Ann {i}"))
        wal = await anyio.Path(f"{db_path}-wal").stat()
    finally:
        await backend.aclose()
    assert wal.st_size < 1_000 * 4096
