"""What the dispatch step records for a call: fields from a result's `changes` with values masked, nothing for a
dry run, and a provider's delete that scrubs the contact's earlier entries (kept in a real SQLite store; the store's
own deletes scrub in their transaction, tests/store/test_history.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp.types import CallToolResult

from contact_mcp.history import HistoryLog
from contact_mcp.models import FieldChange
from contact_mcp.server.recording import entry_for, record_call
from contact_mcp.store import LocalStore
from contact_mcp.store.history import HistoryQuery

pytestmark = pytest.mark.anyio

CONTACT = "3c581643-7537-4bf8-a4e3-49ad85f14fe2"


def result(**structured: Any) -> CallToolResult:
    return CallToolResult(content=[], structured_content={"provider": "local", **structured})


def test_the_fields_come_from_the_results_changes_with_emails_phones_and_custom_values_masked() -> None:
    changes = [
        {"field": "email", "old": "ada.lovelace@example.com", "new": "ada@example.org"},
        {"field": "phone", "old": None, "new": "+14155550132"},
        {"field": "name", "old": "Ada", "new": "Ada Lovelace"},
        {"field": "custom_fields", "old": {"plan": "free"}, "new": {"plan": "pro", "note": None}},
    ]
    entry = entry_for(
        tool="upsert_contact",
        provider="local",
        arguments={"email": "ada@example.org", "name": "Ada Lovelace"},
        result=result(outcome="updated", id=CONTACT, changes=changes),
        client="agent",
        transport="stdio",
    )
    assert entry.fields == [
        FieldChange(field="email", old="a***@example.com", new="a***@example.org"),
        FieldChange(field="phone", old=None, new="+1******0132"),
        FieldChange(field="name", old="Ada", new="Ada Lovelace"),
        FieldChange(field="custom_fields", old={"plan": "***"}, new={"plan": "***", "note": None}),
    ]
    assert (entry.outcome, entry.contact_id, entry.client, entry.transport) == ("updated", CONTACT, "agent", "stdio")
    assert "ada.lovelace" not in entry.model_dump_json() and "5550132" not in entry.model_dump_json()


def test_without_changes_the_fields_are_the_argument_names_and_never_their_values() -> None:
    entry = entry_for(
        tool="set_verification",
        provider="local",
        arguments={"contact_id": CONTACT, "type": "phone", "value": "+14155550132", "verified": True, "confirm": True},
        result=result(contact_id=CONTACT, verified=True),
        client=None,
        transport="http",
    )
    assert [field.model_dump(exclude_none=True) for field in entry.fields] == [
        {"field": "type"},
        {"field": "value"},
        {"field": "verified"},
    ]
    assert entry.outcome == "ok"


@pytest.fixture
async def history(tmp_path: Path) -> AsyncIterator[HistoryLog]:
    store = LocalStore.open(tmp_path / "c.db")
    try:
        yield HistoryLog(store.backend)
    finally:
        await store.aclose()


async def call(
    history: HistoryLog, tool: str, arguments: dict[str, Any], answer: CallToolResult, provider: str = "featurebase"
) -> None:
    await record_call(
        history, tool=tool, provider=provider, arguments=arguments, result=answer, context=None, transport="memory"
    )


async def test_a_dry_run_is_not_recorded(history: HistoryLog) -> None:
    await call(history, "upsert_contact", {"email": "a@b.co", "dry_run": True}, result(outcome="updated", id=CONTACT))
    await call(history, "upsert_contact", {"email": "a@b.co"}, result(outcome="updated", id=CONTACT, dry_run=True))
    assert (await history.page(HistoryQuery())).entries == []
    assert history.counts() == {"recorded": 0, "failed": 0}


async def test_a_provider_delete_scrubs_the_contacts_earlier_entries_and_is_recorded_itself(
    history: HistoryLog,
) -> None:
    changes = [{"field": "name", "old": None, "new": "Ada Lovelace"}, {"field": "email", "old": None, "new": "a@b.co"}]
    created_ada = result(outcome="created", id=CONTACT, changes=changes)
    await call(history, "upsert_contact", {"name": "Ada Lovelace"}, created_ada)
    await call(history, "upsert_contact", {"name": "Ada"}, result(outcome="created", id="merged", changes=changes[:1]))
    await call(history, "upsert_contact", {"name": "Bob"}, result(outcome="created", id="other", changes=changes[:1]))
    gone = [{"field": "name", "old": "Ada Lovelace", "new": None}, {"field": "methods", "old": {"value": "a@b.co"}}]
    deleted_ada = result(id=CONTACT, also_deleted=["merged"], changes=gone)
    await call(history, "delete_contact", {"contact_id": CONTACT}, deleted_ada)
    created, merged, other, deleted = (await history.page(HistoryQuery())).entries
    assert created.fields == [FieldChange(field="name"), FieldChange(field="email")]
    assert merged.fields == [FieldChange(field="name")]
    assert other.fields == [FieldChange(field="name", new="Ada Lovelace")]
    assert (deleted.tool, deleted.outcome, deleted.contact_id) == ("delete_contact", "deleted", CONTACT)
    assert deleted.fields == [FieldChange(field="name"), FieldChange(field="methods")]
    assert "Ada" not in "".join(e.model_dump_json() for e in (created, merged, deleted))


async def test_a_delete_that_failed_or_was_a_dry_run_scrubs_nothing(history: HistoryLog) -> None:
    changes = [{"field": "name", "old": None, "new": "Ada Lovelace"}]
    await call(history, "upsert_contact", {"name": "Ada"}, result(outcome="created", id=CONTACT, changes=changes))
    await call(history, "delete_contact", {"contact_id": CONTACT, "dry_run": True}, result(id=CONTACT, dry_run=True))
    failed = CallToolResult(content=[], structured_content={"error": {"code": "not_found"}}, is_error=True)
    await call(history, "delete_contact", {"contact_id": CONTACT}, failed)
    created, refused = (await history.page(HistoryQuery())).entries
    assert created.fields == [FieldChange(field="name", new="Ada Lovelace")]
    assert (refused.outcome, refused.contact_id) == ("not_found", CONTACT)
