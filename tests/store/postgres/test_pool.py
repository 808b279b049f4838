"""The PostgreSQL backend's connection pool: a call cancelled mid-transaction (a client gone, a timeout) still
gives its connection back, so a pool of one keeps serving."""

from __future__ import annotations

import anyio
import psycopg
import pytest

from contact_mcp import load_settings
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
