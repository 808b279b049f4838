"""The pure contact rules (no database): cursors, upsert matching, merging and change detection.

The contract suite checks these through every backend; here are the cases a backend cannot easily produce, such
as a driver handing JSON columns back decoded with its keys reordered (PostgreSQL `jsonb`).
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contact_mcp.errors import Conflict, InvalidArgument
from contact_mcp.models import CustomValue, UpsertContactInput
from contact_mcp.store import rules

STORED = rules.StoredContact(
    key=1,
    id="6f1c2a0e-8a3b-4c5d-9e7f-0a1b2c3d4e5f",
    user_id=None,
    username=None,
    name="Ann",
    display_name=None,
    locale=None,
    profile_picture=None,
    companies="[]",
    custom_fields='{"b":1,"a":true}',
    roles='["admin"]',
    subscribed_to_changelog=None,
    email="ann@example.com",
    phone=None,
)
OTHER = replace(STORED, key=2, id="0b6f1c2a-8a3b-4c5d-9e7f-0a1b2c3d4e5f", email="bob@example.com")


@given(st.integers(min_value=1, max_value=rules.MAX_SEQ))
def test_every_row_number_round_trips_through_a_cursor(seq: int) -> None:
    assert rules.decode_cursor(rules.encode_cursor(seq)) == seq


@given(st.text(max_size=40))
def test_any_other_text_is_refused_or_is_exactly_a_cursor_we_issue(cursor: str) -> None:
    """Either invalid_argument, or exactly the cursor `encode_cursor` gives for that row: never a crash."""
    issued = any(rules.encode_cursor(seq) == cursor for seq in _plausible(cursor))
    if issued:
        assert rules.encode_cursor(rules.decode_cursor(cursor)) == cursor
    else:
        with pytest.raises(InvalidArgument):
            rules.decode_cursor(cursor)


def _plausible(cursor: str) -> list[int]:
    """The row number a cursor would carry if it decoded to digits (else none)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except ValueError:
        return []
    return [int(raw)] if raw.isdigit() and raw.isascii() else []


@pytest.mark.parametrize("seq", [0, -1, rules.MAX_SEQ + 1, 10**19 - 1], ids=["zero", "negative", "int64+1", "19-9s"])
def test_out_of_range_row_numbers_are_refused(seq: int) -> None:
    forged = base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")

    with pytest.raises(InvalidArgument):
        rules.decode_cursor(forged)


def call(**fields: Any) -> UpsertContactInput:
    return UpsertContactInput(**{"email": None, "user_id": None, **fields})


@pytest.mark.parametrize(
    ("fields", "by_user_id", "by_email", "holds", "expected"),
    [
        ({"user_id": "u1"}, None, None, False, None),
        ({"email": "ann@example.com"}, None, STORED, False, STORED),
        ({"user_id": "u1", "email": "ann@example.com"}, STORED, STORED, False, STORED),
        ({"user_id": "u1", "email": "bob@example.com"}, STORED, OTHER, True, STORED),
        ({"user_id": "u1", "email": "new@example.com"}, STORED, None, False, STORED),
        ({"user_id": "u2", "email": "ann@example.com"}, None, STORED, False, STORED),  # adopts: no user_id yet
    ],
    ids=["new-user-id", "email", "both-same-contact", "user-holds-email-too", "new-email", "adopt"],
)
def test_upsert_target(
    fields: dict[str, Any],
    by_user_id: rules.StoredContact | None,
    by_email: rules.StoredContact | None,
    holds: bool,
    expected: rules.StoredContact | None,
) -> None:
    target = rules.upsert_target(call(**fields), by_user_id=by_user_id, by_email=by_email, user_holds_email=holds)

    assert target == expected


def test_upsert_target_two_contacts_is_a_conflict_naming_both() -> None:
    with pytest.raises(Conflict) as caught:
        rules.upsert_target(
            call(user_id="u1", email="bob@example.com"), by_user_id=STORED, by_email=OTHER, user_holds_email=False
        )

    assert (caught.value.existing_id, caught.value.candidates) == (STORED.id, [STORED.id, OTHER.id])


def test_upsert_target_email_of_another_user_id_is_a_conflict() -> None:
    owned = replace(STORED, user_id="u1")

    with pytest.raises(Conflict) as caught:
        rules.upsert_target(call(user_id="u2", email="ann@example.com"), by_user_id=None, by_email=owned,
                            user_holds_email=False)  # fmt: skip

    assert (caught.value.existing_id, caught.value.candidates, caught.value.field) == (STORED.id, None, "user_id")


@pytest.mark.parametrize(
    "stored",
    ['{"b":1,"a":true}', '{"a": true, "b": 1}', {"a": True, "b": 1}],
    ids=["text", "text-reordered", "decoded-reordered"],
)
def test_json_columns_compare_by_value_not_by_spelling(stored: rules.JsonColumn) -> None:
    changes = rules.upsert_changes(replace(STORED, custom_fields=stored), call(custom_fields={"a": True}))

    assert not changes.changed


@pytest.mark.parametrize(
    ("new", "stored_as"),
    [(1, '{"b":1,"a":1}'), (1.0, '{"b":1,"a":1.0}'), ("true", '{"b":1,"a":"true"}')],
    ids=["int", "float", "string"],
)
def test_a_custom_field_changing_type_is_a_change(new: CustomValue, stored_as: str) -> None:
    """`true == 1 == 1.0` in Python; the store compares what it would store."""
    changes = rules.upsert_changes(STORED, call(custom_fields={"a": new}))

    assert changes.columns["custom_fields"] == stored_as


def test_nothing_new_is_no_change() -> None:
    same = call(email="ann@example.com", name="Ann", roles=("admin",), custom_fields={"b": 1})

    assert rules.upsert_changes(STORED, same) == rules.UpsertChanges()


# ---------- what a write changed ----------

METHOD = {"id": "m1", "channel": "email", "type": "email", "value": "a@example.com", "primary": 1, "verified_at": None,
          "verification_source": None, "verification_method": None}  # fmt: skip


def _whole(**fields: Any) -> dict[str, Any]:
    """A snapshot row as SQLite gives it (JSON as text), with `fields` replacing its values."""
    row: dict[str, Any] = {
        "id": "c1", "user_id": None, "username": None, "name": "Ann", "display_name": None, "locale": None,
        "profile_picture": None, "companies": "[]", "custom_fields": '{"plan": "pro", "n": 1}', "roles": "[]",
        "subscribed_to_changelog": None, "merged_into": None, "methods": json.dumps([METHOD]), "identities": "[]",
    }  # fmt: skip
    row.update(fields)
    return rules.snapshot([row[name] for name in (*rules.SNAPSHOT_COLUMNS, "methods", "identities")])


def _pairs(changes: list[Any]) -> list[tuple[str, Any, Any]]:
    return [(change.field, change.old, change.new) for change in changes]


def test_field_changes_names_each_changed_field_and_custom_key() -> None:
    after = _whole(name="Ann Lee", custom_fields='{"n": 1, "plan": "team"}', roles='["admin"]')
    assert _pairs(rules.field_changes(_whole(), after)) == [
        ("name", "Ann", "Ann Lee"),
        ("custom_fields.plan", "pro", "team"),
        ("roles", None, ["admin"]),
    ]


def test_field_changes_tells_true_from_one_and_ignores_key_order() -> None:
    after = _whole(custom_fields={"n": True, "plan": "pro"}, companies=[])
    assert _pairs(rules.field_changes(_whole(), after)) == [("custom_fields.n", 1, True)]


def test_field_changes_reports_methods_as_objects() -> None:
    verified = {**METHOD, "verified_at": "2026-01-01T00:00:00.000Z", "verification_method": "manual"}
    phone = {**METHOD, "id": "m2", "channel": "sms", "type": "sms", "value": "+14155550123", "primary": 1}
    changes = rules.field_changes(_whole(), _whole(methods=[verified, phone]))
    shown = {"id": "m1", "channel": "email", "type": "email", "value": "a@example.com", "primary": True}
    assert _pairs(changes) == [
        ("methods", {**shown, "verified": False},
         {**shown, "verified": True, "verified_at": "2026-01-01T00:00:00.000Z", "verification_method": "manual"}),
        ("methods", None, {"id": "m2", "channel": "sms", "type": "sms", "value": "+14155550123", "primary": True,
                           "verified": False}),
    ]  # fmt: skip


def test_field_changes_of_a_created_and_a_deleted_contact() -> None:
    created = rules.field_changes(None, _whole(), contact_id="c1")
    deleted = rules.field_changes(_whole(), None)
    assert [c.field for c in created] == ["name", "custom_fields.plan", "custom_fields.n", "methods"]
    assert {c.contact_id for c in created} == {"c1"}
    assert [(c.field, c.new) for c in deleted] == [(c.field, None) for c in created]
    assert rules.field_changes(_whole(), _whole()) == []


def test_new_ids_are_distinct_random_uuids_spelled_as_uuid_spells_them() -> None:
    ids = rules.new_ids(2_000)

    assert len(set(ids)) == 2_000
    parsed = [uuid.UUID(new) for new in ids]
    assert all((u.version, u.variant, str(u)) == (4, uuid.RFC_4122, new) for u, new in zip(parsed, ids, strict=True))
    assert {new[19] for new in ids} == set("89ab")  # every variant digit occurs: its bits come from the randomness
    assert rules.new_ids(0) == []
