"""PostgreSQL only: an import batch checks whether any stored contact holds its keys by index probes, so the check
does not grow with the store.

Timing is not asserted (machines vary); PostgreSQL's own plan is, with statistics, on a store the size of the
import benchmark's, where a check asking whether any row `EXISTS` was planned as a scan of every contact (the
planner expects the first match early). The plan is the one the statement gets with a batch's values (psycopg sends
them as parameters of an unnamed statement, planned with them).
"""

from __future__ import annotations

import psycopg
import pytest

from contact_mcp.store import LocalStore
from contact_mcp.store.postgres import batch_keys_held
from contact_mcp.store.rules import BatchKeys

pytestmark = pytest.mark.anyio

STORED = 100_000


async def test_a_batch_of_new_contacts_checks_its_keys_through_indexes(postgres_url: str) -> None:
    store = LocalStore.open(postgres_url)
    try:
        await store.probe()  # migrates
    finally:
        await store.aclose()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO contacts (id, user_id, name, created_at, updated_at) "
            "SELECT gen_random_uuid()::text, 'user-' || n, 'Person ' || n, 'then', 'then' "
            "FROM generate_series(1, %s) AS n",
            (STORED,),
        )
        conn.execute(
            "INSERT INTO methods (id, contact_seq, channel, type, kind, raw_value, value, is_primary, created_at) "
            "SELECT gen_random_uuid()::text, seq, kind, kind, kind, v, v, true, 'then' FROM contacts, "
            "LATERAL (VALUES ('email', 'p' || seq || '@example.com'), ('phone', '+1415' || (2000000 + seq))) "
            "AS m (kind, v)"
        )
        conn.execute("ANALYZE contacts")
        conn.execute("ANALYZE methods")
        new = [f"new-{i}" for i in range(200)]
        keys = BatchKeys(
            emails=tuple(f"{n}@example.com" for n in new),
            user_ids=tuple(new),
            username_keys=(),
            phones=(),
            matching_phones=(),
        )
        statement, params = batch_keys_held(keys)

        plan = [str(row[0]) for row in conn.execute("EXPLAIN " + statement, params)]
        held = conn.execute(statement, params).fetchone()

    assert held == (0,)
    assert any("contacts_user_id" in step for step in plan), plan
    assert any("methods_value" in step for step in plan), plan
    assert not [step for step in plan if "Seq Scan" in step], plan
