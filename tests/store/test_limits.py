"""What one contact may hold, on every backend: custom fields accumulate across upserts, so the store checks the
merged result (and roles) against `contact_mcp.limits`, answering `invalid_argument` naming the limit and writing
nothing. The tools check each call's arguments too; these tests go around them to the store itself, as an import
or any other caller would."""

from __future__ import annotations

import pytest

from contact_mcp.errors import InvalidArgument
from contact_mcp.limits import (
    MAX_CUSTOM_FIELD_KEYS,
    MAX_CUSTOM_KEY_LENGTH,
    MAX_CUSTOM_VALUE_LENGTH,
    MAX_ROLE_LENGTH,
    MAX_ROLES,
)
from contact_mcp.models import CustomValue, UpsertContactInput
from contact_mcp.store import LocalStore
from tests.store.calls import counts

pytestmark = pytest.mark.anyio

EMAIL = "ann@example.com"


def upsert(
    custom_fields: dict[str, CustomValue] | None = None, roles: tuple[str, ...] | None = None, name: str | None = None
) -> UpsertContactInput:
    return UpsertContactInput(email=EMAIL, user_id=None, custom_fields=custom_fields, roles=roles, name=name)


def keys(start: int, count: int) -> dict[str, CustomValue]:
    return {f"k{i}": i for i in range(start, start + count)}


async def test_custom_fields_merged_past_the_key_limit_are_refused_and_nothing_is_written(store: LocalStore) -> None:
    half = MAX_CUSTOM_FIELD_KEYS // 2 + 1
    created = await store.upsert_contact(upsert(keys(0, half)))

    with pytest.raises(InvalidArgument) as caught:
        await store.upsert_contact(upsert(keys(half, half), name="Changed"))

    error = caught.value.info()
    assert error.field == "custom_fields"
    assert str(MAX_CUSTOM_FIELD_KEYS) in error.message
    contact = await store.get_contact(str(created.id))
    assert contact.custom_fields == keys(0, half)
    assert contact.name is None


async def test_custom_fields_up_to_the_limit_after_merging_are_kept(store: LocalStore) -> None:
    half = MAX_CUSTOM_FIELD_KEYS // 2
    created = await store.upsert_contact(upsert(keys(0, half)))

    updated = await store.upsert_contact(upsert(keys(half, MAX_CUSTOM_FIELD_KEYS - half)))

    assert updated.outcome == "updated"
    assert len((await store.get_contact(str(created.id))).custom_fields) == MAX_CUSTOM_FIELD_KEYS


async def test_rewriting_existing_keys_at_the_limit_is_allowed(store: LocalStore) -> None:
    created = await store.upsert_contact(upsert(keys(0, MAX_CUSTOM_FIELD_KEYS)))

    updated = await store.upsert_contact(upsert({"k0": "new"}))

    assert updated.outcome == "updated"
    assert (await store.get_contact(str(created.id))).custom_fields["k0"] == "new"


@pytest.mark.parametrize(
    ("call", "field", "limit"),
    [
        (upsert(keys(0, MAX_CUSTOM_FIELD_KEYS + 1)), "custom_fields", MAX_CUSTOM_FIELD_KEYS),
        (upsert({"k" * (MAX_CUSTOM_KEY_LENGTH + 1): 1}), "custom_fields", MAX_CUSTOM_KEY_LENGTH),
        (upsert({"note": "v" * (MAX_CUSTOM_VALUE_LENGTH + 1)}), "custom_fields.note", MAX_CUSTOM_VALUE_LENGTH),
        (upsert(roles=tuple(f"r{i}" for i in range(MAX_ROLES + 1))), "roles", MAX_ROLES),
        (upsert(roles=("r" * (MAX_ROLE_LENGTH + 1),)), "roles", MAX_ROLE_LENGTH),
    ],
    ids=["too-many-keys", "long-key", "long-value", "too-many-roles", "long-role"],
)
@pytest.mark.parametrize("existing", [False, True], ids=["on-create", "on-update"])
async def test_each_limit_is_an_invalid_argument_naming_it(
    store: LocalStore, call: UpsertContactInput, field: str, limit: int, existing: bool
) -> None:
    if existing:
        await store.upsert_contact(upsert())
    before = await counts(store)

    with pytest.raises(InvalidArgument) as caught:
        await store.upsert_contact(call)

    error = caught.value.info()
    assert error.field == field
    assert str(limit) in error.message
    assert await counts(store) == before
