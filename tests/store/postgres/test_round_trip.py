"""A store moved from SQLite to PostgreSQL: every contact exported from SQLite, restored into PostgreSQL and exported
again is the same, ids, methods, identities, verification and timestamps included."""

from __future__ import annotations

from pathlib import Path

import pytest

from contact_mcp.models import AttachContactInput, AttachIdentityInput, UpsertContactInput
from contact_mcp.store import ContactRecord, LocalStore

pytestmark = pytest.mark.anyio


async def everything(store: LocalStore) -> list[ContactRecord]:
    return [record async for batch in store.iter_records(batch_size=3) for record in batch]


async def test_sqlite_export_restored_into_postgresql_exports_the_same(tmp_path: Path, postgres_url: str) -> None:
    sqlite = LocalStore.open(tmp_path / "contacts.db")
    postgres = LocalStore.open(postgres_url)
    try:
        for k in range(7):
            made = await sqlite.upsert_contact(
                UpsertContactInput(
                    email=f"p{k}@example.com", user_id=f"u{k}", name=f"Person {k}", custom_fields={"k": k, "a": "x"}
                )
            )
            assert made.id is not None
            phone = f"+1415555010{k}"
            await sqlite.attach_contact(
                AttachContactInput(
                    end_user_id=made.id, channel="sms", raw_value=phone, type="sms", normalized_value=phone
                )
            )
            await sqlite.attach_identity(
                AttachIdentityInput(contact_id=made.id, identifier=phone, channel_type=None, channel_id=None)
            )
        exported = await everything(sqlite)
        outcomes = [await postgres.restore(record) for record in exported]
        again = [await postgres.restore(record) for record in exported]
        back = await everything(postgres)
    finally:
        await sqlite.aclose()
        await postgres.aclose()

    assert len(exported) == 7
    assert outcomes == ["created"] * 7
    assert again == ["unchanged"] * 7
    assert back == exported
