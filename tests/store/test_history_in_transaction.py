"""A store write and its history entry commit together, in one transaction (one commit per write, not two), on
PostgreSQL, whose transaction ids show it: a trigger notes the transaction of every change to `contacts`,
`methods` and `history`. (The behaviour both backends share, what is recorded and that a refused row never fails
the write, is tests/store/test_history.py.)"""

from __future__ import annotations

import psycopg
import pytest
from mcp import Client

from tests.store.calls import PHONE, new_contact, ok

pytestmark = pytest.mark.anyio

_TABLES = ("contacts", "methods", "history")
_NOTE = "EXECUTE FUNCTION note_xact()"


@pytest.fixture(scope="module", params=["postgres"])
def store_backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def note_transactions(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS seen (tbl text, xid text)")
        conn.execute("TRUNCATE seen")
        conn.execute(
            "CREATE OR REPLACE FUNCTION note_xact() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO seen VALUES (TG_TABLE_NAME, pg_current_xact_id()::text); RETURN NULL; END $$"
        )
        for table in _TABLES:
            conn.execute(f"DROP TRIGGER IF EXISTS note ON {table}")
            conn.execute(f"CREATE TRIGGER note AFTER INSERT OR UPDATE OR DELETE ON {table} {_NOTE}")


def transactions(db: str) -> list[set[str]]:
    """The tables each transaction changed, in the order of the transactions."""
    with psycopg.connect(db, autocommit=True) as conn:
        rows = conn.execute("SELECT xid, tbl FROM seen ORDER BY xid::xid8").fetchall()
        for table in _TABLES:
            conn.execute(f"DROP TRIGGER note ON {table}")
    grouped: dict[str, set[str]] = {}
    for xid, table in rows:
        grouped.setdefault(xid, set()).add(table)
    return list(grouped.values())


async def test_each_write_commits_its_history_entry_in_its_own_transaction(client: Client, empty_store: str) -> None:
    note_transactions(empty_store)
    ann = await new_contact(client, email="ann@example.com", name="Ann")  # created: scripted
    await ok(client, "upsert_contact", email="ann@example.com", name="Ann Lee")  # updated: scripted
    await ok(client, "attach_contact", end_user_id=ann, channel="phone", value=PHONE)
    await ok(client, "delete_contact", contact_id=ann, confirm=True)  # not scripted: psycopg's own transaction
    assert transactions(empty_store) == [
        {"contacts", "methods", "history"},
        {"contacts", "history"},
        {"contacts", "methods", "history"},
        {"contacts", "methods", "history"},
    ]
