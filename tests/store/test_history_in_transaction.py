"""A store write and its history entry commit together, in one transaction (one commit per write, not two), on
PostgreSQL, whose transaction ids show it: a trigger notes the transaction of every change to `contacts`,
`methods` and `history`. (The behaviour both backends share, what is recorded and that a refused row never fails
the write, is tests/store/test_history.py.)"""

from __future__ import annotations

import psycopg
import pytest
from mcp import Client

from contact_mcp.server import ContactServer
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


def lose_once(db: str) -> None:
    """The next UPDATE of a contact fails as a lost race (serialization_failure), once: a sequence counts the
    UPDATEs (a sequence is not rolled back with the failed transaction)."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("DROP SEQUENCE IF EXISTS updates")
        conn.execute("CREATE SEQUENCE updates")
        conn.execute(
            "CREATE OR REPLACE FUNCTION lose_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF nextval('updates') = 1 THEN RAISE EXCEPTION 'lost' USING ERRCODE = 'serialization_failure'; END IF; "
            "RETURN NEW; END $$"
        )
        conn.execute("CREATE TRIGGER lose BEFORE UPDATE ON contacts FOR EACH ROW EXECUTE FUNCTION lose_once()")


def updates_tried(db: str) -> int:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("DROP TRIGGER lose ON contacts")
        row = conn.execute("SELECT last_value FROM updates").fetchone()
    assert row is not None
    return int(row[0])


async def test_a_write_whose_last_statements_lose_a_race_is_rerun_and_its_entry_recorded_once(
    server: ContactServer, client: Client, empty_store: str
) -> None:
    """The write's last statements travel with its history entry and the COMMIT: their failure is the write's
    (rerun), not the entry's (which would be counted as refused and the write committed without it)."""
    await new_contact(client, email="ann@example.com", name="Ann")
    assert server.history is not None
    recorded = server.history.counts()
    lose_once(empty_store)
    try:
        updated = await ok(client, "upsert_contact", email="ann@example.com", name="Ann Lee")
    finally:
        tried = updates_tried(empty_store)

    assert tried == 2  # lost, then rerun
    assert updated["changes"] == [{"field": "name", "old": "Ann", "new": "Ann Lee"}]
    assert server.history.counts() == {**recorded, "recorded": recorded["recorded"] + 1}
    history = await ok(client, "get_contact", contact_id=updated["id"], include_history=True)
    assert [entry["tool"] for entry in history["history"]] == ["upsert_contact", "upsert_contact"]
