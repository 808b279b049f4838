"""Retention of the history (CONTACT_MCP_HISTORY_RETENTION_DAYS): rows past it are pruned when the server starts
and on a write once the last pruning is an hour old; 0 keeps everything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from mcp import Client

from contact_mcp import build_server, load_settings
from contact_mcp.history import HistoryLog
from contact_mcp.models import HistoryEntry
from contact_mcp.store import LocalStore
from contact_mcp.store.history import HistoryQuery
from contact_mcp.store.rules import instant

pytestmark = pytest.mark.anyio


def aged(days: int) -> HistoryEntry:
    at = instant(datetime.now(UTC) - timedelta(days=days))
    return HistoryEntry(at=at, tool="upsert_contact", provider="local", contact_id="c", outcome="updated")


async def ages(db: Path) -> list[str]:
    store = LocalStore.open(db)
    try:
        return [e.at for e in (await store.backend.history_page(HistoryQuery())).entries]
    finally:
        await store.aclose()


async def seed(db: Path, *days: int) -> None:
    store = LocalStore.open(db)
    try:
        await store.backend.add_history([aged(n) for n in days])
    finally:
        await store.aclose()


@pytest.mark.parametrize(("retention", "kept"), [(30, 1), (0, 2)], ids=["30-days", "forever"])
async def test_the_server_prunes_past_retention_when_it_starts(db_path: Path, retention: int, kept: int) -> None:
    await seed(db_path, 400, 2)
    server = build_server(load_settings(db=str(db_path), history_retention_days=retention))
    async with Client(server) as client:
        await client.list_tools()
    assert len(await ages(db_path)) == kept


async def test_the_default_retention_is_a_year() -> None:
    assert load_settings().history_retention_days == 365


async def test_a_write_prunes_when_the_last_pruning_is_an_hour_old(db_path: Path) -> None:
    await seed(db_path, 40)
    store = LocalStore.open(db_path)
    try:
        history = HistoryLog(store.backend, retention_days=30)
        await history.record(aged(0))  # never pruned yet: due
        assert len(await ages(db_path)) == 1
        await store.backend.add_history([aged(40)])
        await history.record(aged(0))  # pruned a moment ago: not due
        assert len(await ages(db_path)) == 3
    finally:
        await store.aclose()
