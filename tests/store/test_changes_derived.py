"""A write's reported `changes` are exactly what reading its contacts whole before and after it shows, on every
backend, for every write tool and its variants. PostgreSQL derives the after-state from what it writes instead of
reading it back (`store/effects.py`); this is the check that the derivation and the database agree: the contacts
are read straight from the store (export) around the call, and `rules.field_changes` of the two reads must equal
what the call reported."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from mcp import Client

from contact_mcp.models import FieldChange
from contact_mcp.store import LocalStore, rules
from contact_mcp.store.records import ContactRecord
from tests.store.calls import PHONE, PHONE_2, ok

pytestmark = pytest.mark.anyio

ADA = "ada@example.com"
PHONE_3 = "+14155550125"


@dataclass(frozen=True)
class Seeded:
    ada: str
    """upsert: email (primary, unverified), phone, user_id, name, companies, roles, a custom field."""
    bob: str
    """create_contact: username, phone; one identity; a verified email and a second phone attached."""
    cy: str
    """upsert: email and name only; Ada's phone attached on whatsapp (so her phone is on two contacts)."""


async def _seed(client: Client) -> Seeded:
    ada = await ok(
        client, "upsert_contact", email=ADA, user_id="u-ada", name="Ada", phone=PHONE,
        companies=[{"id": "c1", "name": "Acme"}], roles=["admin"], custom_fields={"plan": "pro"},
    )  # fmt: skip
    bob = await ok(client, "create_contact", username="bob", phone_number=PHONE_2)
    await ok(client, "attach_identity", contact_id=bob["id"], identifier=PHONE_2, channel_type="blooio")
    await ok(client, "attach_contact", end_user_id=bob["id"], channel="email", value="bob@example.com")
    await ok(client, "attach_contact", end_user_id=bob["id"], channel="phone", value=PHONE_3)
    cy = await ok(client, "upsert_contact", email="cy@example.com", name="Cy")
    await ok(client, "attach_contact", end_user_id=cy["id"], channel="whatsapp", value=PHONE)
    return Seeded(ada=ada["id"], bob=bob["id"], cy=cy["id"])


Call = tuple[str, dict[str, Any]]
Calls = Callable[[Seeded], list[Call]]
"""The calls of one case: every one but the last prepares it; the last is the call whose report is checked."""


def _merge(survivor: str, *duplicates: str) -> Call:
    return "merge_contacts", {"survivor_id": survivor, "duplicate_ids": list(duplicates), "confirm": True}


def _verify(contact: str, type_: str, value: str, *, verified: bool = True) -> Call:
    return "set_verification", {"contact_id": contact, "type": type_, "value": value, "verified": verified,
                                "verification_source": "test", "confirm": True}  # fmt: skip


CASES: dict[str, Calls] = {
    "attach-new-method": lambda s: [
        ("attach_contact", {"end_user_id": s.ada, "channel": "email", "value": "ada.work@example.com"})
    ],
    "attach-first-of-its-kind": lambda s: [
        ("attach_contact", {"end_user_id": s.cy, "channel": "sms", "value": PHONE_2})
    ],
    "attach-promotes-unverified": lambda s: [
        ("attach_contact", {"end_user_id": s.ada, "channel": "email", "value": ADA})
    ],
    "attach-already-verified": lambda s: [
        ("attach_contact", {"end_user_id": s.bob, "channel": "email", "value": "bob@example.com"})
    ],
    "attach-via-merged-contact": lambda s: [
        _merge(s.ada, s.cy),
        ("attach_contact", {"end_user_id": s.cy, "channel": "slack", "value": "U123"}),
    ],
    "identity-new": lambda s: [
        ("attach_identity", {"contact_id": s.ada, "identifier": ADA, "channel_type": "whatsapp"})
    ],
    "identity-existing": lambda s: [
        ("attach_identity", {"contact_id": s.bob, "identifier": PHONE_2, "channel_type": "blooio"})
    ],
    "verify": lambda s: [_verify(s.ada, "email", ADA)],
    "verify-one-value-on-two-channels": lambda s: [
        ("attach_contact", {"end_user_id": s.ada, "channel": "whatsapp", "value": PHONE}),
        _verify(s.ada, "phone", PHONE, verified=False),
    ],
    "unverify": lambda s: [_verify(s.ada, "email", ADA), _verify(s.ada, "email", ADA, verified=False)],
    "verify-unchanged": lambda s: [
        _verify(s.bob, "email", "bob@example.com", verified=True),
        _verify(s.bob, "email", "bob@example.com", verified=True),
    ],
    "verify-via-merged-contact": lambda s: [_merge(s.ada, s.cy), _verify(s.cy, "email", "cy@example.com")],
    "upsert-name": lambda s: [("upsert_contact", {"user_id": "u-ada", "email": ADA, "name": "Ada L."})],
    "upsert-fields": lambda s: [
        (
            "upsert_contact",
            {
                "email": ADA,
                "locale": "fr",
                "profile_picture": "https://example.com/a.png",
                "roles": ["user"],
                "companies": [{"id": "c2", "name": "Beta"}],
                "custom_fields": {"plan": "team", "seats": 3, "x": None},
                "subscribed_to_changelog": True,
            },
        )
    ],
    "upsert-new-email": lambda s: [("upsert_contact", {"user_id": "u-ada", "email": "ada.new@example.com"})],
    "upsert-email-held-unprimary": lambda s: [
        ("attach_contact", {"end_user_id": s.ada, "channel": "email", "value": "ada.work@example.com"}),
        ("upsert_contact", {"user_id": "u-ada", "email": "ada.work@example.com"}),
    ],
    "upsert-phone-on-another-channel": lambda s: [
        ("attach_contact", {"end_user_id": s.ada, "channel": "whatsapp", "value": PHONE_3}),
        ("upsert_contact", {"user_id": "u-ada", "phone": PHONE_3, "name": "Ada P."}),
    ],
    "upsert-new-phone-demotes-another-channel": lambda s: [
        ("upsert_contact", {"email": "cy@example.com", "phone": PHONE_2})
    ],
    "upsert-adds-user-id": lambda s: [("upsert_contact", {"email": "cy@example.com", "user_id": "u-cy"})],
    "upsert-unchanged": lambda s: [("upsert_contact", {"email": ADA, "name": "Ada"})],
    "upsert-new": lambda s: [
        (
            "upsert_contact",
            {
                "email": "dee@example.com",
                "phone": PHONE_3,
                "user_id": "u-dee",
                "name": "Dee",
                "locale": "de",
                "roles": ["x"],
                "companies": [{"id": "c9", "name": "Gamma"}],
                "custom_fields": {"k": 1.5},
                "subscribed_to_changelog": False,
            },
        )
    ],
    "upsert-new-email-only": lambda s: [("upsert_contact", {"email": "eve@example.com"})],
    "upsert-by-merged-user-id": lambda s: [
        ("upsert_contact", {"email": "cy@example.com", "user_id": "u-cy"}),
        _merge(s.ada, s.cy),
        ("upsert_contact", {"user_id": "u-cy", "name": "Ada M."}),
    ],
    "create": lambda s: [
        (
            "create_contact",
            {
                "username": "dee",
                "phone_number": PHONE,
                "display_name": "Dee",
                "avatar_url": "https://example.com/d.png",
            },
        )
    ],
    "create-default-display-name": lambda s: [("create_contact", {"username": "eve", "phone_number": PHONE_3})],
    "detach-method": lambda s: [
        ("detach_contact", {"contact_id": s.bob, "channel": "email", "value": "bob@example.com"})
    ],
    "detach-primary-with-heir": lambda s: [
        ("detach_contact", {"contact_id": s.bob, "channel": "phone", "value": PHONE_2})
    ],
    "detach-primary-alone": lambda s: [("detach_contact", {"contact_id": s.ada, "channel": "email", "value": ADA})],
    "detach-identity": lambda s: [("detach_identity", {"contact_id": s.bob, "identifier": PHONE_2})],
    "merge": lambda s: [_merge(s.ada, s.bob)],
    "merge-folds-and-fills": lambda s: [
        (
            "upsert_contact",
            {
                "email": "cy@example.com",
                "phone": PHONE_2,
                "user_id": "u-cy",
                "locale": "it",
                "roles": ["ops"],
                "custom_fields": {"plan": "free", "tier": 2},
            },
        ),
        _verify(s.cy, "phone", PHONE_2),
        _merge(s.bob, s.cy),
    ],
    "merge-two": lambda s: [_merge(s.cy, s.ada, s.bob)],
    "merge-again": lambda s: [_merge(s.ada, s.bob), _merge(s.ada, s.bob)],
    "delete": lambda s: [("delete_contact", {"contact_id": s.bob, "confirm": True})],
    "delete-with-merged": lambda s: [_merge(s.ada, s.cy), ("delete_contact", {"contact_id": s.ada, "confirm": True})],
}


UNCHANGED = frozenset({"attach-already-verified", "identity-existing", "verify-unchanged", "upsert-unchanged",
                       "merge-again"})  # fmt: skip


def _whole(record: ContactRecord) -> dict[str, Any]:
    """A contact read whole, in the shape a backend hands `rules.field_changes`."""
    fields: dict[str, Any] = {name: getattr(record, name) for name in ContactRecord.model_fields}
    fields["methods"] = [m.model_dump() for m in record.methods]
    fields["identities"] = [i.model_dump() for i in record.identities]
    return fields


async def _contacts(store: LocalStore) -> dict[str, dict[str, Any]]:
    wholes: dict[str, dict[str, Any]] = {}
    async for batch in store.iter_records():
        wholes.update((record.id, _whole(record)) for record in batch)
    return wholes


def _by_contact(changes: list[FieldChange]) -> dict[str | None, list[str]]:
    """Each contact's changes, in no order (SQLite lists a contact's methods in its index's order)."""
    grouped: dict[str | None, list[str]] = {}
    for change in changes:
        grouped.setdefault(change.contact_id, []).append(change.model_dump_json())
    return {whose: sorted(shown) for whose, shown in grouped.items()}


@pytest.mark.parametrize("case", list(CASES))
async def test_the_reported_changes_are_what_reading_the_contacts_before_and_after_shows(
    client: Client, store: LocalStore, case: str
) -> None:
    *preparing, (tool, arguments) = CASES[case](await _seed(client))
    for prepared_tool, prepared in preparing:
        await ok(client, prepared_tool, **prepared)
    before = await _contacts(store)

    result = await ok(client, tool, **arguments)

    after = await _contacts(store)
    differ = [key for key in dict.fromkeys([*before, *after]) if before.get(key) != after.get(key)]
    expected: list[FieldChange] = []
    for key in differ:
        whose = key if len(differ) > 1 else None
        expected += rules.field_changes(before.get(key), after.get(key), contact_id=whose)
    reported = [FieldChange.model_validate(change) for change in result["changes"]]
    assert _by_contact(reported) == _by_contact(expected)
    if case not in UNCHANGED:
        assert expected, "the case changes nothing: it checks nothing"
