"""The server-side functions of the hottest reads (`store/postgres_reads.py`): each answers exactly what the SQL it
stands for answers, `upsert_candidates` takes the same locks in the same order and reads after them, and a change
to their text cannot reach new databases only."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import anyio
import psycopg
import pytest
from mcp import Client
from psycopg import errors as pg_errors

from contact_mcp import build_server, load_settings
from contact_mcp.store.migrations.postgres import _VERSION_TABLE, FUNCTIONS_DIGEST, MIGRATIONS, SCHEMA_VERSION
from contact_mcp.store.postgres import lock_key
from contact_mcp.store.postgres_reads import (
    CONTACT_BY_ID,
    PHONE_HOLDERS,
    UPSERT_CANDIDATES,
    WHOLE_CONTACT,
    functions,
    upsert_candidates_where,
)

PLAIN_CANDIDATES = f"{WHOLE_CONTACT} WHERE {upsert_candidates_where('%(user_id)s', '%(email)s')} ORDER BY c.seq"


def test_a_change_to_the_functions_comes_with_a_migration() -> None:
    rendered = hashlib.sha256("\n".join(functions()).encode()).hexdigest()[:16]
    assert rendered == FUNCTIONS_DIGEST, (
        "the server-side functions' SQL changed: databases already at the schema version that created them keep "
        "the old text, so append a migration running `functions(replace=True)` (DROP FUNCTION first if their "
        f"result changed) and set FUNCTIONS_DIGEST to {rendered!r}"
    )


async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


@pytest.fixture
def stored(postgres_url: str) -> dict[str, str]:
    return anyio.run(seed, postgres_url)


async def seed(postgres_url: str) -> dict[str, str]:
    """Contacts of every shape the reads meet: methods and identities, several emails, none at all, merged."""
    async with Client(build_server(load_settings(db=postgres_url))) as client:
        ann = await ok(
            client, "upsert_contact", email="ann@example.com", user_id="u-ann", name="Ann", phone="+14155550101"
        )
        await ok(client, "attach_identity", contact_id=ann["id"], identifier="+14155550101", channel_type="whatsapp")
        await ok(client, "attach_contact", end_user_id=ann["id"], channel="email", value="ann@work.example.com")
        bob = await ok(client, "upsert_contact", user_id="u-bob", name="Bob")
        # A second contact holding Ann's work email (neither holds it as its primary): the older holder is the match.
        cyd = await ok(client, "upsert_contact", email="cyd@example.com", name="Cyd")
        await ok(client, "attach_contact", end_user_id=cyd["id"], channel="email", value="ann@work.example.com")
        dan = await ok(client, "upsert_contact", email="dan@example.com", user_id="u-dan")
        eve = await ok(client, "upsert_contact", email="eve@example.com", user_id="u-eve")
        await ok(client, "merge_contacts", survivor_id=eve["id"], duplicate_ids=[dan["id"]], confirm=True)
        return {"ann": ann["id"], "bob": bob["id"], "cyd": cyd["id"], "dan": dan["id"], "eve": eve["id"]}


def rows(url: str, query: Any, params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        return conn.execute(query, params).fetchall()


def test_contact_whole_answers_what_the_select_answers(postgres_url: str, stored: dict[str, str]) -> None:
    for contact_id in [*stored.values(), "00000000-0000-4000-8000-000000000000"]:
        plain = rows(postgres_url, f"{WHOLE_CONTACT} WHERE c.id = %s", (contact_id,))
        assert rows(postgres_url, CONTACT_BY_ID, (contact_id,)) == plain
    assert len(rows(postgres_url, CONTACT_BY_ID, (stored["ann"],))[0][-2]) == 3  # the read is not empty by accident


def test_phone_holders_answers_what_the_select_answers(postgres_url: str, stored: dict[str, str]) -> None:
    plain = (
        "SELECT c.id FROM methods m JOIN contacts c ON c.seq = m.contact_seq WHERE m.value = %s AND m.kind = 'phone' "
        "GROUP BY m.contact_seq, c.id ORDER BY m.contact_seq LIMIT %s"
    )
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # Bob and Cyd share Ann's phone
        for contact in ("bob", "cyd"):
            conn.execute(
                "INSERT INTO methods (id, contact_seq, channel, kind, raw_value, value, created_at) "
                "SELECT gen_random_uuid()::text, seq, 'phone', 'phone', '+14155550101', '+14155550101', '2026-12-03' "
                "FROM contacts WHERE id = %s",
                (stored[contact],),
            )
    for phone, limit in (("+14155550101", 5), ("+14155550101", 2), ("+14155550199", 5)):
        assert rows(postgres_url, PHONE_HOLDERS, (phone, limit)) == rows(postgres_url, plain, (phone, limit))
    assert rows(postgres_url, PHONE_HOLDERS, ("+14155550101", 2)) == [(stored["ann"],), (stored["bob"],)]


# (user_id, email, how many candidates)
CASES = [
    ("u-ann", None, 1),
    (None, "ann@example.com", 1),
    (None, "ann@work.example.com", 1),  # held by Ann and by Cyd: the oldest holder only
    ("u-bob", "cyd@example.com", 2),
    ("u-dan", None, 2),  # a merged contact's user_id: the merged contact and its survivor
    ("u-nobody", "nobody@example.com", 0),
]


@pytest.mark.parametrize(("user_id", "email", "found"), CASES)
def test_upsert_candidates_answers_what_the_select_answers(
    postgres_url: str, stored: dict[str, str], user_id: str | None, email: str | None, found: int
) -> None:
    plain = rows(postgres_url, PLAIN_CANDIDATES, {"user_id": user_id, "email": email})
    called = rows(postgres_url, f"{UPSERT_CANDIDATES} ORDER BY 1", ("{}", user_id, email))
    assert called == plain
    assert len(called) == found


def test_upsert_candidates_holds_the_key_locks_and_the_rows_until_commit(
    postgres_url: str, stored: dict[str, str]
) -> None:
    keys = [lock_key("user_id", "u-bob"), lock_key("email", "cyd@example.com")]
    array = "{" + ",".join(map(str, keys)) + "}"
    with psycopg.connect(postgres_url) as holder, psycopg.connect(postgres_url, autocommit=True) as other:
        found = holder.execute(UPSERT_CANDIDATES, (array, "u-bob", "cyd@example.com")).fetchall()
        assert sorted(row[1] for row in found) == sorted([stored["bob"], stored["cyd"]])
        for key in keys:
            assert other.execute("SELECT pg_try_advisory_xact_lock(%s)", (key,)).fetchone() == (False,)
        for contact in ("bob", "cyd"):
            with pytest.raises(pg_errors.LockNotAvailable):
                other.execute("SELECT 1 FROM contacts WHERE id = %s FOR UPDATE NOWAIT", (stored[contact],))
        # A contact that is no candidate stays free.
        assert other.execute("SELECT 1 FROM contacts WHERE id = %s FOR UPDATE NOWAIT", (stored["ann"],)).fetchone()
        holder.commit()
        assert other.execute("SELECT pg_try_advisory_xact_lock(%s)", (keys[0],)).fetchone() == (True,)


def test_upsert_candidates_reads_what_the_last_holder_of_a_key_committed(
    postgres_url: str, stored: dict[str, str]
) -> None:
    """A writer holding the email's key gives the email to Bob and commits while the function waits on that key:
    the function's read, which follows the lock in a snapshot of its own, sees it (a read before the lock, or in
    the snapshot of the statement calling the function, would miss Bob)."""
    key = lock_key("email", "new@example.com")
    array = "{" + str(key) + "}"
    answer: list[list[tuple[Any, ...]]] = []
    with psycopg.connect(postgres_url) as writer:
        writer.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
        waiter = threading.Thread(
            target=lambda: answer.append(rows(postgres_url, UPSERT_CANDIDATES, (array, None, "new@example.com")))
        )
        waiter.start()
        with psycopg.connect(postgres_url, autocommit=True) as watch:
            for _ in range(500):  # until the function waits on the key
                waiting = watch.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                ).fetchone()
                if waiting == (1,):
                    break
                threading.Event().wait(0.01)
            else:
                pytest.fail("the function never waited for the key's lock")
        writer.execute(
            "INSERT INTO methods (id, contact_seq, channel, kind, raw_value, value, created_at) "
            "SELECT gen_random_uuid()::text, seq, 'email', 'email', 'new@example.com', 'new@example.com', '2026-12-03' "
            "FROM contacts WHERE id = %s",
            (stored["bob"],),
        )
        writer.commit()
        waiter.join(10)
    assert [row[1] for row in answer[0]] == [stored["bob"]]


def test_a_database_at_version_2_gets_the_functions_at_start_up(postgres_url: str) -> None:
    """A database an older contact-mcp made (tables only) is migrated by the next start-up and then served."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for statements in MIGRATIONS[:2]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(_VERSION_TABLE)
        conn.execute("INSERT INTO contact_mcp_schema (version) VALUES (2)")

    upserted = anyio.run(upsert_one, postgres_url)

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert conn.execute("SELECT version FROM contact_mcp_schema").fetchone() == (SCHEMA_VERSION,)
        assert rows(postgres_url, CONTACT_BY_ID, (upserted,))[0][1] == upserted


async def upsert_one(postgres_url: str) -> str:
    async with Client(build_server(load_settings(db=postgres_url))) as client:
        return (await ok(client, "upsert_contact", email="ann@example.com"))["id"]
