"""Export and import round trips: every contact out as JSONL and back in as it was (ids, methods, identities,
verification, timestamps), on one backend or across two."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client

from contact_mcp import build_server, load_settings
from contact_mcp.models import UpsertContactInput
from contact_mcp.porting.report import Summary
from contact_mcp.porting.run import Progress, export_contacts, export_to_file, import_file, read_through
from contact_mcp.store import LocalStore

pytestmark = pytest.mark.anyio

PHONE, PHONE_2 = "+14155550123", "+14155550124"


async def _fill(db: str) -> None:
    """Contacts with everything a contact can hold, made through the tools."""
    settings = load_settings(db=db, providers="local")
    async with Client(build_server(settings), raise_exceptions=True) as client:

        async def call(tool: str, **arguments: object) -> dict[str, object]:
            result = await client.call_tool(tool, arguments)
            assert not result.is_error, result.content
            assert result.structured_content is not None
            return result.structured_content

        ann = await call(
            "upsert_contact",
            email="ann@example.com",
            user_id="u-ann",
            name="Ann",
            phone=PHONE,
            locale="en",
            profile_picture="https://example.com/ann.png",
            companies=[{"id": "c1", "name": "Acme", "monthly_spend": 12.5}],
            custom_fields={"plan": "pro", "seats": 3, "trial": False, "note": None},
            roles=["admin", "owner"],
            subscribed_to_changelog=True,
        )
        await call("attach_contact", end_user_id=ann["id"], channel="whatsapp", value=PHONE)
        await call("attach_contact", end_user_id=ann["id"], channel="slack", value="U123ANN")
        await call("attach_identity", contact_id=ann["id"], identifier=PHONE, channel_type="whatsapp")
        await call("attach_identity", contact_id=ann["id"], identifier="ann@example.com", channel_type="amb",
                   channel_id="ch_1")  # fmt: skip
        await call(
            "set_verification",
            contact_id=ann["id"],
            type="email",
            value="ann@example.com",
            verified=True,
            verification_source="admin-manual",
            verified_at="2026-05-20T15:04:01Z",
        )
        await call("create_contact", username="Bob", phone_number=PHONE_2, display_name="Bobby")
        for n in range(7):
            await call("upsert_contact", email=f"p{n}@example.com", name=f"Person {n}")


async def _export(store: LocalStore) -> str:
    out = io.StringIO()
    await export_contacts(store, out)
    return out.getvalue()


async def _import(store: LocalStore, path: Path) -> Summary:
    done = Progress(Summary())
    with read_through(path, None) as source:
        await import_file(store, source, rejected_path=path.with_suffix(".rejected"), default_region=None, done=done)
    return done.summary


@pytest.fixture
async def source(tmp_path: Path) -> AsyncIterator[LocalStore]:
    db = str(tmp_path / "source.db")
    await _fill(db)
    store = LocalStore.open(db)
    yield store
    await store.aclose()


async def _round_trip(source: LocalStore, target_db: str, tmp_path: Path) -> None:
    exported = tmp_path / "contacts.jsonl"
    count = await export_to_file(source, exported)
    assert count == 9
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    ann = lines[0]
    assert (ann["user_id"], ann["custom_fields"]["note"], ann["roles"]) == ("u-ann", None, ["admin", "owner"])
    assert {(m["channel"], m.get("verification_method")) for m in ann["methods"]} >= {("whatsapp", "api")}
    assert [i["channel_type"] for i in ann["identities"]] == ["whatsapp", "amb"]

    target = LocalStore.open(target_db)
    try:
        first = await _import(target, exported)
        assert (first.created, first.updated, first.unchanged, first.rejected) == (9, 0, 0, 0)
        assert await _export(target) == exported.read_text()
        again = await _import(target, exported)
        assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, 9, 0)
        assert await _export(target) == exported.read_text()
    finally:
        await target.aclose()


async def test_sqlite_export_import_export_gives_the_same_contacts(source: LocalStore, tmp_path: Path) -> None:
    await _round_trip(source, str(tmp_path / "target.db"), tmp_path)


async def test_restoring_over_changed_contacts_puts_them_back(source: LocalStore, tmp_path: Path) -> None:
    exported = tmp_path / "contacts.jsonl"
    await export_to_file(source, exported)
    renamed = await source.upsert_contact(UpsertContactInput(email="p0@example.com", user_id=None, name="Renamed"))
    assert renamed.outcome == "updated"

    summary = await _import(source, exported)

    assert (summary.updated, summary.unchanged) == (1, 8)
    assert await _export(source) == exported.read_text()
