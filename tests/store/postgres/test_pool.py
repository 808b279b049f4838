"""The PostgreSQL backend's connection pool: a call cancelled mid-transaction (a client gone, a timeout) still
gives its connection back, so a pool of one keeps serving."""

from __future__ import annotations

import logging

import anyio
import psycopg
import pytest

from contact_mcp import load_settings
from contact_mcp.logs import RateLimit, configure_logging
from contact_mcp.models import UpsertContactInput
from contact_mcp.store import LocalStore
from contact_mcp.store.postgres import lock_key

pytestmark = pytest.mark.anyio


async def test_a_cancelled_call_returns_its_connection_to_the_pool(postgres_url: str) -> None:
    settings = load_settings(db=postgres_url, db_pool_size=1, connect_timeout_s=2)
    LocalStore.preflight(settings)
    store = LocalStore.from_settings(settings)
    try:
        with psycopg.connect(postgres_url) as holder:  # another replica's upsert of ann, mid-transaction
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("email", "ann@example.com"),))
            with anyio.move_on_after(0.5) as waited:
                await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None))
            holder.rollback()
        after = await store.upsert_contact(UpsertContactInput(email="bob@example.com", user_id=None))
    finally:
        await store.aclose()

    assert waited.cancelled_caught
    assert after.outcome == "created"


async def test_calls_cancelled_mid_statement_are_a_few_warning_lines_not_one_each(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # psycopg closes a connection whose statement a cancellation interrupted, warning each time: every client that
    # leaves mid-call would write two lines.
    driver = logging.getLogger("psycopg")
    for earlier in [f for f in driver.filters if isinstance(f, RateLimit)]:  # one an earlier test may have used up
        driver.removeFilter(earlier)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("WARNING")
    settings = load_settings(db=postgres_url, db_pool_size=1, connect_timeout_s=2)
    LocalStore.preflight(settings)
    store = LocalStore.from_settings(settings)
    try:
        with psycopg.connect(postgres_url) as holder:
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("email", "ann@example.com"),))
            for _ in range(12):
                with anyio.move_on_after(0.2):
                    await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None))
            holder.rollback()
        after = await store.upsert_contact(UpsertContactInput(email="bob@example.com", user_id=None))
    finally:
        await store.aclose()
        root.handlers[:] = handlers
        root.setLevel(level)

    assert after.outcome == "created"
    lines = [line for line in capsys.readouterr().err.splitlines() if "WARNING psycopg:" in line]
    assert 1 <= len(lines) <= 5, lines
