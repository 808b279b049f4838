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

# Prefixes of the environment variables our settings read; cleared for every test so the developer's shell
# cannot leak in.
_OUR_PREFIXES = ("CONTACT_MCP_", "FEATHER_", "TETHERAI_", "BLOOIO_", "FEATUREBASE_", "PROTOCOL_")


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
