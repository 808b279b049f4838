"""merge_contacts through a real MCP client, on every backend: what moves, fills and conflicts; `merged_into`; and
how a merged contact's id and keys lead to the survivor afterwards."""

from __future__ import annotations

import pytest
from mcp import Client

from contact_mcp.store import LocalStore
from contact_mcp.store.rules import ImportContactInput
from tests.store.calls import PHONE, PHONE_2, UNKNOWN_UUID, counts, err, new_contact, ok

pytestmark = pytest.mark.anyio


async def test_methods_and_identities_move_empty_fields_fill_and_conflicts_are_reported(
    client: Client, store: LocalStore
) -> None:
    survivor = await new_contact(client, "ada@gmail.com", name="Ada Lovelace", custom_fields={"plan": "pro"})
    duplicate = await new_contact(
        client,
        "ada+crm@gmail.com",
        name="Ada King",
        user_id="u-7",
        phone=PHONE,
        locale="en",
        custom_fields={"plan": "free", "tier": 2},
        roles=["admin"],
    )
    await ok(client, "attach_identity", contact_id=duplicate, identifier=PHONE_2)
    before = await counts(store)

    merged = await ok(client, "merge_contacts", survivor_id=survivor, duplicate_ids=[duplicate], confirm=True)

    assert merged["outcome"] == "updated"
    assert merged["survivor_id"] == survivor
    assert merged["merged_ids"] == [duplicate]
    assert (merged["moved_methods"], merged["moved_identities"]) == (2, 1)
    assert set(merged["filled"]) == {"user_id", "locale", "custom_fields", "roles"}
    assert {(c["field"], c["kept"], c["dropped"], c["id"]) for c in merged["conflicts"]} == {
        ("name", "Ada Lovelace", "Ada King", duplicate),
        ("custom_fields.plan", "pro", "free", duplicate),
    }
    kept = await ok(client, "get_contact", contact_id=survivor)
    assert (kept["name"], kept["user_id"], kept["locale"], kept["roles"]) == ("Ada Lovelace", "u-7", "en", ["admin"])
    assert kept["custom_fields"] == {"plan": "pro", "tier": 2}
    assert sorted((m["value"], m["primary"]) for m in kept["methods"]) == [
        (PHONE, True),
        ("ada+crm@gmail.com", False),
        ("ada@gmail.com", True),
    ]
    assert [i["identifier"] for i in kept["identities"]] == [PHONE_2]
    assert "merged_into" not in kept
    # Nothing lost, nothing copied: the rows moved; the duplicate stays as a stub.
    assert await counts(store) == before


async def test_the_merged_contact_answers_with_merged_into_and_leaves_find_contacts(client: Client) -> None:
    survivor = await new_contact(client, "ada@gmail.com", name="Ada Lovelace")
    duplicate = await new_contact(client, "a.da@gmail.com", name="Ada Lovelace")

    await ok(client, "merge_contacts", survivor_id=survivor, duplicate_ids=[duplicate], confirm=True)

    stub = await ok(client, "get_contact", contact_id=duplicate)
    assert stub["merged_into"] == survivor
    assert stub["methods"] == [] and stub["identities"] == []
    found = await ok(client, "find_contacts", query="ada")
    assert [c["id"] for c in found["contacts"]] == [survivor]
    assert (await ok(client, "find_contacts", email="a.da@gmail.com"))["contacts"][0]["id"] == survivor
    assert (await ok(client, "find_duplicates"))["groups"] == []


async def test_a_merged_contact_s_user_id_and_id_lead_to_the_survivor(client: Client) -> None:
    survivor = await new_contact(client, "ada@gmail.com", name="Ada Lovelace", user_id="u-1")
    duplicate = await new_contact(client, "ada.l@work.example", name="Ada Lovelace", user_id="u-2")
    merged = await ok(client, "merge_contacts", survivor_id=survivor, duplicate_ids=[duplicate], confirm=True)
    assert [c["field"] for c in merged["conflicts"]] == ["user_id"]

    upserted = await ok(client, "upsert_contact", user_id="u-2", locale="fr")
    attached = await ok(client, "attach_contact", end_user_id=duplicate, channel="sms", value=PHONE)
    found = await ok(client, "find_contacts", user_id="u-2")

    assert (upserted["outcome"], upserted["id"], upserted["user_id"]) == ("updated", survivor, "u-1")
    assert attached["end_user_id"] == survivor
    assert [c["id"] for c in found["contacts"]] == [survivor]
    kept = await ok(client, "get_contact", contact_id=survivor)
    assert (kept["user_id"], kept["locale"]) == ("u-1", "fr")
    assert PHONE in {m["value"] for m in kept["methods"]}
    assert (await ok(client, "get_contact", contact_id=duplicate))["user_id"] == "u-2"  # the stub keeps it


async def test_a_moved_user_id_is_the_survivor_s_own(client: Client) -> None:
    survivor = await new_contact(client, "ada@gmail.com", name="Ada Lovelace")
    duplicate = await new_contact(client, "ada.l@work.example", user_id="u-2")

    await ok(client, "merge_contacts", survivor_id=survivor, duplicate_ids=[duplicate], confirm=True)

    assert (await ok(client, "get_contact", contact_id=survivor))["user_id"] == "u-2"
    assert "user_id" not in await ok(client, "get_contact", contact_id=duplicate)
    assert (await ok(client, "upsert_contact", user_id="u-2", email="ada.l@work.example"))["id"] == survivor


async def test_the_same_method_on_both_is_folded_and_its_verification_kept(client: Client, store: LocalStore) -> None:
    survivor = await new_contact(client, "ada@gmail.com", phone=PHONE)
    duplicate = await new_contact(client, "ada.l@work.example")
    await ok(client, "attach_contact", end_user_id=duplicate, channel="phone", value=PHONE)

    merged = await ok(client, "merge_contacts", survivor_id=survivor, duplicate_ids=[duplicate], confirm=True)

    assert merged["moved_methods"] == 1  # the email; the phone was folded into the survivor's
    phones = [m for m in (await ok(client, "get_contact", contact_id=survivor))["methods"] if m["value"] == PHONE]
    assert [(p["primary"], p["verified"], p["verification_method"]) for p in phones] == [(True, True, "api")]
    assert (await counts(store))["methods"] == 4 - 1


async def test_merging_again_changes_nothing(client: Client) -> None:
    survivor = await new_contact(client, "ada@gmail.com")
    duplicate = await new_contact(client, "ada+x@gmail.com")
    await ok(client, "merge_contacts", survivor_id=survivor, duplicate_ids=[duplicate], confirm=True)

    again = await ok(client, "merge_contacts", survivor_id=survivor, duplicate_ids=[duplicate], confirm=True)

    assert (again["outcome"], again["merged_ids"], again["moved_methods"]) == ("unchanged", [], 0)


async def test_a_chain_of_merges_keeps_merged_into_one_hop(client: Client) -> None:
    first = await new_contact(client, "a@example.com")
    second = await new_contact(client, "b@example.com")
    third = await new_contact(client, "c@example.com")
    await ok(client, "merge_contacts", survivor_id=second, duplicate_ids=[first], confirm=True)

    await ok(client, "merge_contacts", survivor_id=third, duplicate_ids=[second], confirm=True)

    assert (await ok(client, "get_contact", contact_id=first))["merged_into"] == third
    assert (await ok(client, "get_contact", contact_id=second))["merged_into"] == third


@pytest.mark.parametrize(
    ("case", "code", "field"),
    [
        ("unknown-survivor", "not_found", "survivor_id"),
        ("unknown-duplicate", "not_found", "duplicate_ids"),
        ("survivor-among-duplicates", "invalid_argument", "duplicate_ids"),
        ("survivor-merged", "conflict", "survivor_id"),
        ("duplicate-merged-elsewhere", "conflict", "duplicate_ids"),
    ],
)
async def test_a_merge_that_cannot_be_done_writes_nothing(
    client: Client, store: LocalStore, case: str, code: str, field: str
) -> None:
    a = await new_contact(client, "a@example.com")
    b = await new_contact(client, "b@example.com")
    c = await new_contact(client, "c@example.com")
    await ok(client, "merge_contacts", survivor_id=c, duplicate_ids=[b], confirm=True)
    before = [r async for batch in store.iter_records() for r in batch]
    survivor, duplicates = {
        "unknown-survivor": (UNKNOWN_UUID, [a]),
        "unknown-duplicate": (a, [c, UNKNOWN_UUID]),
        "survivor-among-duplicates": (a, [a]),
        "survivor-merged": (b, [a]),
        "duplicate-merged-elsewhere": (a, [b]),
    }[case]

    error = await err(client, "merge_contacts", survivor_id=survivor, duplicate_ids=duplicates)

    assert (error["code"], error["field"]) == (code, field)
    assert [r async for batch in store.iter_records() for r in batch] == before


async def test_export_and_restore_keep_merged_into(client: Client, store: LocalStore) -> None:
    survivor = await new_contact(client, "a@example.com")
    duplicate = await new_contact(client, "a+b@example.com")
    await ok(client, "merge_contacts", survivor_id=survivor, duplicate_ids=[duplicate], confirm=True)
    records = [r async for batch in store.iter_records() for r in batch]
    assert [r.merged_into for r in records] == [None, survivor]

    assert [await store.restore(r) for r in records] == ["unchanged", "unchanged"]
    cleared = records[1].model_copy(update={"merged_into": None})
    assert await store.restore(cleared) == "updated"
    assert "merged_into" not in await ok(client, "get_contact", contact_id=duplicate)


async def test_a_dry_run_merge_says_what_would_change_and_writes_nothing(client: Client, store: LocalStore) -> None:
    survivor = await new_contact(client, "ada@gmail.com", name="Ada Lovelace")
    duplicate = await new_contact(client, "ada+x@gmail.com", user_id="u-7", phone=PHONE)
    before = [r async for batch in store.iter_records() for r in batch]

    preview = await ok(client, "merge_contacts", survivor_id=survivor, duplicate_ids=[duplicate], dry_run=True)

    assert preview["dry_run"] is True
    assert (preview["merged_ids"], preview["filled"], preview["moved_methods"]) == ([duplicate], ["user_id"], 2)
    changed = {(c["contact_id"], c["field"]) for c in preview["changes"]}
    assert {(survivor, "user_id"), (duplicate, "merged_into"), (duplicate, "user_id")} <= changed
    assert (survivor, "methods") in changed and (duplicate, "methods") in changed
    assert [r async for batch in store.iter_records() for r in batch] == before
    merged = await ok(client, "merge_contacts", survivor_id=survivor, duplicate_ids=[duplicate], confirm=True)
    assert "dry_run" not in merged
    assert {(c["contact_id"], c["field"]) for c in merged["changes"]} == changed


async def test_a_merged_contact_s_username_leads_imports_to_the_survivor(client: Client, store: LocalStore) -> None:
    survivor = (await ok(client, "create_contact", username="ada", phone_number=PHONE))["id"]
    duplicate = (await ok(client, "create_contact", username="ada-l", phone_number=PHONE_2))["id"]
    await ok(client, "attach_contact", end_user_id=survivor, channel="email", value="ada@example.com")
    await ok(client, "merge_contacts", survivor_id=survivor, duplicate_ids=[duplicate], confirm=True)

    by_username = await store.import_contact(ImportContactInput(username="ADA-L", locale="fr"))
    with_email = await store.import_contact(ImportContactInput(emails=("ada@example.com",), username="ada-l"))
    records = [r async for batch in store.iter_records() for r in batch]

    assert (by_username, with_email) == ("updated", "unchanged")
    kept = await ok(client, "get_contact", contact_id=survivor)
    assert (kept["username"], kept["locale"]) == ("ada", "fr")
    assert (await ok(client, "find_contacts", username="ada-l"))["contacts"][0]["id"] == survivor
    assert [await store.restore(r) for r in records] == ["unchanged", "unchanged"]
    error = await err(client, "create_contact", username="Ada-L", phone_number=PHONE)
    assert (error["code"], error["existing_id"]) == ("conflict", survivor)


async def test_a_merged_contact_s_phone_and_name_lead_imports_to_the_survivor(
    client: Client, store: LocalStore
) -> None:
    survivor = await new_contact(client, "ada@example.com", name="Ada Lovelace")
    duplicate = await new_contact(client, "ada.king@example.com", name="Ada King", phone=PHONE)
    await ok(client, "merge_contacts", survivor_id=survivor, duplicate_ids=[duplicate], confirm=True)
    before = await counts(store)

    outcome = await store.import_contact(ImportContactInput(phones=(PHONE,), name="ada  KING"))

    assert outcome == "unchanged"
    assert await counts(store) == before
