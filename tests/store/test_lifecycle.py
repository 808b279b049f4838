"""The store's life on every backend: what one opening writes the next one reads, probe, and closing."""

from __future__ import annotations

import pytest

from contact_mcp import Settings
from contact_mcp.errors import InvalidArgument
from contact_mcp.models import FindContactsInput, UpsertContactInput
from contact_mcp.store import LocalStore

pytestmark = pytest.mark.anyio


async def test_reopening_keeps_the_contacts(store_settings: Settings, empty_store: str) -> None:
    first = LocalStore.from_settings(store_settings)
    created = await first.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None))
    await first.aclose()

    second = LocalStore.from_settings(store_settings)
    found = await second.find_contacts(FindContactsInput())
    await second.aclose()

    assert [c.id for c in found.contacts] == [created.id]


async def test_probe_is_one_line_with_the_count(store: LocalStore) -> None:
    await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None))

    verdict = await store.probe()

    assert "1 contact(s)" in verdict
    assert "\n" not in verdict


async def test_aclose_twice_is_harmless(store_settings: Settings, empty_store: str) -> None:
    store = LocalStore.from_settings(store_settings)
    await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None))

    await store.aclose()
    await store.aclose()


async def test_a_live_store_is_ready(store: LocalStore) -> None:
    await store.ready()


async def test_get_contact_with_an_id_that_is_no_uuid_is_an_invalid_argument(store: LocalStore) -> None:
    """The store's ids are UUIDs; the tool no longer checks that for every provider, so the store does."""
    with pytest.raises(InvalidArgument) as caught:
        await store.get_contact("ct_abc123")

    assert caught.value.field == "contact_id"
