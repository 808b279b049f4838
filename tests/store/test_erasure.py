"""Erasure and undoing attaches on the store, through a real MCP client, on every backend (the contract suite):
delete_contact removes the contact, its methods and identities (and the contacts merged into it) so that none of
its values is left in any table; detach_identity and detach_contact take one attach back."""

from __future__ import annotations

import pytest
from mcp import Client

from contact_mcp.store import LocalStore
from tests.store.calls import PHONE, PHONE_2, UNKNOWN_UUID, counts, err, new_contact, ok
from tests.store.conftest import BACKENDS

pytestmark = pytest.mark.anyio

# Distinctive values, so finding one in a table can only mean the deleted contact left it there.
EMAIL = "zephyrine.quillfeather@example.org"
NAME = "Zephyrine Quillfeather"
USER_ID = "user-zq-8841"
USERNAME = "ZephQuill"
HANDLE = "zeph_quill_tw"
IDENTITY_EMAIL = "zq.messages@example.net"


async def _person(client: Client) -> str:
    """A contact carrying every kind of value the store holds: fields, methods on several channels, identities."""
    contact_id = await new_contact(
        client, email=EMAIL, name=NAME, user_id=USER_ID, phone=PHONE, custom_fields={"nickname": "Zeph"}
    )
    await ok(client, "attach_contact", end_user_id=contact_id, channel="twitter", value=HANDLE)
    await ok(client, "attach_contact", end_user_id=contact_id, channel="whatsapp", value=PHONE)
    await ok(client, "attach_identity", contact_id=contact_id, identifier=PHONE, channel_type="whatsapp")
    await ok(client, "attach_identity", contact_id=contact_id, identifier=IDENTITY_EMAIL)
    return contact_id


def _traces(text: str) -> list[str]:
    values = (EMAIL, NAME, NAME.casefold(), USER_ID, HANDLE, IDENTITY_EMAIL, PHONE, "Zeph")
    return [value for value in values if value in text]


# ---------- delete_contact ----------


async def test_delete_leaves_none_of_the_contacts_values_in_any_table(
    client: Client, store: LocalStore, store_backend: str, empty_store: str
) -> None:
    contact_id = await _person(client)
    other = await new_contact(client, email="other@example.com", name="Other Person", phone=PHONE_2)
    backend = BACKENDS[store_backend]
    assert len(_traces(backend.table_text(empty_store))) == 8  # the check can see them while they are there

    deleted = await ok(client, "delete_contact", contact_id=contact_id.upper(), confirm=True)

    assert deleted["id"] == contact_id
    assert "also_deleted" not in deleted and "merged_into" not in deleted
    assert _traces(backend.table_text(empty_store)) == []
    assert await counts(store) == {"contacts": 1, "methods": 2, "identities": 0}
    assert (await ok(client, "get_contact", contact_id=other))["name"] == "Other Person"
    for found in (
        await ok(client, "find_contacts", email=EMAIL),
        await ok(client, "find_contacts", phone=PHONE),
        await ok(client, "find_contacts", user_id=USER_ID),
    ):
        assert found["contacts"] == []


async def test_a_deleted_contact_is_gone_and_its_keys_are_free_again(client: Client) -> None:
    contact_id = await _person(client)
    await ok(client, "delete_contact", contact_id=contact_id, confirm=True)

    error = await err(client, "get_contact", contact_id=contact_id)
    assert error["code"] == "not_found"
    again = await ok(client, "upsert_contact", email=EMAIL, user_id=USER_ID)
    assert again["outcome"] == "created" and again["id"] != contact_id
    await ok(client, "attach_identity", contact_id=again["id"], identifier=IDENTITY_EMAIL)


async def test_deleting_an_unknown_contact_is_not_found_saying_how_to_find_the_id(client: Client) -> None:
    error = await err(client, "delete_contact", contact_id=UNKNOWN_UUID)
    assert (error["code"], error["field"]) == ("not_found", "contact_id")
    assert "find_contacts" in error["hint"]


async def test_deleting_twice_changes_nothing_more_the_second_time(client: Client, store: LocalStore) -> None:
    """Idempotent in effect: the second call finds nothing to delete and says so; nothing else is touched."""
    contact_id = await _person(client)
    await new_contact(client, email="other@example.com")
    await ok(client, "delete_contact", contact_id=contact_id, confirm=True)
    before = await counts(store)

    assert (await err(client, "delete_contact", contact_id=contact_id))["code"] == "not_found"
    assert await counts(store) == before == {"contacts": 1, "methods": 1, "identities": 0}


async def test_a_malformed_id_is_an_invalid_argument(client: Client) -> None:
    error = await err(client, "delete_contact", contact_id="not-a-uuid")
    assert (error["code"], error["field"]) == ("invalid_argument", "contact_id")


async def test_deleting_a_survivor_deletes_the_contacts_merged_into_it(
    client: Client, store: LocalStore, store_backend: str, empty_store: str
) -> None:
    """Merged contacts are the same person: erasing the survivor erases them too (and a chain of merges)."""
    survivor = await new_contact(client, email="zq@example.org", name=NAME)
    merged = await new_contact(client, email=EMAIL, name="Zephyrine Q.")
    merged_earlier = await new_contact(client, email="zq.old@example.org", name="Z. Quillfeather")
    bystander = await new_contact(client, email="other@example.com")
    backend = BACKENDS[store_backend]
    backend.mark_merged(empty_store, merged, survivor)
    backend.mark_merged(empty_store, merged_earlier, merged)

    deleted = await ok(client, "delete_contact", contact_id=survivor, confirm=True)

    assert deleted["id"] == survivor
    assert sorted(deleted["also_deleted"]) == sorted([merged, merged_earlier])
    assert await counts(store) == {"contacts": 1, "methods": 1, "identities": 0}
    assert await ok(client, "get_contact", contact_id=bystander)
    assert "Quillfeather" not in backend.table_text(empty_store)


async def test_deleting_a_merged_contact_deletes_only_it_and_names_its_survivor(
    client: Client, store_backend: str, empty_store: str
) -> None:
    survivor = await new_contact(client, email="zq@example.org", name=NAME)
    merged = await new_contact(client, email=EMAIL)
    BACKENDS[store_backend].mark_merged(empty_store, merged, survivor)

    deleted = await ok(client, "delete_contact", contact_id=merged, confirm=True)

    assert (deleted["id"], deleted["merged_into"]) == (merged, survivor)
    assert "also_deleted" not in deleted
    assert (await ok(client, "get_contact", contact_id=survivor))["name"] == NAME


# ---------- detach_identity ----------


async def test_detach_identity_takes_the_identity_off_on_any_channel_type(client: Client, store: LocalStore) -> None:
    contact_id = await new_contact(client)
    whatsapp = await ok(client, "attach_identity", contact_id=contact_id, identifier=PHONE, channel_type="whatsapp")
    plain = await ok(client, "attach_identity", contact_id=contact_id, identifier=PHONE)
    kept = await ok(client, "attach_identity", contact_id=contact_id, identifier=IDENTITY_EMAIL)

    detached = await ok(client, "detach_identity", contact_id=contact_id, identifier="+1 (415) 555-0123")

    assert detached["contact_id"] == contact_id
    assert detached["identifier"] == PHONE
    assert sorted(detached["ids"]) == sorted([whatsapp["id"], plain["id"]])
    contact = await ok(client, "get_contact", contact_id=contact_id)
    assert [i["id"] for i in contact["identities"]] == [kept["id"]]


async def test_detach_identity_on_a_channel_type_leaves_the_others(client: Client) -> None:
    contact_id = await new_contact(client)
    whatsapp = await ok(client, "attach_identity", contact_id=contact_id, identifier=PHONE, channel_type="whatsapp")
    twilio = await ok(client, "attach_identity", contact_id=contact_id, identifier=PHONE, channel_type="twilio")

    detached = await ok(client, "detach_identity", contact_id=contact_id, identifier=PHONE, channel_type="whatsapp")

    assert detached["ids"] == [whatsapp["id"]]
    contact = await ok(client, "get_contact", contact_id=contact_id)
    assert [i["id"] for i in contact["identities"]] == [twilio["id"]]
    # Undone, the identity can be attached anew (to this contact or another).
    other = await new_contact(client, email="other@example.com")
    assert (await ok(client, "attach_identity", contact_id=other, identifier=PHONE, channel_type="whatsapp"))[
        "created"
    ] is True


async def test_detach_identity_the_contact_lacks_is_not_found_listing_its_identities(client: Client) -> None:
    contact_id = await new_contact(client)
    await ok(client, "attach_identity", contact_id=contact_id, identifier=IDENTITY_EMAIL)

    error = await err(client, "detach_identity", contact_id=contact_id, identifier=PHONE)
    assert (error["code"], error["field"]) == ("not_found", "identifier")
    assert IDENTITY_EMAIL in error["hint"]
    error = await err(client, "detach_identity", contact_id=UNKNOWN_UUID, identifier=PHONE)
    assert (error["code"], error["field"]) == ("not_found", "contact_id")


# ---------- detach_contact ----------


async def test_detach_contact_removes_one_method_and_passes_primary_on(client: Client) -> None:
    contact_id = await new_contact(client, email=EMAIL, phone=PHONE)
    await ok(client, "attach_contact", end_user_id=contact_id, channel="email", value="second@example.com")
    await ok(client, "attach_contact", end_user_id=contact_id, channel="sms", value=PHONE)

    detached = await ok(client, "detach_contact", contact_id=contact_id, channel="email", value=EMAIL.upper())

    assert (detached["channel"], detached["normalized_value"]) == ("email", EMAIL)
    assert detached["new_primary"] == "second@example.com"
    contact = await ok(client, "get_contact", contact_id=contact_id)
    methods = {(m["channel"], m["value"]): m["primary"] for m in contact["methods"]}
    assert methods == {("phone", PHONE): True, ("email", "second@example.com"): True, ("sms", PHONE): False}
    found = await ok(client, "find_contacts", email="second@example.com")
    assert [c["email"] for c in found["contacts"]] == ["second@example.com"]


async def test_detach_contact_takes_only_the_named_channel(client: Client) -> None:
    contact_id = await new_contact(client, phone=PHONE)
    await ok(client, "attach_contact", end_user_id=contact_id, channel="whatsapp", value="+1 415 555 0123")

    detached = await ok(client, "detach_contact", contact_id=contact_id, channel="whatsapp", value=PHONE)

    assert "new_primary" not in detached
    contact = await ok(client, "get_contact", contact_id=contact_id)
    assert {(m["channel"], m["value"]) for m in contact["methods"]} == {("email", "ann@example.com"), ("phone", PHONE)}


async def test_detach_contact_the_contact_lacks_is_not_found_listing_its_values(client: Client) -> None:
    contact_id = await new_contact(client, email=EMAIL)

    error = await err(client, "detach_contact", contact_id=contact_id, channel="email", value="nobody@example.com")
    assert (error["code"], error["field"]) == ("not_found", "value")
    assert EMAIL in error["hint"]
    error = await err(client, "detach_contact", contact_id=contact_id, channel="sms", value=PHONE)
    assert error["code"] == "not_found"
    error = await err(client, "detach_contact", contact_id=UNKNOWN_UUID, channel="email", value=EMAIL)
    assert (error["code"], error["field"]) == ("not_found", "contact_id")
    error = await err(client, "detach_contact", contact_id=contact_id, channel="email", value="not an email")
    assert (error["code"], error["field"]) == ("invalid_argument", "value")


# ---------- dry runs ----------


async def test_a_dry_run_delete_reports_what_would_go_and_changes_nothing(
    client: Client, store: LocalStore, store_backend: str, empty_store: str
) -> None:
    contact_id = await _person(client)
    backend = BACKENDS[store_backend]
    before = backend.table_text(empty_store)

    preview = await ok(client, "delete_contact", contact_id=contact_id, dry_run=True)

    assert (preview["id"], preview["dry_run"]) == (contact_id, True)
    fields = {change["field"]: change for change in preview["changes"]}
    assert fields["name"] == {"field": "name", "old": NAME}
    assert fields["user_id"]["old"] == USER_ID and "new" not in fields["user_id"]
    assert {"methods", "identities"} <= set(fields)
    assert backend.table_text(empty_store) == before
    assert await counts(store) == {"contacts": 1, "methods": 4, "identities": 2}
    assert (await err(client, "delete_contact", contact_id=UNKNOWN_UUID, dry_run=True))["code"] == "not_found"


async def test_dry_run_detaches_change_nothing(client: Client, store_backend: str, empty_store: str) -> None:
    contact_id = await _person(client)
    backend = BACKENDS[store_backend]
    before = backend.table_text(empty_store)

    identity = await ok(client, "detach_identity", contact_id=contact_id, identifier=IDENTITY_EMAIL, dry_run=True)
    method = await ok(client, "detach_contact", contact_id=contact_id, channel="twitter", value=HANDLE, dry_run=True)

    assert identity["dry_run"] is True and method["dry_run"] is True
    assert [c["field"] for c in identity["changes"]] == ["identities"]
    assert [c["field"] for c in method["changes"]] == ["methods"]
    assert backend.table_text(empty_store) == before
