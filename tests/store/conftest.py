"""The store contract suite's fixtures: every test here runs once per backend (`store_backend`).

A backend under test knows how to make a fresh, empty database (a SQLite file, a PostgreSQL database) and how to
empty it again between tests that share one (building a server per test costs more than most tests). To run the
suite on another backend, add it to `BACKENDS` and to `store_backend`'s params.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Protocol

import psycopg
import pytest
from mcp import Client
from psycopg import sql

from contact_mcp import Settings, build_server, load_settings
from contact_mcp.server import ContactServer
from contact_mcp.store import LocalStore
from tests.postgres_server import create_schema, drop_schema, schema_of, with_schema


def pytest_configure(config: pytest.Config) -> None:
    # The suite marks a test that starts a process `slow` (its quick subset excludes them); registered here too so
    # the store's process-starting tests can carry the mark wherever the suite's own registration lives.
    config.addinivalue_line("markers", "slow: starts a process (a server over stdio or HTTP, the CLI, a database)")


TABLES = ("contacts", "methods", "identities", "history")
"""Every table a write could touch (a store write appends its history entry in its own transaction)."""


class BackendUnderTest(Protocol):
    def new_database(self, folder: Path) -> str:
        """A fresh, empty database for one module: a SQLite path or a PostgreSQL URL (CONTACT_MCP_DB)."""
        ...

    def wipe(self, db: str) -> None:
        """Delete every contact and the history of writes (the schema stays), so the next test starts empty."""
        ...

    def table_text(self, db: str) -> str:
        """Every row of every table, as text: what erasure tests search for a deleted contact's values."""
        ...

    def mark_merged(self, db: str, contact_id: str, survivor_id: str) -> None:
        """Set a contact's `merged_into` directly (as merge_contacts leaves it)."""
        ...

    def dump(self, db: str) -> dict[str, list[tuple[object, ...]]]:
        """Every row of the store's tables, read straight from the database (not through the store)."""
        ...


class SqliteUnderTest:
    def new_database(self, folder: Path) -> str:
        return str(folder / "contacts.db")

    def wipe(self, db: str) -> None:
        if Path(db).exists():
            with closing(sqlite3.connect(db)) as conn, conn:
                conn.executescript(
                    "DELETE FROM identities; DELETE FROM methods; DELETE FROM contacts; DELETE FROM history;"
                )

    def table_text(self, db: str) -> str:
        with closing(sqlite3.connect(db)) as conn:
            tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return "\n".join(repr(row) for table in tables for row in conn.execute(f'SELECT * FROM "{table}"'))

    def mark_merged(self, db: str, contact_id: str, survivor_id: str) -> None:
        with closing(sqlite3.connect(db)) as conn, conn:
            conn.execute("UPDATE contacts SET merged_into = ? WHERE id = ?", (survivor_id, contact_id))

    def dump(self, db: str) -> dict[str, list[tuple[object, ...]]]:
        with closing(sqlite3.connect(db)) as conn:
            return {table: conn.execute(f"SELECT * FROM {table} ORDER BY seq").fetchall() for table in TABLES}


class PostgresUnderTest:
    """A schema of its own per module on the suite's PostgreSQL (or CONTACT_MCP_TEST_DB's), dropped after it."""

    def __init__(self) -> None:
        self.base = ""  # set by `store_db`: the server's URL, known only once its session fixture ran

    def new_database(self, folder: Path) -> str:
        return with_schema(self.base, create_schema(self.base))

    def wipe(self, db: str) -> None:
        with psycopg.connect(db, autocommit=True) as conn:
            if conn.execute("SELECT to_regclass('contacts')").fetchone() != (None,):
                conn.execute("TRUNCATE identities, methods, contacts, history RESTART IDENTITY")

    def table_text(self, db: str) -> str:
        with psycopg.connect(db, autocommit=True) as conn:
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            ).fetchall()
            return "\n".join(
                str(row[0])
                for (table,) in tables
                for row in conn.execute(sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(table))).fetchall()
            )

    def mark_merged(self, db: str, contact_id: str, survivor_id: str) -> None:
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("UPDATE contacts SET merged_into = %s WHERE id = %s", (survivor_id, contact_id))

    def dump(self, db: str) -> dict[str, list[tuple[object, ...]]]:
        with psycopg.connect(db, autocommit=True) as conn:
            return {table: conn.execute(f"SELECT * FROM {table} ORDER BY seq").fetchall() for table in TABLES}

    def drop(self, db: str) -> None:
        drop_schema(self.base, schema_of(db))


BACKENDS: dict[str, BackendUnderTest] = {"sqlite": SqliteUnderTest(), "postgres": PostgresUnderTest()}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store_backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def store_db(
    store_backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    """The module's database on the backend under test (CONTACT_MCP_DB)."""
    backend = BACKENDS[store_backend]
    if isinstance(backend, PostgresUnderTest):
        backend.base = request.getfixturevalue("postgres_base_url")
    db = backend.new_database(tmp_path_factory.mktemp(store_backend))
    yield db
    if isinstance(backend, PostgresUnderTest):
        backend.drop(db)


@pytest.fixture(scope="module")
def store_settings(store_db: str) -> Settings:
    return load_settings(db=store_db, providers="local", default_region=None)


@pytest.fixture(scope="module")
def server(store_settings: Settings) -> ContactServer:
    """One server per module and backend (its preflight creates the schema); each test gets an empty store."""
    return build_server(store_settings)


@pytest.fixture
def empty_store(server: ContactServer, store_backend: str, store_db: str) -> str:
    """The module's database, emptied for this test; returns CONTACT_MCP_DB."""
    BACKENDS[store_backend].wipe(store_db)
    return store_db


@pytest.fixture
async def client(server: ContactServer, empty_store: str) -> AsyncIterator[Client]:
    async with Client(server, raise_exceptions=True) as session:
        yield session


@pytest.fixture
async def store(store_settings: Settings, empty_store: str) -> AsyncIterator[LocalStore]:
    """The store itself, opened on the (empty) database, for the primitives no tool reaches."""
    opened = LocalStore.from_settings(store_settings)
    yield opened
    await opened.aclose()
