"""Export and restore, on every backend: every contact whole, in batches, and put back exactly (idempotent).

These are the primitives `contact-mcp export` / `import` build on; a restore keeps ids, timestamps, methods with
their verification and primaries, and identities, so an export restores into any backend unchanged.
"""

from __future__ import annotations

import pytest
from mcp import Client

from contact_mcp.errors import Conflict, InvalidArgument
from contact_mcp.models import UpsertContactInput
from contact_mcp.store import ContactRecord, LocalStore
from tests.store.calls import PHONE, PHONE_2, counts, new_contact, ok
from tests.store.conftest import BACKENDS

pytestmark = pytest.mark.anyio


async def everything(store: LocalStore, batch_size: int = 500) -> list[ContactRecord]:
    return [record async for batch in store.iter_records(batch_size=batch_size) for record in batch]


async def fill(client: Client) -> list[str]:
    """Contacts made by every tool, with verification, primaries and identities; their ids, oldest first."""
    ann = await new_contact(
        client,
        email="ann@example.com",
        user_id="u-ann",
        name="Ann",
        phone=PHONE,
        locale="en",
        companies=[{"id": "c1", "name": "Acme", "monthly_spend": 10}],
        custom_fields={"plan": "pro", "seats": 3, "trial": False, "note": None, "ratio": 1.5},
        roles=["admin"],
        subscribed_to_changelog=True,
    )
    await ok(client, "attach_contact", end_user_id=ann, channel="whatsapp", value=PHONE_2)
    await ok(client, "attach_contact", end_user_id=ann, channel="email", value="ann@example.com")
    await ok(
        client, "set_verification", contact_id=ann, type="phone", value=PHONE, verified=True,
        verified_at="2026-05-20T15:04:01Z", verification_source="admin-manual",
    )  # fmt: skip
    await ok(client, "attach_identity", contact_id=ann, identifier=PHONE, channel_type="amb", channel_id="ch_1")
    bob = await ok(client, "create_contact", username="Bob", phone_number=PHONE_2, avatar_url="https://x.example/b")
    others = [await new_contact(client, email=f"user{i}@example.com") for i in range(3)]
    return [ann, bob["id"], *others]


async def test_export_yields_every_contact_whole_in_batches(client: Client, store: LocalStore) -> None:
    ids = await fill(client)

    batches = [batch async for batch in store.iter_records(batch_size=2)]

    assert [len(batch) for batch in batches] == [2, 2, 1]
    records = [record for batch in batches for record in batch]
    assert [r.id for r in records] == ids
    for record in records:
        contact = await ok(client, "get_contact", contact_id=record.id)
        shown = record.model_dump(mode="json", exclude_none=True)
        for method in shown["methods"]:
            assert method.pop("created_at").endswith("Z")
        for method in contact["methods"]:
            method.pop("verified")
        assert {**shown, "provider": "local"} == contact


async def test_an_empty_store_exports_nothing(store: LocalStore) -> None:
    assert await everything(store) == []


async def test_restore_into_an_empty_store_puts_every_contact_back_exactly(
    client: Client, store: LocalStore, store_backend: str, empty_store: str
) -> None:
    await fill(client)
    exported = await everything(store)
    shown = [await ok(client, "get_contact", contact_id=r.id) for r in exported]
    BACKENDS[store_backend].wipe(empty_store)

    outcomes = [await store.restore(record) for record in exported]

    assert outcomes == ["created"] * len(exported)
    assert await everything(store) == exported
    assert [await ok(client, "get_contact", contact_id=r.id) for r in exported] == shown
    page = await ok(client, "find_contacts", email="ann@example.com")
    assert [c["id"] for c in page["contacts"]] == [exported[0].id]


async def test_restoring_twice_changes_nothing(client: Client, store: LocalStore) -> None:
    await fill(client)
    exported = await everything(store)
    before = await counts(store)

    outcomes = [await store.restore(record) for record in exported]

    assert outcomes == ["unchanged"] * len(exported)
    assert await counts(store) == before
    assert await everything(store) == exported


async def test_restore_over_a_changed_contact_puts_the_record_back(client: Client, store: LocalStore) -> None:
    ann, *_ = await fill(client)
    (record, *_) = await everything(store)
    await ok(client, "upsert_contact", user_id="u-ann", name="Changed", phone="+14155550199", custom_fields={"x": 1})
    await ok(client, "attach_identity", contact_id=ann, identifier="ann@example.com")

    outcome = await store.restore(record)

    assert outcome == "updated"
    assert (await everything(store))[0] == record


async def test_restore_accepts_an_upper_case_id(store: LocalStore) -> None:
    record = ContactRecord(
        id="6F1C2A0E-8A3B-4C5D-9E7F-0A1B2C3D4E5F", created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-02T00:00:00.000Z",
    )  # fmt: skip

    assert await store.restore(record) == "created"
    assert await store.restore(record) == "unchanged"
    (stored,) = await everything(store)
    assert stored.id == record.id.lower()
    assert (stored.created_at, stored.updated_at) == (record.created_at, record.updated_at)


async def test_restore_of_a_user_id_another_contact_holds_is_a_conflict_writing_nothing(store: LocalStore) -> None:
    owner = await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id="u1"))
    record = ContactRecord(
        id="6f1c2a0e-8a3b-4c5d-9e7f-0a1b2c3d4e5f", user_id="u1", created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
    )  # fmt: skip

    with pytest.raises(Conflict) as caught:
        await store.restore(record)

    assert caught.value.info().existing_id == owner.id
    assert await counts(store) == {"contacts": 1, "methods": 1, "identities": 0}


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "not-a-uuid"},
        {
            "methods": [
                {"id": "m1", "channel": "email", "type": "email", "raw_value": "a@x.org", "value": "a@x.org",
                 "primary": True, "created_at": "2026-01-01T00:00:00.000Z"},
                {"id": "m2", "channel": "email", "type": "email", "raw_value": "b@x.org", "value": "b@x.org",
                 "primary": True, "created_at": "2026-01-01T00:00:00.000Z"},
            ]
        },
        {
            "identities": [
                {"id": "i1", "identifier": "+14155550123", "created_at": "2026-01-01T00:00:00.000Z"},
                {"id": "i2", "identifier": "+14155550123", "created_at": "2026-01-01T00:00:00.000Z"},
            ]
        },
        {"created_at": "yesterday"},
        {"updated_at": "2026-13-01T00:00:00.000Z"},
        {
            "methods": [
                {"id": "m1", "channel": "email", "type": "email", "raw_value": "a@x.org", "value": "a@x.org",
                 "primary": True, "created_at": "2026-01-01T00:00:00.000Z", "verified_at": "soon"},
            ]
        },
        {"identities": [{"id": "i1", "identifier": "+14155550123", "created_at": ""}]},
        {
            "methods": [
                {"id": "m1", "channel": "email", "type": "email", "raw_value": "ann", "value": "ann",
                 "created_at": "2026-01-01T00:00:00.000Z"},
            ]
        },
        {
            "methods": [
                {"id": "m1", "channel": "phone", "type": "phone", "raw_value": "4155550123", "value": "4155550123",
                 "created_at": "2026-01-01T00:00:00.000Z"},
            ]
        },
        {
            "methods": [
                {"id": "m1", "channel": " ", "type": None, "raw_value": "x", "value": "x",
                 "created_at": "2026-01-01T00:00:00.000Z"},
            ]
        },
        {"identities": [{"id": "i1", "identifier": "ann@", "created_at": "2026-01-01T00:00:00.000Z"}]},
        {
            "identities": [
                {"id": "i1", "identifier": "+14155550123", "channel_type": "pigeon",
                 "created_at": "2026-01-01T00:00:00.000Z"},
            ]
        },
        # Past what PostgreSQL indexes (2,704 bytes): it stopped a whole import there, and SQLite took it.
        {"user_id": "".join(chr(0x4E00 + i % 5000) for i in range(1000))},
        {
            "identities": [
                {"id": "i1", "identifier": "+14155550123", "channel_id": "c" * 101,
                 "created_at": "2026-01-01T00:00:00.000Z"},
            ]
        },
        {"custom_fields": {"k": "v" * 1001}},
        {"custom_fields": {"k": float("inf")}},  # an export's 1e400: it was put back as null
    ],
    ids=[
        "id-not-a-uuid", "two-primary-emails", "identity-twice", "created-yesterday", "month-13",
        "verified-soon", "identity-created-blank", "email-not-an-address", "phone-without-country-code",
        "channel-blank", "identity-not-an-address", "identity-channel-type-unknown", "user-id-past-the-index",
        "channel-id-too-long", "custom-value-too-long", "custom-value-infinite",
    ],
)  # fmt: skip
async def test_a_record_no_backend_could_hold_is_an_invalid_argument(store: LocalStore, bad: dict[str, object]) -> None:
    record = ContactRecord.model_validate(
        {
            "id": "6f1c2a0e-8a3b-4c5d-9e7f-0a1b2c3d4e5f",
            "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": "2026-01-01T00:00:00.000Z",
            **bad,
        }
    )

    with pytest.raises(InvalidArgument):
        await store.restore(record)

    assert await counts(store) == {"contacts": 0, "methods": 0, "identities": 0}


async def test_restored_timestamps_with_another_offset_are_kept_in_the_stores_form(store: LocalStore) -> None:
    # The store compares and sorts its timestamps as text: "+02:00" or no milliseconds would sort out of place.
    method = {
        "id": "m1", "channel": "email", "type": "email", "raw_value": "a@x.org", "value": "a@x.org", "primary": True,
        "created_at": "2026-01-01T02:00:00+02:00", "verified_at": "2026-01-01T00:00:01.5Z",
    }  # fmt: skip
    record = ContactRecord.model_validate(
        {
            "id": "6f1c2a0e-8a3b-4c5d-9e7f-0a1b2c3d4e5f",
            "created_at": "2026-01-01T00:00:00",
            "updated_at": "2026-01-01T01:00:00.000+01:00",
            "methods": [method],
        }
    )

    assert await store.restore(record) == "created"
    (stored,) = await everything(store)
    assert (stored.created_at, stored.updated_at) == ("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z")
    assert (stored.methods[0].created_at, stored.methods[0].verified_at) == (
        "2026-01-01T00:00:00.000Z",
        "2026-01-01T00:00:01.500Z",
    )
    assert await store.restore(record) == "unchanged"


async def test_restored_values_are_kept_in_the_form_the_tools_match_them_by(client: Client, store: LocalStore) -> None:
    # A file edited by hand: values as a person writes them. Put back as they are, no upsert, find or attach would
    # ever match them again, and a contact made next to one would hold the same address.
    def method(id: str, channel: str, type_: str | None, value: str, *, primary: bool = False) -> dict[str, object]:
        return {"id": id, "channel": channel, "type": type_, "raw_value": value, "value": value,
                "primary": primary, "created_at": "2026-01-01T00:00:00.000Z"}  # fmt: skip

    record = ContactRecord.model_validate(
        {
            "id": "6f1c2a0e-8a3b-4c5d-9e7f-0a1b2c3d4e5f",
            "user_id": " u-ann ",
            "username": "  Ann ",
            "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": "2026-01-01T00:00:00.000Z",
            "methods": [
                method("m1", "Email", "email", " Ann@Example.COM", primary=True),
                method("m2", " WhatsApp", None, "+1 (415) 555-0123"),
                method("m3", "Telegram", "email", "@ann"),
            ],
            "identities": [{"id": "i1", "identifier": "+1 415 555 0124", "created_at": "2026-01-01T00:00:00.000Z"}],
        }
    )

    assert await store.restore(record) == "created"
    assert await store.restore(record) == "unchanged"
    (stored,) = await everything(store)
    assert (stored.user_id, stored.username) == ("u-ann", "Ann")
    assert [(m.channel, m.type, m.value, m.raw_value) for m in stored.methods] == [
        ("email", "email", "ann@example.com", " Ann@Example.COM"),
        ("whatsapp", "whatsapp", PHONE, "+1 (415) 555-0123"),
        ("telegram", None, "@ann", "@ann"),
    ]
    assert [i.identifier for i in stored.identities] == [PHONE_2]
    matched = await ok(client, "upsert_contact", email="ann@example.com", user_id="u-ann")
    assert (matched["id"], matched["outcome"]) == (stored.id, "unchanged")
    found = await ok(client, "find_contacts", phone=PHONE)
    assert [c["id"] for c in found["contacts"]] == [stored.id]


async def test_a_value_in_the_stores_form_is_restored_as_it_is_even_one_todays_libraries_refuse(
    store: LocalStore,
) -> None:
    # phonenumbers and email-validator change their rules from release to release: what an older release stored
    # must still restore, or an export would not move a store whole.
    def method(id: str, channel: str, value: str) -> dict[str, object]:
        return {"id": id, "channel": channel, "type": channel, "raw_value": value, "value": value,
                "created_at": "2026-01-01T00:00:00.000Z"}  # fmt: skip

    record = ContactRecord.model_validate(
        {
            "id": "6f1c2a0e-8a3b-4c5d-9e7f-0a1b2c3d4e5f",
            "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": "2026-01-01T00:00:00.000Z",
            "methods": [method("m1", "phone", "+10000000000"), method("m2", "email", "ann@localhost")],
            "identities": [{"id": "i1", "identifier": "+10000000001", "created_at": "2026-01-01T00:00:00.000Z"}],
        }
    )

    assert await store.restore(record) == "created"
    assert await everything(store) == [record]
