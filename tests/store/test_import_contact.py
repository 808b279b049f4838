"""import_contact on every backend: one row of new data (CSV, vCard) matched and merged like an upsert, phone-only
address-book rows matched by phone and name together, one transaction per row, idempotent."""

from __future__ import annotations

import pytest

from contact_mcp.errors import Conflict
from contact_mcp.models import AttachContactInput, CreateContactInput, UpsertContactInput
from contact_mcp.store import ContactRecord, LocalStore
from contact_mcp.store.rules import ImportContactInput
from tests.store.calls import PHONE, PHONE_2, counts

pytestmark = pytest.mark.anyio


async def _records(store: LocalStore) -> list[ContactRecord]:
    return [record async for batch in store.iter_records() for record in batch]


async def test_a_row_creates_a_contact_with_its_first_email_and_phone_primary_and_the_rest_unverified(
    store: LocalStore,
) -> None:
    row = ImportContactInput(
        emails=("ann@example.com", "ann@work.example"), phones=(PHONE, PHONE_2), name="Ann", locale="en"
    )

    assert await store.import_contact(row) == "created"

    (record,) = await _records(store)
    assert (record.name, record.locale) == ("Ann", "en")
    methods = {(m.value, m.primary, m.verified_at) for m in record.methods}
    assert methods == {
        ("ann@example.com", True, None),
        ("ann@work.example", False, None),
        (PHONE, True, None),
        (PHONE_2, False, None),
    }


async def test_the_same_row_twice_changes_nothing(store: LocalStore) -> None:
    row = ImportContactInput(emails=("ann@example.com", "a2@example.com"), phones=(PHONE,), name="Ann", user_id="u1")
    await store.import_contact(row)
    before = await _records(store)

    assert await store.import_contact(row) == "unchanged"

    assert await _records(store) == before


async def test_a_row_with_an_email_updates_the_contact_upsert_made(store: LocalStore) -> None:
    made = await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None, name="Ann"))

    outcome = await store.import_contact(
        ImportContactInput(emails=("ann@example.com", "ann@home.example"), name="Ann Lee", username="annlee")
    )

    assert outcome == "updated"
    (record,) = await _records(store)
    assert record.id == made.id
    assert (record.name, record.username) == ("Ann Lee", "annlee")
    assert {m.value for m in record.methods} == {"ann@example.com", "ann@home.example"}


async def test_a_row_naming_two_contacts_is_a_conflict_and_writes_nothing(store: LocalStore) -> None:
    await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id="u1"))
    await store.upsert_contact(UpsertContactInput(email="bob@example.com", user_id=None))
    before = await _records(store)

    with pytest.raises(Conflict):
        await store.import_contact(ImportContactInput(emails=("bob@example.com", "new@example.com"), user_id="u1"))

    assert await _records(store) == before


async def test_phone_only_rows_match_by_phone_and_name_together(store: LocalStore) -> None:
    mom = ImportContactInput(phones=(PHONE,), name="Mom")
    assert await store.import_contact(mom) == "created"

    # The same person, written with other case and spacing: the same contact.
    assert await store.import_contact(ImportContactInput(phones=(PHONE,), name="  mom ")) == "unchanged"
    # Another name on the same phone: a family shares the phone, so another contact.
    assert await store.import_contact(ImportContactInput(phones=(PHONE,), name="Dad")) == "created"
    # A second phone for Mom, listed first: matched on the phone she has, the new one becomes primary.
    assert await store.import_contact(ImportContactInput(phones=(PHONE_2, PHONE), name="Mom")) == "updated"

    records = await _records(store)
    assert [r.name for r in records] == ["Mom", "Dad"]
    assert {(m.value, m.primary) for m in records[0].methods} == {(PHONE, False), (PHONE_2, True)}
    assert await counts(store) == {"contacts": 2, "methods": 3, "identities": 0}


async def test_a_phone_and_name_row_matches_a_create_contact_contact_by_its_display_name(store: LocalStore) -> None:
    made = await store.create_contact(
        CreateContactInput(username="mom1", phone_number=PHONE, display_name="Mom", avatar_url=None)
    )

    assert await store.import_contact(ImportContactInput(phones=(PHONE,), name="mom")) == "unchanged"

    (record,) = await _records(store)
    assert (record.id, record.display_name) == (made.id, "Mom")


async def test_a_phone_and_name_row_keeps_the_verification_of_the_phone(store: LocalStore) -> None:
    await store.import_contact(ImportContactInput(phones=(PHONE,), name="Mom"))
    (record,) = await _records(store)
    await store.attach_contact(
        AttachContactInput(
            end_user_id=record.id, channel="phone", raw_value=PHONE, type="phone", normalized_value=PHONE
        )
    )
    (verified,) = await _records(store)

    assert await store.import_contact(ImportContactInput(phones=(PHONE,), name="Mom")) == "unchanged"

    assert await _records(store) == [verified]
    assert verified.methods[0].verified_at is not None


async def test_a_username_row_matches_its_contact_and_a_taken_username_is_a_conflict(store: LocalStore) -> None:
    await store.create_contact(
        CreateContactInput(username="Ann", phone_number=PHONE, display_name=None, avatar_url=None)
    )

    assert await store.import_contact(ImportContactInput(username="ann", name="Ann Lee")) == "updated"
    with pytest.raises(Conflict, match="username 'ann' is taken"):
        await store.import_contact(ImportContactInput(emails=("bob@example.com",), username="ann"))

    records = await _records(store)
    assert [(r.username, r.name) for r in records] == [("ann", "Ann Lee")]


async def test_a_batch_refuses_a_row_alone_and_keeps_the_others(store: LocalStore) -> None:
    await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id="u1"))
    await store.upsert_contact(UpsertContactInput(email="bob@example.com", user_id=None))

    answers = await store.import_batch(
        [
            ImportContactInput(emails=("carol@example.com",), name="Carol"),
            ImportContactInput(emails=("bob@example.com",), user_id="u1"),  # names Ann and Bob: refused
            ImportContactInput(phones=(PHONE,), name="Mom"),
        ]
    )

    assert answers[0] == "created"
    assert isinstance(answers[1], Conflict)
    assert answers[2] == "created"
    assert [r.name for r in await _records(store)] == [None, None, "Carol", "Mom"]
    assert await store.import_batch([ImportContactInput(phones=(PHONE,), name="Mom")]) == ["unchanged"]


async def test_a_batch_of_new_contacts_is_created_in_order_as_row_by_row_imports_would(store: LocalStore) -> None:
    rows = [
        ImportContactInput(
            emails=(f"p{i}@example.com", f"p{i}@work.example"), phones=(f"+1415555{i:04d}",), name=f"P{i}"
        )
        for i in range(5)
    ] + [ImportContactInput(user_id="u9", username="Nine"), ImportContactInput(phones=(PHONE,), name="Mom")]

    assert await store.import_batch(rows) == ["created"] * 7

    records = await _records(store)
    assert [(r.name, r.user_id, r.username) for r in records] == [
        *((f"P{i}", None, None) for i in range(5)),
        (None, "u9", "Nine"),
        ("Mom", None, None),
    ]
    assert [[(m.channel, m.value, m.primary, m.verified_at) for m in r.methods] for r in records[:1]] == [
        [
            ("email", "p0@example.com", True, None),
            ("email", "p0@work.example", False, None),
            ("phone", "+14155550000", True, None),
        ]
    ]
    assert await store.import_batch(rows) == ["unchanged"] * 7
    assert len(await _records(store)) == 7


@pytest.mark.parametrize(
    ("rows", "outcomes"),
    [
        (
            [
                ImportContactInput(emails=("ann@example.com",), phones=(PHONE,), name="Ann"),
                ImportContactInput(phones=(PHONE,), name="ann"),  # Ann's phone and name: the first row's contact
            ],
            ["created", "unchanged"],
        ),
        (
            [
                ImportContactInput(emails=("bob@example.com",), username="bob"),
                ImportContactInput(emails=("bob@work.example",), username="Bob"),  # the same username: refused
            ],
            ["created", Conflict],
        ),
        (
            [
                ImportContactInput(emails=("cy@example.com", "cy@work.example")),
                ImportContactInput(emails=("cy@work.example",), name="Cy"),  # the first row's second email
            ],
            ["created", "updated"],
        ),
    ],
    ids=["phone-and-name", "username", "second-email"],
)
async def test_a_batch_whose_rows_name_one_contact_is_imported_row_by_row(
    store: LocalStore, rows: list[ImportContactInput], outcomes: list[object]
) -> None:
    answers = await store.import_batch(rows)

    assert [a if isinstance(a, str) else type(a) for a in answers] == outcomes
    assert len(await _records(store)) == 1
