"""Fixtures shared by the whole suite: settings on a temporary database, an in-memory MCP client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import stamina
from mcp import Client
from stamina.instrumentation import RetryDetails, get_on_retry_hooks, set_on_retry_hooks

from contact_mcp import Settings, build_server, load_settings
from tests.postgres_server import TEST_DB_ENV, PostgresServer, create_schema, drop_schema, with_schema

# Prefixes of the environment variables our settings read; cleared for every test so the developer's shell
# cannot leak in.
_OUR_PREFIXES = ("CONTACT_MCP_", "FEATHER_", "TETHERAI_", "BLOOIO_", "FEATUREBASE_", "PROTOCOL_")
# Read before `_clean_env` clears it: the user's own PostgreSQL for the store contract suite (tests/postgres_server.py).
_USER_TEST_DB = os.environ.get(TEST_DB_ENV, "").strip() or None


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(_OUR_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _no_retry_sleep() -> Iterator[None]:
    """Retries still happen (attempt counts are real), but stamina never sleeps between them."""
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


@pytest.fixture
def retry_waits() -> Iterator[list[float]]:
    """Real backoff (stamina's testing mode off, where every wait — even a Retry-After one — is zero), with each
    scheduled wait recorded through stamina's instrumentation."""
    waits: list[float] = []

    def record(details: RetryDetails) -> None:
        waits.append(details.wait_for)

    hooks = get_on_retry_hooks()
    set_on_retry_hooks([record])
    try:
        with stamina.set_testing(False):
            yield waits
    finally:
        set_on_retry_hooks(hooks)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "contacts.db"


@pytest.fixture
def settings(db_path: Path) -> Settings:
    return load_settings(db=str(db_path))


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(build_server(settings), raise_exceptions=True) as c:
        yield c


# ---------- PostgreSQL (tests/postgres_server.py) ----------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server this test session started (once), stopped and removed at the end."""
    try:
        server = PostgresServer.start_new()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def postgres_base_url(request: pytest.FixtureRequest) -> str:
    """The PostgreSQL the store contract suite runs on: CONTACT_MCP_TEST_DB's server when set, else the one the
    suite started (started only when a test needs it)."""
    if _USER_TEST_DB is not None:
        return _USER_TEST_DB
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.url()


@pytest.fixture
def postgres_url(postgres_base_url: str) -> Iterator[str]:
    """A URL whose database is empty and this test's own (a fresh schema) on `postgres_base_url`'s server."""
    schema = create_schema(postgres_base_url)
    try:
        yield with_schema(postgres_base_url, schema)
    finally:
        drop_schema(postgres_base_url, schema)


@pytest.fixture
def started_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """Like `postgres_url`, but always on the server the suite started (tests that stop it or spread it over
    server processes)."""
    schema = create_schema(postgres_server.url())
    try:
        yield postgres_server.url(schema=schema)
    finally:
        if not postgres_server.running:
            postgres_server.start()
        drop_schema(postgres_server.url(), schema)
