"""The history of writes, on every backend: what a sequence of tool calls leaves in it (through a real MCP client),
what get_contact shows of it, and the store's primitives (append, pages, retention, scrubbing)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from typing import Any

import psycopg
import pytest
from mcp import Client
from mcp.types import Implementation

from contact_mcp.models import FieldChange, HistoryEntry
from contact_mcp.server import ContactServer
from contact_mcp.store import LocalStore
from contact_mcp.store.history import HistoryQuery
from tests.store.calls import PHONE, UNKNOWN_UUID, err, new_contact, ok
from tests.store.conftest import BACKENDS

pytestmark = pytest.mark.anyio

CLIENT = Implementation(name="history-test-client", version="1.0")


@pytest.fixture(params=["modern", "legacy"])
async def named_client(
    request: pytest.FixtureRequest, server: ContactServer, empty_store: str
) -> AsyncIterator[Client]:
    """A client that names itself: on 2026-07-28 (clientInfo in each request's _meta) and on a 2025 handshake."""
    mode: Any = "auto" if request.param == "modern" else "legacy"
    async with Client(server, raise_exceptions=True, client_info=CLIENT, mode=mode) as session:
        yield session


async def everything(store: LocalStore) -> list[HistoryEntry]:
    return (await store.backend.history_page(HistoryQuery(limit=500))).entries


def names(entry: HistoryEntry) -> list[str]:
    return [field.field for field in entry.fields]


# ---------- a sequence of calls ----------


async def test_a_sequence_of_writes_is_recorded_in_order_with_who_and_what(
    named_client: Client, store: LocalStore
) -> None:
    ann = await new_contact(named_client, email="ann@example.com", name="Ann", phone=PHONE)
    await ok(named_client, "get_contact", contact_id=ann)  # a read: not recorded
    await ok(named_client, "attach_contact", end_user_id=ann, channel="whatsapp", value="+14155550124")
    await ok(named_client, "upsert_contact", email="ann@example.com", name="Ann")  # changes nothing
    await err(named_client, "set_verification", contact_id=UNKNOWN_UUID, type="email", value="a@b.co", verified=True)
    bob = await ok(named_client, "create_contact", username="bob", phone_number=PHONE)

    upsert, attach, again, failed, create = await everything(store)
    assert [e.tool for e in (upsert, attach, again, failed, create)] == [
        "upsert_contact", "attach_contact", "upsert_contact", "set_verification", "create_contact",
    ]  # fmt: skip
    assert [e.outcome for e in (upsert, attach, again, failed, create)] == [
        "created", "created", "unchanged", "not_found", "created",
    ]  # fmt: skip
    assert [e.contact_id for e in (upsert, attach, again, failed, create)] == [ann, ann, ann, UNKNOWN_UUID, bob["id"]]
    assert {e.provider for e in (upsert, attach, again, failed, create)} == {"local"}
    assert {e.client for e in (upsert, attach, again, failed, create)} == {"history-test-client"}
    assert {e.transport for e in (upsert, attach, again, failed, create)} == {"memory"}
    assert names(upsert) == ["name", "methods", "methods"]
    assert names(attach) == ["methods"]
    assert names(again) == []
    assert names(failed) == ["type", "value", "verified"]  # a failed call changed nothing: the names it was given
    assert upsert.at <= attach.at <= again.at <= failed.at <= create.at
    # The values, masked: the name as it is, emails to their first letter and domain, phones to +1 and 4 digits.
    name, email, phone = upsert.fields
    assert (name.old, name.new) == (None, "Ann")
    assert isinstance(email.new, dict) and isinstance(phone.new, dict)
    assert (email.new["channel"], email.new["value"]) == ("email", "a***@example.com")
    assert (phone.new["channel"], phone.new["value"]) == ("phone", "+1******0123")
    (whatsapp,) = attach.fields
    assert isinstance(whatsapp.new, dict) and whatsapp.new["value"] == "+1******0124"
    stored = "".join(e.model_dump_json() for e in (upsert, attach, again, failed, create))
    for clear in ("ann@example.com", PHONE, "+14155550124", "a@b.co"):
        assert clear not in stored


async def test_a_dry_run_is_not_recorded(client: Client, store: LocalStore) -> None:
    ann = await new_contact(client, email="ann@example.com", custom_fields={"plan": "pro"})
    preview = await ok(client, "upsert_contact", email="ann@example.com", name="Ann", dry_run=True)
    assert preview["dry_run"] is True
    await err(client, "set_verification", contact_id=ann, type="email", value="x@y.co", verified=True, dry_run=True)
    await ok(client, "upsert_contact", email="ann@example.com", custom_fields={"plan": None})
    created, cleared = await everything(store)
    assert (created.outcome, cleared.outcome) == ("created", "updated")
    # A custom field's value is masked whole; null stays null, so "cleared" is visible.
    assert [(f.field, f.old, f.new) for f in cleared.fields] == [("custom_fields.plan", "***", None)]


async def test_reads_and_unknown_tools_are_not_recorded(client: Client, store: LocalStore) -> None:
    ann = await new_contact(client)
    result = await client.call_tool("no_such_tool", {"x": 1})
    assert result.is_error
    await ok(client, "find_contacts", email="ann@example.com")
    await err(client, "get_contact", contact_id=UNKNOWN_UUID)
    assert [e.tool for e in await everything(store)] == ["upsert_contact"]
    assert (await everything(store))[0].contact_id == ann


async def test_a_call_refused_before_the_tool_ran_is_recorded_with_its_code(client: Client, store: LocalStore) -> None:
    await err(client, "upsert_contact", name="No key")
    await err(client, "attach_contact", end_user_id=UNKNOWN_UUID, channel="email", value="x@y.co", bogus=1)
    missing, unknown = await everything(store)
    assert (missing.tool, missing.outcome, missing.contact_id, names(missing)) == (
        "upsert_contact", "invalid_argument", None, ["name"],
    )  # fmt: skip
    # Only the tool's own arguments are named: an unknown one is the caller's noise.
    assert (unknown.outcome, unknown.contact_id) == ("invalid_argument", UNKNOWN_UUID)
    assert names(unknown) == ["channel", "value"]


async def test_deleting_a_contact_keeps_its_history_without_a_value(
    client: Client, store: LocalStore, empty_store: str, store_backend: str
) -> None:
    ann = await new_contact(client, email="ann.lovelace@example.com", name="Ann Lovelace", phone=PHONE)
    await ok(client, "attach_contact", end_user_id=ann, channel="twitter", value="@annlovelace")
    bob = await new_contact(client, email="bob@example.com", name="Bob Builder")
    await ok(client, "delete_contact", contact_id=ann, dry_run=True)
    await ok(client, "delete_contact", contact_id=ann, confirm=True)
    created, attached, other, deleted = await everything(store)
    assert [(e.tool, e.contact_id, e.outcome) for e in (created, attached, deleted)] == [
        ("upsert_contact", ann, "created"), ("attach_contact", ann, "created"), ("delete_contact", ann, "deleted"),
    ]  # fmt: skip
    for entry in (created, attached, deleted):
        assert entry.fields and all(f.old is None and f.new is None for f in entry.fields)
    assert names(created) == ["name", "methods", "methods"]
    assert other.contact_id == bob and ("name", "Bob Builder") in [(f.field, f.new) for f in other.fields]
    text = BACKENDS[store_backend].table_text(empty_store)
    for value in ("Lovelace", "annlovelace", "a***@example.com", "+1******0123"):
        assert value not in text


# ---------- get_contact(include_history) ----------


async def test_get_contact_includes_its_history_newest_first_in_pages(client: Client) -> None:
    ann = await new_contact(client, email="ann@example.com")
    other = await new_contact(client, email="other@example.com")
    for n in range(12):
        await ok(client, "upsert_contact", email="ann@example.com", name=f"Ann {n}")
    plain = await ok(client, "get_contact", contact_id=ann)
    assert "history" not in plain and "history_cursor" not in plain

    first = await ok(client, "get_contact", contact_id=ann, include_history=True)
    assert len(first["history"]) == 10
    assert [e["outcome"] for e in first["history"]] == ["updated"] * 10
    assert {e["contact_id"] for e in first["history"]} == {ann}
    assert first["history"][0]["at"] >= first["history"][-1]["at"]
    rest = await ok(client, "get_contact", contact_id=ann, history_cursor=first["history_cursor"])
    assert [e["outcome"] for e in rest["history"]] == ["updated", "updated", "created"]
    assert "history_cursor" not in rest
    theirs = await ok(client, "get_contact", contact_id=other, include_history=True)
    assert [e["outcome"] for e in theirs["history"]] == ["created"]


async def test_a_bad_history_cursor_is_an_invalid_argument_naming_it(client: Client) -> None:
    ann = await new_contact(client)
    error = await err(client, "get_contact", contact_id=ann, history_cursor="not-a-cursor")
    assert (error["code"], error["field"]) == ("invalid_argument", "history_cursor")


# ---------- recording that fails ----------


def refuse_history(db: str) -> None:
    """Make the database refuse every new history row (a trigger), as a full disk or a broken table would."""
    if db.startswith("postgres"):
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION refuse_history() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'history refused'; END $$"
            )
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON history FOR EACH ROW EXECUTE FUNCTION refuse_history()"
            )
        return
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON history BEGIN SELECT RAISE(ABORT, 'history refused'); END")


def accept_history(db: str) -> None:
    if db.startswith("postgres"):
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("DROP TRIGGER refuse ON history")
            conn.execute("DROP FUNCTION refuse_history()")
        return
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("DROP TRIGGER refuse")


async def test_a_write_stays_a_success_when_its_history_cannot_be_recorded(
    server: ContactServer, empty_store: str, store: LocalStore
) -> None:
    refuse_history(empty_store)
    try:
        async with Client(server, raise_exceptions=True) as client:
            ann = await new_contact(client, email="ann@example.com")
            await ok(client, "upsert_contact", email="ann@example.com", name="Ann")
            assert server.history is not None
            assert server.history.counts() == {"recorded": 0, "failed": 2}
            contact = await ok(client, "get_contact", contact_id=ann, include_history=True)
    finally:
        accept_history(empty_store)
    assert contact["name"] == "Ann"
    assert contact["history"] == []  # nothing was replayed, nothing invented
    assert await everything(store) == []


# ---------- the store's primitives ----------


def entry(at: str, contact_id: str | None = "c-1", provider: str = "local", **changes: Any) -> HistoryEntry:
    return HistoryEntry(
        at=at,
        tool="upsert_contact",
        provider=provider,
        contact_id=contact_id,
        outcome="updated",
        fields=[FieldChange(field=name, old=None, new=value) for name, value in changes.items()],
        client="c",
        transport="stdio",
    )


async def test_pages_filter_and_run_either_way(store: LocalStore, empty_store: str) -> None:
    backend = store.backend
    await backend.add_history(
        [
            entry("2026-01-01T00:00:00.000Z", name="A"),
            entry("2026-01-02T00:00:00.000Z", contact_id="c-2"),
            entry("2026-01-03T00:00:00.000Z", provider="feather"),
            entry("2026-01-04T00:00:00.000Z", email="a***@example.com", custom_fields={"plan": "***", "n": None}),
        ]
    )
    oldest = await backend.history_page(HistoryQuery(contact_id="c-1", limit=2))
    assert [e.at[:10] for e in oldest.entries] == ["2026-01-01", "2026-01-03"]
    after = await backend.history_page(HistoryQuery(contact_id="c-1", limit=2, cursor=oldest.next_cursor))
    assert [e.at[:10] for e in after.entries] == ["2026-01-04"]
    assert after.next_cursor is None
    assert after.entries[0].fields == [
        FieldChange(field="email", new="a***@example.com"),
        FieldChange(field="custom_fields", new={"plan": "***", "n": None}),
    ]
    newest = await backend.history_page(HistoryQuery(contact_id="c-1", provider="local", newest_first=True, limit=1))
    assert [e.at[:10] for e in newest.entries] == ["2026-01-04"]
    older = await backend.history_page(
        HistoryQuery(contact_id="c-1", provider="local", newest_first=True, limit=1, cursor=newest.next_cursor)
    )
    assert [e.at[:10] for e in older.entries] == ["2026-01-01"]
    since = await backend.history_page(HistoryQuery(since="2026-01-02T00:00:00.000Z"))
    assert [e.at[:10] for e in since.entries] == ["2026-01-02", "2026-01-03", "2026-01-04"]


async def test_pruning_deletes_only_rows_before_the_cutoff(store: LocalStore, empty_store: str) -> None:
    backend = store.backend
    await backend.add_history([entry("2025-01-01T00:00:00.000Z"), entry("2026-06-01T00:00:00.000Z")])
    assert await backend.prune_history("2026-01-01T00:00:00.000Z") == 1
    assert [e.at[:4] for e in await everything(store)] == ["2026"]
    assert await backend.prune_history("2026-01-01T00:00:00.000Z") == 0


async def test_scrubbing_a_contact_keeps_its_rows_and_field_names_and_drops_every_value(
    store: LocalStore, empty_store: str
) -> None:
    backend = store.backend
    await backend.add_history(
        [
            entry("2026-01-01T00:00:00.000Z", name="Ann Lovelace", email="a***@example.com"),
            entry("2026-01-02T00:00:00.000Z", provider="feather", name="Ann Lovelace"),
            entry("2026-01-03T00:00:00.000Z", contact_id="c-2", name="Bob"),
        ]
    )
    assert await backend.scrub_history("c-1", "local") == 1
    assert await backend.scrub_history("c-1") == 2
    local, feather, bob = await everything(store)
    assert local.fields == [FieldChange(field="name"), FieldChange(field="email")]
    assert feather.fields == [FieldChange(field="name")]
    assert (local.tool, local.outcome, local.contact_id, local.at) == (
        "upsert_contact", "updated", "c-1", "2026-01-01T00:00:00.000Z",
    )  # fmt: skip
    assert bob.fields == [FieldChange(field="name", new="Bob")]
