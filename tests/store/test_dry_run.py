"""Dry runs on the store, through a real MCP client session, on every backend (the contract suite).

A dry run of every write tool runs the real operation in its transaction and rolls it back: the tables hold exactly
what they held (read straight from the database), the result says it was a dry run and lists the changes, and those
are the changes the real call then makes. A dry run of a call that would fail fails with the same error. Under
them, the guard: during a dry run a write that ignores it is refused, not committed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from mcp import Client

from contact_mcp import dry_run
from contact_mcp.models import UpsertContactInput
from contact_mcp.store import LocalStore
from contact_mcp.tools.table import TOOLS
from tests.results import error_of, json_text, text
from tests.store.calls import PHONE, PHONE_2, UNKNOWN_UUID, ok
from tests.store.conftest import BACKENDS

pytestmark = pytest.mark.anyio

ADA = "ada@example.com"


@dataclass(frozen=True)
class Seeded:
    ada: str
    """A contact from upsert: email (primary, unverified), user_id, name, a custom field."""
    bob: str
    """A contact from create_contact: username, phone, one identity."""


async def _seed(client: Client) -> Seeded:
    ada = await ok(client, "upsert_contact", email=ADA, user_id="u-ada", name="Ada", custom_fields={"plan": "pro"})
    bob = await ok(client, "create_contact", username="bob", phone_number=PHONE)
    await ok(client, "attach_identity", contact_id=bob["id"], identifier=PHONE, channel_type="blooio")
    return Seeded(ada=ada["id"], bob=bob["id"])


Arguments = Callable[[Seeded], dict[str, Any]]

WRITES: dict[str, tuple[str, Arguments]] = {
    "attach-new-email": (
        "attach_contact",
        lambda s: {"end_user_id": s.ada, "channel": "email", "value": "Ada.Work@Example.com"},
    ),
    "attach-promotes-unverified": (
        "attach_contact",
        lambda s: {"end_user_id": s.ada, "channel": "email", "value": ADA},
    ),
    "attach-identity": (
        "attach_identity",
        lambda s: {"contact_id": s.ada, "identifier": ADA, "channel_type": "whatsapp"},
    ),
    "verify-email": (
        "set_verification",
        lambda s: {"contact_id": s.ada, "type": "email", "value": ADA, "verified": True, "verification_source": "x"},
    ),
    "upsert-update": (
        "upsert_contact",
        lambda s: {"user_id": "u-ada", "name": "Ada L.", "phone": PHONE_2, "custom_fields": {"plan": "team", "n": 1}},
    ),
    "upsert-create": (
        "upsert_contact",
        lambda s: {"email": "cy@example.com", "roles": ["admin"], "companies": [{"id": "c1", "name": "Acme"}]},
    ),
    "create": (
        "create_contact",
        lambda s: {"username": "dee", "phone_number": PHONE, "display_name": "Dee"},
    ),
    "delete": ("delete_contact", lambda s: {"contact_id": s.bob, "confirm": True}),
    "detach-identity": ("detach_identity", lambda s: {"contact_id": s.bob, "identifier": PHONE}),
    "detach-contact": ("detach_contact", lambda s: {"contact_id": s.ada, "channel": "email", "value": ADA}),
    "merge": ("merge_contacts", lambda s: {"survivor_id": s.ada, "duplicate_ids": [s.bob], "confirm": True}),
}


def test_every_write_tool_has_a_dry_run_case() -> None:
    writers = {spec.name for spec in TOOLS if not spec.read_only}
    assert {tool for tool, _ in WRITES.values()} == writers
    assert {tool for tool, _ in FAILING.values()} == writers


# What differs between two runs of one change: new records' ids and the instants they were made at.
_VOLATILE = frozenset({"id", "verified_at"})


def _comparable(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k not in _VOLATILE}  # pyright: ignore[reportUnknownVariableType]
        return value

    return [{key: plain(value) for key, value in change.items()} for change in changes]


@pytest.mark.parametrize("case", list(WRITES))
async def test_a_dry_run_writes_nothing_and_reports_the_changes_the_real_call_makes(
    client: Client, store_backend: str, empty_store: str, case: str
) -> None:
    tool, arguments = WRITES[case]
    seeded = await _seed(client)
    tables = BACKENDS[store_backend].dump(empty_store)

    dry = await client.call_tool(tool, {**arguments(seeded), "dry_run": True})

    assert BACKENDS[store_backend].dump(empty_store) == tables
    planned = json_text(dry)
    assert planned["dry_run"] is True
    assert text(dry).startswith("Dry run")
    assert planned["changes"], planned
    real = await client.call_tool(tool, arguments(seeded))
    done = json_text(real)
    assert "dry_run" not in done
    assert not text(real).startswith("Dry run")
    assert _comparable(done["changes"]) == _comparable(planned["changes"])
    assert BACKENDS[store_backend].dump(empty_store) != tables


async def test_a_dry_run_upsert_reports_each_field_old_to_new(client: Client) -> None:
    seeded = await _seed(client)

    planned = await ok(
        client, "upsert_contact", user_id="u-ada", name="Ada L.", custom_fields={"plan": "team"}, dry_run=True
    )

    assert planned["outcome"] == "updated"
    assert planned["id"] == seeded.ada
    assert planned["changes"] == [
        {"field": "name", "old": "Ada", "new": "Ada L."},
        {"field": "custom_fields.plan", "old": "pro", "new": "team"},
    ]
    assert (await ok(client, "get_contact", contact_id=seeded.ada))["name"] == "Ada"


async def test_a_dry_run_verification_shows_the_method_before_and_after(client: Client) -> None:
    seeded = await _seed(client)

    planned = await ok(client, "set_verification", contact_id=seeded.ada, type="email", value=ADA, verified=True)
    cleared = await ok(
        client, "set_verification", contact_id=seeded.ada, type="email", value=ADA, verified=False, dry_run=True
    )

    assert planned["changes"][0]["new"]["verified"] is True
    (change,) = cleared["changes"]
    assert change["field"] == "methods"
    assert change["old"]["verified"] is True and change["old"]["verification_method"] == "manual"
    assert change["new"] == {"id": change["old"]["id"], "channel": "email", "type": "email", "value": ADA,
                             "primary": True, "verified": False}  # fmt: skip
    assert (await ok(client, "get_contact", contact_id=seeded.ada))["methods"][0]["verified"] is True


async def test_a_write_that_changes_nothing_reports_no_changes(client: Client) -> None:
    seeded = await _seed(client)

    again = await ok(client, "attach_identity", contact_id=seeded.bob, identifier=PHONE, channel_type="blooio")
    same = await ok(client, "upsert_contact", email=ADA, name="Ada", dry_run=True)

    assert again["created"] is False and again["changes"] == []
    assert same["outcome"] == "unchanged" and same["changes"] == []


FAILING: dict[str, tuple[str, Arguments]] = {
    "attach-unknown-end-user": (
        "attach_contact",
        lambda s: {"end_user_id": UNKNOWN_UUID, "channel": "email", "value": ADA},
    ),
    "identity-of-another-contact": (
        "attach_identity",
        lambda s: {"contact_id": s.ada, "identifier": PHONE, "channel_type": "blooio"},
    ),
    "verify-a-value-not-held": (
        "set_verification",
        lambda s: {"contact_id": s.ada, "type": "phone", "value": PHONE, "verified": True},
    ),
    "upsert-two-people": (
        "upsert_contact",
        lambda s: {"user_id": "u-bob", "email": ADA},
    ),
    "upsert-over-the-custom-field-limit": (
        "upsert_contact",
        lambda s: {"email": ADA, "custom_fields": {f"k{i}": i for i in range(100)}},
    ),
    "username-taken": (
        "create_contact",
        lambda s: {"username": "BOB", "phone_number": PHONE_2},
    ),
    "delete-unknown": ("delete_contact", lambda s: {"contact_id": UNKNOWN_UUID, "confirm": True}),
    "detach-identity-not-held": ("detach_identity", lambda s: {"contact_id": s.ada, "identifier": PHONE}),
    "detach-contact-not-held": ("detach_contact", lambda s: {"contact_id": s.bob, "channel": "email", "value": ADA}),
    "merge-unknown-duplicate": (
        "merge_contacts",
        lambda s: {"survivor_id": s.ada, "duplicate_ids": [UNKNOWN_UUID], "confirm": True},
    ),
}


@pytest.mark.parametrize("case", list(FAILING))
async def test_a_dry_run_of_a_failing_call_returns_the_real_error(
    client: Client, store_backend: str, empty_store: str, case: str
) -> None:
    tool, arguments = FAILING[case]
    seeded = await _seed(client)
    if case == "upsert-two-people":
        await ok(client, "upsert_contact", user_id="u-bob", email="bob@example.com")
    tables = BACKENDS[store_backend].dump(empty_store)

    dry = error_of(await client.call_tool(tool, {**arguments(seeded), "dry_run": True}))
    # Nothing written, not even the history's record (the real call, which fails, records its error there).
    assert BACKENDS[store_backend].dump(empty_store) == tables
    real = error_of(await client.call_tool(tool, arguments(seeded)))

    if tool in ("delete_contact", "merge_contacts"):
        # The real call's confirmation step reads the contacts first and words its own not_found hint.
        del dry["hint"], real["hint"]
    assert dry == real


async def test_a_store_write_that_ignores_the_dry_run_is_not_committed(store: LocalStore) -> None:
    with dry_run.marked(True), pytest.raises(dry_run.DryRunWrite):
        await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None))
    with dry_run.marked(True):
        planned = await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id=None, dry_run=True))
    assert planned.dry_run is True
    assert [batch async for batch in store.iter_records()] == []
