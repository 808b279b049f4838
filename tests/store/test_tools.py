"""The store, tool by tool, through a real MCP client session, on every backend (the contract suite).

Each test states one rule of the public contract (Feather attach, Blooio identities, TetherAI verification,
Featurebase upsert with the store's identity rules, Protocol create, get and find) and checks it in the structured
results an agent reads.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from mcp import Client
from mcp.types import TextContent

from contact_mcp.store import LocalStore
from tests.store.calls import PHONE, PHONE_2, UNKNOWN_UUID, counts, err, method, new_contact, ok

pytestmark = pytest.mark.anyio


# ---------- attach_contact ----------


async def test_attach_contact_adds_a_verified_primary_method(client: Client) -> None:
    contact_id = await new_contact(client, name="Ann")

    attached = await ok(client, "attach_contact", end_user_id=contact_id, channel="sms", value="+1 (415) 555-0123")

    assert attached["created"] is True
    assert attached["end_user_id"] == contact_id
    assert attached["channel"] == "sms"
    assert attached["type"] == "sms"
    assert attached["normalized_value"] == PHONE
    assert attached["verification_method"] == "api"
    stored = await method(client, contact_id, "sms", PHONE)
    assert stored["id"] == attached["uid"]
    assert stored["raw_value"] == "+1 (415) 555-0123"
    assert stored["verified"] is True
    assert stored["verified_at"].endswith("Z")
    assert stored["primary"] is True


@pytest.mark.parametrize(
    ("channel", "first", "again"),
    [
        ("email", "Bob@Example.com", "bob@example.com"),
        ("whatsapp", "+1 415 555 0123", PHONE),
        ("twitter", "@Ann_Lee", "ann_lee"),
        ("telegram", "ann-lee", " ann-lee "),
    ],
    ids=["email-case", "phone-format", "handle-at-sign", "untyped-channel"],
)
async def test_attach_contact_again_returns_the_existing_method(
    client: Client, channel: str, first: str, again: str
) -> None:
    contact_id = await new_contact(client)
    created = await ok(client, "attach_contact", end_user_id=contact_id, channel=channel, value=first)

    repeated = await ok(client, "attach_contact", end_user_id=contact_id, channel=channel, value=again)

    assert repeated["created"] is False
    assert repeated["uid"] == created["uid"]
    assert repeated["normalized_value"] == created["normalized_value"]
    contact = await ok(client, "get_contact", contact_id=contact_id)
    assert [m["value"] for m in contact["methods"]].count(created["normalized_value"]) == 1


async def test_attach_contact_untyped_channel_has_no_type(client: Client) -> None:
    contact_id = await new_contact(client)

    attached = await ok(client, "attach_contact", end_user_id=contact_id, channel="Telegram", value="ann")

    assert attached["channel"] == "telegram"
    assert "type" not in attached


async def test_attach_contact_promotes_an_unverified_upserted_email(client: Client) -> None:
    contact_id = await new_contact(client, email="ann@example.com")
    before = await method(client, contact_id, "email", "ann@example.com")
    assert before["verified"] is False

    attached = await ok(client, "attach_contact", end_user_id=contact_id, channel="email", value="ANN@example.com")

    assert attached["created"] is False
    assert attached["uid"] == before["id"]
    assert attached["verification_method"] == "api"
    after = await method(client, contact_id, "email", "ann@example.com")
    assert after["verified"] is True
    assert after["verification_method"] == "api"
    assert after["primary"] is True


async def test_attach_contact_second_method_of_a_kind_is_not_primary(client: Client) -> None:
    contact_id = await new_contact(client, email="ann@example.com")

    await ok(client, "attach_contact", end_user_id=contact_id, channel="email", value="ann@work.example.com")
    await ok(client, "attach_contact", end_user_id=contact_id, channel="phone", value=PHONE)
    await ok(client, "attach_contact", end_user_id=contact_id, channel="whatsapp", value=PHONE_2)

    contact = await ok(client, "get_contact", contact_id=contact_id)
    primary = {m["value"]: m["primary"] for m in contact["methods"]}
    assert primary == {"ann@example.com": True, "ann@work.example.com": False, PHONE: True, PHONE_2: False}


async def test_attach_contact_to_unknown_end_user_is_not_found(client: Client) -> None:
    error = await err(client, "attach_contact", end_user_id=UNKNOWN_UUID, channel="email", value="a@example.com")

    assert error["code"] == "not_found"
    assert error["field"] == "end_user_id"
    assert "upsert_contact" in error["hint"]
    assert "find_contacts" in error["hint"]


# ---------- attach_identity ----------


@pytest.mark.parametrize(
    "extra",
    [{}, {"channel_type": "twilio"}, {"channel_type": "amb", "channel_id": "ch_1"}],
    ids=["no-channel-type", "channel-type", "channel-id"],
)
async def test_attach_identity_again_returns_the_existing_identity(client: Client, extra: dict[str, str]) -> None:
    contact_id = await new_contact(client)
    first = await ok(client, "attach_identity", contact_id=contact_id, identifier="+1 415 555 0123", **extra)

    again = await ok(client, "attach_identity", contact_id=contact_id, identifier=PHONE, **extra)

    assert first["created"] is True
    assert again["created"] is False
    assert again["id"] == first["id"]
    assert again["created_at"] == first["created_at"]
    contact = await ok(client, "get_contact", contact_id=contact_id)
    assert len(contact["identities"]) == 1
    assert contact["identities"][0]["identifier"] == PHONE


async def test_attach_identity_key_includes_channel_type_and_channel_id(client: Client) -> None:
    contact_id = await new_contact(client)
    variants: list[dict[str, str]] = [
        {},
        {"channel_type": "twilio"},
        {"channel_type": "amb", "channel_id": "ch_1"},
        {"channel_type": "amb", "channel_id": "ch_2"},
    ]

    results = [await ok(client, "attach_identity", contact_id=contact_id, identifier=PHONE, **v) for v in variants]

    assert all(r["created"] for r in results)
    contact = await ok(client, "get_contact", contact_id=contact_id)
    assert [(i.get("channel_type"), i.get("channel_id")) for i in contact["identities"]] == [
        (None, None),
        ("twilio", None),
        ("amb", "ch_1"),
        ("amb", "ch_2"),
    ]


async def test_attach_identity_email_is_normalised(client: Client) -> None:
    contact_id = await new_contact(client)

    identity = await ok(client, "attach_identity", contact_id=contact_id, identifier="Ann@Example.COM")

    assert identity["identifier"] == "ann@example.com"
    assert identity["contact_id"] == contact_id


@pytest.mark.parametrize("contact_id", [UNKNOWN_UUID, "ct_abc123"], ids=["unknown-uuid", "not-a-uuid"])
async def test_attach_identity_to_unknown_contact_is_not_found(client: Client, contact_id: str) -> None:
    error = await err(client, "attach_identity", contact_id=contact_id, identifier=PHONE)

    assert error["code"] == "not_found"
    assert error["field"] == "contact_id"


async def test_attach_identity_held_by_another_contact_is_a_conflict(client: Client) -> None:
    owner = await new_contact(client, email="owner@example.com")
    other = await new_contact(client, email="other@example.com")
    await ok(client, "attach_identity", contact_id=owner, identifier=PHONE)

    error = await err(client, "attach_identity", contact_id=other, identifier=PHONE)

    assert error["code"] == "conflict"
    assert error["field"] == "identifier"
    assert error["existing_id"] == owner


# ---------- set_verification ----------


@pytest.mark.parametrize(
    ("kind", "value", "verified", "message"),
    [
        ("phone", PHONE, True, "Phone number verified"),
        ("phone", PHONE, False, "Phone number verification cleared"),
        ("email", "ann@example.com", True, "Email verified"),
        ("email", "ann@example.com", False, "Email verification cleared"),
    ],
    ids=["phone-set", "phone-clear", "email-set", "email-clear"],
)
async def test_set_verification_message_is_exact(
    client: Client, kind: str, value: str, verified: bool, message: str
) -> None:
    contact_id = await new_contact(client, email="ann@example.com", phone=PHONE)

    result = await ok(client, "set_verification", contact_id=contact_id, type=kind, value=value, verified=verified)

    assert result["message"] == message
    assert result["verified"] is verified
    assert result["value"] == value
    assert "verified_by" not in result


async def test_set_verification_stores_when_and_source(client: Client) -> None:
    contact_id = await new_contact(client, phone=PHONE)

    result = await ok(
        client,
        "set_verification",
        contact_id=contact_id,
        type="phone",
        value="+1 415-555-0123",
        verified=True,
        verified_at="2026-05-20T17:04:01+02:00",
        verification_source="admin-manual",
    )

    assert result["verified_at"] == "2026-05-20T15:04:01.000Z"
    assert result["verification_source"] == "admin-manual"
    stored = await method(client, contact_id, "phone", PHONE)
    assert stored["verified"] is True
    assert stored["verified_at"] == "2026-05-20T15:04:01.000Z"
    assert stored["verification_source"] == "admin-manual"


async def test_set_verification_clearing_removes_when_and_source(client: Client) -> None:
    contact_id = await new_contact(client, phone=PHONE)
    await ok(
        client, "set_verification", contact_id=contact_id, type="phone", value=PHONE, verified=True,
        verification_source="admin-manual",
    )  # fmt: skip

    cleared = await ok(
        client, "set_verification", contact_id=contact_id, type="phone", value=PHONE, verified=False, confirm=True
    )

    assert "verified_at" not in cleared
    assert "verification_source" not in cleared
    stored = await method(client, contact_id, "phone", PHONE)
    assert stored["verified"] is False
    assert "verified_at" not in stored
    assert "verification_source" not in stored


async def test_set_verification_updates_every_method_with_the_value(client: Client) -> None:
    contact_id = await new_contact(client)
    for channel in ("sms", "whatsapp"):
        await ok(client, "attach_contact", end_user_id=contact_id, channel=channel, value=PHONE)

    await ok(client, "set_verification", contact_id=contact_id, type="phone", value=PHONE, verified=False, confirm=True)

    contact = await ok(client, "get_contact", contact_id=contact_id)
    phones = [m for m in contact["methods"] if m["value"] == PHONE]
    assert [m["channel"] for m in phones] == ["sms", "whatsapp"]
    assert [m["verified"] for m in phones] == [False, False]


async def test_set_verification_value_not_on_contact_lists_its_values(client: Client) -> None:
    contact_id = await new_contact(client, phone=PHONE)
    await ok(client, "attach_contact", end_user_id=contact_id, channel="sms", value=PHONE_2)

    error = await err(
        client, "set_verification", contact_id=contact_id, type="phone", value="+14155550199", verified=True
    )

    assert error["code"] == "not_found"
    assert error["field"] == "value"
    assert PHONE in error["hint"]
    assert PHONE_2 in error["hint"]


async def test_set_verification_kind_the_contact_lacks_says_how_to_add_one(client: Client) -> None:
    contact_id = await new_contact(client, email="ann@example.com")

    error = await err(client, "set_verification", contact_id=contact_id, type="phone", value=PHONE, verified=True)

    assert error["field"] == "value"
    assert "no phone number" in error["hint"]
    assert "upsert_contact" in error["hint"]


async def test_set_verification_phone_does_not_match_an_email(client: Client) -> None:
    """The kinds are separate: an email address never answers a phone lookup and vice versa."""
    contact_id = await new_contact(client, email="ann@example.com", phone=PHONE)

    error = await err(
        client, "set_verification", contact_id=contact_id, type="email", value="bob@example.com", verified=True
    )

    assert "ann@example.com" in error["hint"]
    assert PHONE not in error["hint"]


@pytest.mark.parametrize("contact_id", [UNKNOWN_UUID, "64b7f0c2e4b0a1a2b3c4d5e6"], ids=["unknown-uuid", "object-id"])
async def test_set_verification_unknown_contact_is_not_found(client: Client, contact_id: str) -> None:
    error = await err(client, "set_verification", contact_id=contact_id, type="phone", value=PHONE, verified=True)

    assert error["code"] == "not_found"
    assert error["field"] == "contact_id"


# ---------- upsert_contact ----------


async def test_upsert_creates_a_contact_with_unverified_primary_methods(client: Client) -> None:
    created = await ok(client, "upsert_contact", email="Ann@Example.com", name="Ann Lee", phone="+1 415 555 0123")

    assert created["outcome"] == "created"
    assert created["email"] == "ann@example.com"
    assert created["phone"] == PHONE
    assert created["name"] == "Ann Lee"
    contact = await ok(client, "get_contact", contact_id=created["id"])
    assert [(m["channel"], m["type"], m["value"], m["primary"], m["verified"]) for m in contact["methods"]] == [
        ("email", "email", "ann@example.com", True, False),
        ("phone", "phone", PHONE, True, False),
    ]
    assert contact["created_at"].endswith("Z")
    assert contact["updated_at"] == contact["created_at"]


async def test_upsert_with_nothing_new_is_unchanged_and_writes_nothing(client: Client) -> None:
    fields: dict[str, Any] = {
        "email": "ann@example.com",
        "name": "Ann",
        "phone": PHONE,
        "locale": "en",
        "companies": [{"id": "c1", "name": "Acme", "monthly_spend": 10}],
        "custom_fields": {"plan": "pro", "seats": 3, "trial": False, "note": None},
        "roles": ["admin"],
        "subscribed_to_changelog": False,
    }
    created = await ok(client, "upsert_contact", **fields)
    before = await ok(client, "get_contact", contact_id=created["id"])

    again = await ok(client, "upsert_contact", **fields)

    assert again["outcome"] == "unchanged"
    assert again["id"] == created["id"]
    assert await ok(client, "get_contact", contact_id=created["id"]) == before


async def test_upsert_leaves_fields_not_given_unchanged(client: Client) -> None:
    contact_id = await new_contact(client, name="Ann", locale="en", roles=["admin"], custom_fields={"a": 1})

    result = await ok(client, "upsert_contact", email="ann@example.com", locale="fr")

    assert result["outcome"] == "updated"
    contact = await ok(client, "get_contact", contact_id=contact_id)
    assert (contact["name"], contact["locale"], contact["roles"], contact["custom_fields"]) == (
        "Ann",
        "fr",
        ["admin"],
        {"a": 1},
    )


async def test_upsert_replaces_companies_and_roles_and_merges_custom_fields(client: Client) -> None:
    contact_id = await new_contact(
        client,
        companies=[{"id": "c1", "name": "Acme"}, {"id": "c2", "name": "Globex"}],
        roles=["admin", "billing"],
        custom_fields={"plan": "pro", "seats": 3},
    )

    await ok(
        client,
        "upsert_contact",
        email="ann@example.com",
        companies=[{"id": "c3", "name": "Initech", "plan": "gold"}],
        roles=["viewer"],
        custom_fields={"seats": 5, "plan": None, "vip": True},
    )

    contact = await ok(client, "get_contact", contact_id=contact_id)
    assert contact["companies"] == [{"id": "c3", "name": "Initech", "plan": "gold"}]
    assert contact["roles"] == ["viewer"]
    assert contact["custom_fields"] == {"plan": None, "seats": 5, "vip": True}


async def test_upsert_custom_field_type_change_is_an_update(client: Client) -> None:
    """1 and true compare equal in Python; the store compares what it would store."""
    await new_contact(client, custom_fields={"flag": 1})

    result = await ok(client, "upsert_contact", email="ann@example.com", custom_fields={"flag": True})

    assert result["outcome"] == "updated"


@pytest.mark.parametrize("number", [1e16, -0.0, 2.0, 1e300, 0.1, -12345678901234567890, 10**400])
async def test_upsert_of_the_same_custom_number_again_is_unchanged(client: Client, number: float) -> None:
    """PostgreSQL's jsonb keeps a number as a decimal (1e16 comes back 10000000000000000, -0.0 as 0): the same
    number, written again, is no change on either backend."""
    await new_contact(client, custom_fields={"n": number})

    again = await ok(client, "upsert_contact", email="ann@example.com", custom_fields={"n": number})
    other = await ok(client, "upsert_contact", email="ann@example.com", custom_fields={"n": number + 1})

    assert again["outcome"] == "unchanged"
    assert other["outcome"] == ("updated" if number + 1 != number else "unchanged")


async def test_upsert_matches_user_id_before_email(client: Client) -> None:
    first = await new_contact(client, email="ann@example.com", user_id="u1")

    result = await ok(client, "upsert_contact", user_id="u1", email="ann.lee@example.com")

    assert result["id"] == first
    assert result["outcome"] == "updated"
    assert result["email"] == "ann.lee@example.com"
    contact = await ok(client, "get_contact", contact_id=first)
    assert {m["value"]: m["primary"] for m in contact["methods"]} == {
        "ann@example.com": False,
        "ann.lee@example.com": True,
    }


async def test_upsert_email_match_adopts_a_contact_without_user_id(client: Client) -> None:
    contact_id = await new_contact(client, email="ann@example.com")

    result = await ok(client, "upsert_contact", user_id="u1", email="ANN@example.com")

    assert result["id"] == contact_id
    assert result["user_id"] == "u1"
    assert result["outcome"] == "updated"


async def test_upsert_user_id_of_one_contact_and_email_of_another_is_a_conflict_naming_both(
    client: Client, store: LocalStore
) -> None:
    """Never a silent move of an email from one contact to another (nor a duplicate)."""
    ann = await new_contact(client, email="ann@example.com", user_id="u1")
    bob = await new_contact(client, email="bob@example.com")
    before = await counts(store)

    error = await err(client, "upsert_contact", user_id="u1", email="bob@example.com", name="Changed")

    assert error["code"] == "conflict"
    assert error["existing_id"] == ann
    assert error["candidates"] == [ann, bob]
    assert "user_id alone" in error["hint"]
    assert "email alone" in error["hint"]
    assert await counts(store) == before
    assert "name" not in await ok(client, "get_contact", contact_id=ann)


async def test_upsert_email_of_a_contact_with_another_user_id_is_a_conflict(client: Client, store: LocalStore) -> None:
    """Never a silent duplicate, never a silent change of someone's user_id."""
    owner = await new_contact(client, email="ann@example.com", user_id="u1")

    error = await err(client, "upsert_contact", user_id="u2", email="ann@example.com")

    assert error["code"] == "conflict"
    assert error["field"] == "user_id"
    assert error["existing_id"] == owner
    assert "candidates" not in error
    assert "'u1'" in error["hint"]
    assert await counts(store) == {"contacts": 1, "methods": 1, "identities": 0}
    assert (await ok(client, "get_contact", contact_id=owner))["user_id"] == "u1"


async def test_upsert_user_id_whose_contact_also_holds_the_email_elsewhere_updates_it(client: Client) -> None:
    """The email is on both contacts (attach_contact allows that): the user_id's contact holds it, no conflict."""
    ann = await new_contact(client, email="ann@example.com", user_id="u1")
    await new_contact(client, email="shared@example.com")
    await ok(client, "attach_contact", end_user_id=ann, channel="email", value="shared@example.com")

    result = await ok(client, "upsert_contact", user_id="u1", email="shared@example.com")

    assert (result["id"], result["outcome"], result["email"]) == (ann, "updated", "shared@example.com")


async def test_upsert_by_user_id_alone_creates_then_updates(client: Client) -> None:
    created = await ok(client, "upsert_contact", user_id="u9", name="Nine")

    updated = await ok(client, "upsert_contact", user_id="u9", name="Nina")

    assert (created["outcome"], updated["outcome"]) == ("created", "updated")
    assert updated["id"] == created["id"]
    assert updated["name"] == "Nina"
    assert "email" not in updated


async def test_upsert_new_phone_becomes_primary_and_demotes_the_old(client: Client) -> None:
    contact_id = await new_contact(client, phone=PHONE)

    result = await ok(client, "upsert_contact", email="ann@example.com", phone=PHONE_2)

    assert result["phone"] == PHONE_2
    contact = await ok(client, "get_contact", contact_id=contact_id)
    assert {m["value"]: m["primary"] for m in contact["methods"] if m["type"] == "phone"} == {
        PHONE: False,
        PHONE_2: True,
    }


async def test_upsert_phone_already_held_is_promoted_not_duplicated(client: Client) -> None:
    contact_id = await new_contact(client, phone=PHONE)
    await ok(client, "upsert_contact", email="ann@example.com", phone=PHONE_2)

    result = await ok(client, "upsert_contact", email="ann@example.com", phone=PHONE)

    assert result["outcome"] == "updated"
    assert result["phone"] == PHONE
    contact = await ok(client, "get_contact", contact_id=contact_id)
    assert len([m for m in contact["methods"] if m["type"] == "phone"]) == 2


async def test_upsert_name_change_bumps_updated_at_and_search(client: Client) -> None:
    contact_id = await new_contact(client, name="Ann Lee")

    await ok(client, "upsert_contact", email="ann@example.com", name="Annabel Stone")

    assert (await ok(client, "find_contacts", query="stone"))["contacts"][0]["id"] == contact_id
    assert (await ok(client, "find_contacts", query="lee"))["contacts"] == []


async def test_upsert_reports_the_summary_find_contacts_reads_back(client: Client) -> None:
    """The upsert result is built from the matched row and the call, not re-read; it must agree with the store."""
    created = await ok(client, "create_contact", username="ann", phone_number=PHONE, display_name="Ann L")
    await ok(client, "attach_contact", end_user_id=created["id"], channel="email", value="ann@example.com")
    calls: list[dict[str, Any]] = [
        {"email": "ann@example.com"},  # matched by email; no name given: the display name shows
        {"email": "ann@example.com", "user_id": "u1", "phone": PHONE_2},
        {"user_id": "u1", "name": "Ann Lee", "email": "ann.lee@example.com"},
        {"user_id": "u1", "phone": PHONE},
        {"user_id": "u1"},
        {"user_id": "u2", "name": "Bo"},
    ]
    for arguments in calls:
        result = await ok(client, "upsert_contact", **arguments)
        by = {"user_id": result["user_id"]} if "user_id" in result else {"email": result["email"]}
        (found,) = (await ok(client, "find_contacts", **by))["contacts"]
        reported = {key: result.get(key) for key in ("id", "name", "user_id", "email", "phone")}
        assert reported == {key: found.get(key) for key in reported}, arguments
    assert [c["name"] for c in (await ok(client, "find_contacts", query="ann"))["contacts"]] == ["Ann Lee"]


# ---------- create_contact ----------


async def test_create_contact_defaults_display_name_and_stores_the_phone(client: Client) -> None:
    created = await ok(
        client, "create_contact", username="ann", phone_number="+1 415 555 0123", avatar_url="https://x.example/a.png"
    )

    assert created["display_name"] == "ann"
    assert created["phone_number"] == PHONE
    assert created["avatar_url"] == "https://x.example/a.png"
    assert created["created_at"].endswith("Z")
    contact = await ok(client, "get_contact", contact_id=created["id"])
    assert contact["username"] == "ann"
    assert contact["display_name"] == "ann"
    assert contact["profile_picture"] == "https://x.example/a.png"
    assert [(m["channel"], m["value"], m["primary"]) for m in contact["methods"]] == [("phone", PHONE, True)]


async def test_create_contact_keeps_the_given_display_name(client: Client) -> None:
    created = await ok(client, "create_contact", username="ann", phone_number=PHONE, display_name="Ann L.")

    assert created["display_name"] == "Ann L."


async def test_create_contact_with_a_taken_username_is_a_conflict(client: Client) -> None:
    first = await ok(client, "create_contact", username="Straße", phone_number=PHONE)

    error = await err(client, "create_contact", username="STRASSE", phone_number=PHONE_2)

    assert error["code"] == "conflict"
    assert error["field"] == "username"
    assert error["existing_id"] == first["id"]
    assert "get_contact" in error["hint"]
    assert len((await ok(client, "find_contacts"))["contacts"]) == 1


async def test_create_contact_with_a_phone_another_contact_holds_succeeds_and_says_so(client: Client) -> None:
    """Families share phones: not a conflict, but the result names the contacts already holding it."""
    first = await ok(client, "create_contact", username="ann", phone_number=PHONE)
    second = await ok(client, "create_contact", username="bob", phone_number=PHONE)
    upserted = await new_contact(client, email="cy@example.com", phone=PHONE_2)
    await ok(client, "attach_contact", end_user_id=upserted, channel="whatsapp", value=PHONE)

    third = await client.call_tool("create_contact", {"username": "cy", "phone_number": PHONE})

    assert "phone_shared_with" not in first
    assert second["phone_shared_with"] == [first["id"]]
    assert third.structured_content is not None
    assert third.structured_content["phone_shared_with"] == [first["id"], second["id"], upserted]
    text = third.content[0]
    assert isinstance(text, TextContent)
    assert first["id"] in text.text


async def test_created_contact_works_with_the_other_tools(client: Client) -> None:
    created = await ok(client, "create_contact", username="ann", phone_number=PHONE)

    await ok(client, "attach_contact", end_user_id=created["id"], channel="email", value="ann@example.com")
    verified = await ok(client, "set_verification", contact_id=created["id"], type="phone", value=PHONE, verified=True)
    upserted = await ok(client, "upsert_contact", email="ann@example.com", name="Ann")

    assert verified["verified"] is True
    assert upserted["id"] == created["id"]
    assert upserted["phone"] == PHONE


# ---------- get_contact ----------


async def test_get_contact_unknown_id_is_not_found(client: Client) -> None:
    error = await err(client, "get_contact", contact_id=UNKNOWN_UUID)

    assert error["code"] == "not_found"
    assert error["field"] == "contact_id"
    assert "find_contacts" in error["hint"]


async def test_get_contact_accepts_an_upper_case_id(client: Client) -> None:
    contact_id = await new_contact(client)

    contact = await ok(client, "get_contact", contact_id=contact_id.upper())

    assert contact["id"] == contact_id


async def test_contact_ids_are_uuid4(client: Client) -> None:
    contact_id = await new_contact(client)

    assert contact_id[14] == "4"
    assert len(contact_id) == 36


# ---------- find_contacts ----------


@pytest.fixture
async def people(client: Client) -> dict[str, str]:
    """Three contacts made by different tools; returns name -> id."""
    ann = await ok(client, "upsert_contact", email="ann@example.com", user_id="u-ann", name="Ann Lee", phone=PHONE)
    bob = await ok(client, "upsert_contact", email="bob@example.com", name="Bob Stone")
    emile = await ok(client, "create_contact", username="Émile", phone_number=PHONE_2, display_name="Émile Zola")
    return {"ann": ann["id"], "bob": bob["id"], "emile": emile["id"]}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["ann", "bob", "emile"]),
        ({"email": "ANN@example.com"}, ["ann"]),
        ({"phone": "+1 415 555 0124"}, ["emile"]),
        ({"username": "émile"}, ["emile"]),
        ({"username": "émil"}, []),
        ({"user_id": "u-ann"}, ["ann"]),
        ({"query": "o"}, ["bob", "emile"]),
        ({"query": "ZOLA"}, ["emile"]),
        ({"query": "ÉMI"}, ["emile"]),
        ({"query": "n l"}, ["ann"]),
        ({"query": "ee"}, ["ann"]),
        ({"query": "stone", "email": "bob@example.com"}, ["bob"]),
        ({"query": "stone", "email": "ann@example.com"}, []),
        ({"user_id": "u-ann", "phone": PHONE, "email": "ann@example.com", "query": "ann"}, ["ann"]),
        ({"user_id": "u-ann", "phone": PHONE_2}, []),
    ],
    ids=[
        "no-filter-lists-all",
        "email",
        "phone",
        "username-caseless",
        "username-is-exact",
        "user-id",
        "query-one-char",
        "query-display-name",
        "query-unicode-case",
        "query-spans-words",
        "query-two-chars",
        "query-and-email",
        "query-and-other-email",
        "all-filters",
        "filters-and-together",
    ],
)
async def test_find_contacts_filters(
    client: Client, people: dict[str, str], filters: dict[str, str], expected: list[str]
) -> None:
    page = await ok(client, "find_contacts", **filters)

    assert [c["id"] for c in page["contacts"]] == [people[name] for name in expected]
    assert "next_cursor" not in page


async def test_find_contacts_summaries_carry_primary_email_and_phone(client: Client, people: dict[str, str]) -> None:
    page = await ok(client, "find_contacts")

    assert page["contacts"] == [
        {"id": people["ann"], "name": "Ann Lee", "user_id": "u-ann", "email": "ann@example.com", "phone": PHONE},
        {"id": people["bob"], "name": "Bob Stone", "email": "bob@example.com"},
        {"id": people["emile"], "name": "Émile Zola", "username": "Émile", "phone": PHONE_2},
    ]


async def test_find_contacts_query_does_not_match_across_fields(client: Client) -> None:
    await ok(client, "create_contact", username="zed", phone_number=PHONE, display_name="Ann")

    page = await ok(client, "find_contacts", query="annzed")

    assert page["contacts"] == []


@pytest.mark.parametrize("query", [None, "USER"], ids=["no-filter", "search"])
async def test_find_contacts_pages_through_every_match_once(client: Client, query: str | None) -> None:
    ids = [await new_contact(client, email=f"user{i}@example.com", name=f"User {i}") for i in range(7)]
    filters = {"query": query} if query else {}

    seen: list[str] = []
    sizes: list[int] = []
    cursor: str | None = None
    while True:
        page = await ok(client, "find_contacts", limit=3, **filters, **({"cursor": cursor} if cursor else {}))
        seen += [c["id"] for c in page["contacts"]]
        sizes.append(len(page["contacts"]))
        cursor = page.get("next_cursor")
        if cursor is None:
            break

    assert seen == ids
    assert sizes == [3, 3, 1]


async def test_find_contacts_no_next_cursor_when_page_ends_exactly(client: Client) -> None:
    for i in range(4):
        await new_contact(client, email=f"user{i}@example.com")

    first = await ok(client, "find_contacts", limit=2)
    second = await ok(client, "find_contacts", limit=2, cursor=first["next_cursor"])

    assert len(second["contacts"]) == 2
    assert "next_cursor" not in second


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",
        "bm90LWEtbnVtYmVy",
        "LTE",
        base64.urlsafe_b64encode(b"9" * 30).decode(),
        base64.urlsafe_b64encode(b"9999999999999999999").decode(),
        base64.urlsafe_b64encode(b"9223372036854775808").decode().rstrip("="),
        "MA",
        "MDA1",
    ],
    ids=["garbage", "text", "negative", "huge", "19-digits", "past-int64", "zero", "leading-zeros"],
)
async def test_find_contacts_invalid_cursor_is_invalid_argument(client: Client, cursor: str) -> None:
    error = await err(client, "find_contacts", cursor=cursor)

    assert error["code"] == "invalid_argument"
    assert error["field"] == "cursor"
    assert "next_cursor" in error["hint"]


# ---------- storage ----------


async def test_tools_write_one_shared_contact_store(client: Client, store: LocalStore) -> None:
    """Every tool reads and writes the same rows: the store holds exactly what the calls made."""
    contact_id = await new_contact(client, email="ann@example.com", phone=PHONE)
    await ok(client, "attach_contact", end_user_id=contact_id, channel="slack", value="U123")
    await ok(client, "attach_identity", contact_id=contact_id, identifier=PHONE, channel_type="twilio")
    await ok(client, "create_contact", username="bob", phone_number=PHONE_2)

    assert await counts(store) == {"contacts": 2, "methods": 4, "identities": 1}
