"""merge_contacts racing writes on the same keys, on every backend (on PostgreSQL over the pool's connections):
whatever the order, nothing is lost and nothing is duplicated."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from contact_mcp.store import LocalStore
from tests.store.calls import counts
from tests.store.test_concurrency import call, gather

pytestmark = pytest.mark.anyio

PAIRS = 8


async def test_merges_racing_upserts_and_attaches_lose_and_duplicate_nothing(client: Client, store: LocalStore) -> None:
    survivors: list[str] = []
    duplicates: list[str] = []
    for i in range(PAIRS):
        # Odd survivors have a user_id of their own, so the duplicate's stays on its stub and leads there.
        own = {"user_id": f"su{i}"} if i % 2 else {}
        made = await call(client, "upsert_contact", email=f"s{i}@example.com", name=f"Person {i}", **own)
        survivors.append(made["id"])
        made = await call(client, "upsert_contact", email=f"d{i}@example.com", user_id=f"u{i}", name=f"Person {i}")
        duplicates.append(made["id"])
    racing: list[tuple[Client, str, dict[str, Any]]] = []
    for i in range(PAIRS):
        racing += [
            (client, "upsert_contact", {"user_id": f"u{i}", "phone": f"+1415555{i:04d}"}),
            (client, "upsert_contact", {"email": f"d{i}@example.com", "locale": "fr"}),
            (
                client,
                "merge_contacts",
                {"survivor_id": survivors[i], "duplicate_ids": [duplicates[i]], "confirm": True},
            ),
            (client, "attach_contact", {"end_user_id": duplicates[i], "channel": "sms", "value": f"+1415666{i:04d}"}),
            (client, "upsert_contact", {"user_id": f"u{i}", "email": f"new{i}@example.com"}),
        ]

    results = await gather(*racing)

    assert all(r["outcome"] == "updated" for r in results if "outcome" in r)
    assert await counts(store) == {"contacts": 2 * PAIRS, "methods": 5 * PAIRS, "identities": 0}
    for i in range(PAIRS):
        kept = await call(client, "get_contact", contact_id=survivors[i])
        assert kept["user_id"] == (f"su{i}" if i % 2 else f"u{i}")
        assert kept["locale"] == "fr"
        assert sorted(m["value"] for m in kept["methods"]) == sorted(
            [f"+1415555{i:04d}", f"+1415666{i:04d}", f"d{i}@example.com", f"new{i}@example.com", f"s{i}@example.com"]
        )
        stub = await call(client, "get_contact", contact_id=duplicates[i])
        assert (stub["merged_into"], stub["methods"]) == (survivors[i], [])
    assert len((await call(client, "find_contacts", limit=50))["contacts"]) == PAIRS
