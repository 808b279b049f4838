"""delete_contact on every provider whose API documents deleting a contact (Feather, Blooio, Featurebase,
Protocol), and Blooio's detach_identity, against each fake on 127.0.0.1: the contact is gone from the fake, an
unknown id is not_found saying how to find one, a malformed id sends nothing, a transient outage is retried (DELETE
is idempotent); through a real MCP client with all of them enabled at once, delete_contact takes `provider`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from contact_mcp import build_server, load_settings
from contact_mcp.errors import ErrorCode
from contact_mcp.models import DeleteContactInput, DetachIdentityInput, Operation
from contact_mcp.providers.blooio import BlooioClient
from contact_mcp.providers.http import HttpProvider
from tests.fakes import blooio
from tests.fakes.harness import Fault
from tests.providers.cases import CASES, ProviderCase, failure, push, requests
from tests.results import error_of

pytestmark = pytest.mark.anyio

DELETING = [case for case in CASES.values() if Operation.DELETE_CONTACT in case.client_class.operations]


def test_the_providers_that_document_a_delete_serve_delete_contact() -> None:
    assert [case.name for case in DELETING] == ["feather", "blooio", "featurebase", "protocol"]
    assert Operation.DETACH_IDENTITY in BlooioClient.operations
    assert all(Operation.DETACH_CONTACT not in case.client_class.operations for case in CASES.values())


@pytest.mark.parametrize("case", DELETING, ids=[case.name for case in DELETING])
async def test_delete_contact_removes_the_contact_from_the_provider(
    case: ProviderCase, fake: Any, client: HttpProvider
) -> None:
    seeded = case.seed(fake, 1)
    kept = case.seed(fake, 2)

    deleted = await client.delete_contact(DeleteContactInput(contact_id=seeded.id))

    assert (deleted.provider, deleted.id) == (case.name, seeded.id)
    assert [r.method for r in requests(fake)] == ["DELETE"]
    assert (await failure(client.get_contact(seeded.id))).info().code == ErrorCode.NOT_FOUND
    assert (await client.get_contact(kept.id)).id == kept.id


@pytest.mark.parametrize("case", DELETING, ids=[case.name for case in DELETING])
async def test_deleting_an_unknown_contact_is_not_found_saying_how_to_find_the_id(
    case: ProviderCase, fake: Any, client: HttpProvider
) -> None:
    info = (await failure(client.delete_contact(DeleteContactInput(contact_id=case.missing_id)))).info()
    assert (info.code, info.field, info.provider, info.status) == (ErrorCode.NOT_FOUND, "contact_id", case.name, 404)
    assert info.hint and "find_contacts" in info.hint


@pytest.mark.parametrize("case", DELETING, ids=[case.name for case in DELETING])
async def test_a_malformed_id_is_refused_before_any_request(
    case: ProviderCase, fake: Any, client: HttpProvider
) -> None:
    info = (await failure(client.delete_contact(DeleteContactInput(contact_id=case.bad_id)))).info()
    assert (info.code, info.field, info.provider) == (ErrorCode.INVALID_ARGUMENT, "contact_id", case.name)
    assert requests(fake) == []


@pytest.mark.parametrize("case", DELETING, ids=[case.name for case in DELETING])
async def test_a_delete_is_replayed_through_a_transient_outage(
    case: ProviderCase, fake: Any, client: HttpProvider
) -> None:
    seeded = case.seed(fake, 1)
    push(fake, Fault("status", status=503, body={}, times=2))

    deleted = await client.delete_contact(DeleteContactInput(contact_id=seeded.id))

    assert deleted.id == seeded.id
    assert [r.method for r in requests(fake)] == ["DELETE"] * 3


# ---------- Blooio's detach_identity ----------

PROVIDER_BLOOIO = CASES["blooio"]


def _detach(contact_id: str, identifier: str, channel_type: str | None = None) -> DetachIdentityInput:
    return DetachIdentityInput(contact_id=contact_id, identifier=identifier, channel_type=channel_type, channel_id=None)


@pytest.mark.parametrize("case", [PROVIDER_BLOOIO], ids=["blooio"])
async def test_blooio_detach_finds_the_identity_ids_then_detaches_each(
    case: ProviderCase, fake: blooio.BlooioFake, client: BlooioClient
) -> None:
    contact_id = fake.seed_contact(
        "Sam",
        (("+14155550123", "whatsapp", None), ("+14155550123", "twilio", None), ("sam@example.com", "blooio", None)),
    )
    ids = {i.channel_type: i.id for i in fake.identities(contact_id)}

    only = await client.detach_identity(_detach(contact_id, "+14155550123", "whatsapp"))
    assert (only.provider, only.ids) == ("blooio", [ids["whatsapp"]])
    assert [(r.method, r.path.removeprefix("/v4")) for r in requests(fake)] == [
        ("GET", f"/contacts/{contact_id}/identities"),
        ("DELETE", f"/contacts/{contact_id}/identities/{ids['whatsapp']}"),
    ]

    every = await client.detach_identity(_detach(contact_id, "SAM@example.com".lower()))
    assert every.ids == [ids["blooio"]]
    assert [i.channel_type for i in fake.identities(contact_id)] == ["twilio"]


@pytest.mark.parametrize("case", [PROVIDER_BLOOIO], ids=["blooio"])
async def test_blooio_detach_of_an_identity_the_contact_lacks_is_not_found_listing_its_identities(
    case: ProviderCase, fake: blooio.BlooioFake, client: BlooioClient
) -> None:
    contact_id = fake.seed_contact("Sam", (("sam@example.com", "blooio", None),))

    info = (await failure(client.detach_identity(_detach(contact_id, "+14155550123")))).info()
    assert (info.code, info.field, info.provider) == (ErrorCode.NOT_FOUND, "identifier", "blooio")
    assert info.hint and "sam@example.com" in info.hint
    assert [r.method for r in requests(fake)] == ["GET"]
    info = (await failure(client.detach_identity(_detach(case.missing_id, "sam@example.com")))).info()
    assert (info.code, info.field) == (ErrorCode.NOT_FOUND, "contact_id")


# ---------- through a real MCP client, every deleting provider enabled at once ----------


@pytest.fixture
async def everyone(fakes: Any, db_path: Path) -> AsyncIterator[tuple[Client, dict[str, Any]]]:
    settings: dict[str, Any] = {"db": str(db_path), "read_timeout_s": 2.0}
    served: dict[str, Any] = {}
    for case in DELETING:
        fake, url = fakes.get(case.name)
        fake.reset()
        served[case.name] = fake
        settings.update({k: v for k, v in case.settings(url, str(db_path)).items() if k not in ("providers", "db")})
    settings["providers"] = ",".join(["local", *served])
    async with Client(build_server(load_settings(**settings))) as client:
        yield client, served


async def test_delete_contact_takes_the_provider_to_delete_from(everyone: tuple[Client, dict[str, Any]]) -> None:
    client, fakes = everyone
    tool = {t.name: t for t in (await client.list_tools()).tools}["delete_contact"]
    assert tool.input_schema["properties"]["provider"]["enum"] == ["local", *fakes]
    assert "provider" in tool.input_schema["required"]
    assert (tool.description or "").endswith("Provider: local, Feather, Blooio, Featurebase, Protocol.")

    seeded = CASES["featurebase"].seed(fakes["featurebase"], 1)
    arguments = {"contact_id": seeded.id, "provider": "featurebase", "confirm": True}
    result = await client.call_tool("delete_contact", arguments)
    assert result.structured_content == {"provider": "featurebase", "id": seeded.id}
    # Confirmed by a client that cannot be asked: the delete alone (no read to describe it to nobody).
    assert [r.method for r in fakes["featurebase"].requests] == ["DELETE"]
    assert all(not fake.requests for name, fake in fakes.items() if name != "featurebase")

    error = error_of(await client.call_tool("delete_contact", {"contact_id": seeded.id}))
    assert (error["code"], error["field"]) == ("invalid_argument", "provider")
    assert len(fakes["featurebase"].requests) == 1  # nothing more was sent


# ---------- dry runs: the documented read, never the delete ----------


@pytest.mark.parametrize("case", DELETING, ids=[case.name for case in DELETING])
async def test_a_dry_run_delete_reads_the_contact_and_deletes_nothing(
    case: ProviderCase, fake: Any, client: HttpProvider
) -> None:
    seeded = case.seed(fake, 1)

    preview = await client.delete_contact(DeleteContactInput(contact_id=seeded.id, dry_run=True))

    assert (preview.id, preview.dry_run) == (seeded.id, True)
    assert {r.method for r in requests(fake)} == {"GET"}
    contact = await client.get_contact(seeded.id)
    # What the read shows would go, old to nothing; what else the provider keeps about the contact, no read tells.
    assert preview.changes and preview.changes == contact.removed()
    assert all(change.new is None for change in preview.changes)
    assert preview.note is not None and "may also erase" in preview.note
    missing = DeleteContactInput(contact_id=case.missing_id, dry_run=True)
    assert (await failure(client.delete_contact(missing))).info().code == ErrorCode.NOT_FOUND


@pytest.mark.parametrize("case", [PROVIDER_BLOOIO], ids=["blooio"])
async def test_a_blooio_dry_run_detach_lists_and_detaches_nothing(
    case: ProviderCase, fake: blooio.BlooioFake, client: BlooioClient
) -> None:
    contact_id = fake.seed_contact("Sam", (("sam@example.com", "blooio", None),))
    (identity,) = fake.identities(contact_id)

    call = DetachIdentityInput(
        contact_id=contact_id, identifier="sam@example.com", channel_type=None, channel_id=None, dry_run=True
    )
    preview = await client.detach_identity(call)

    assert (preview.ids, preview.dry_run) == ([identity.id], True)
    assert [r.method for r in requests(fake)] == ["GET"]
    assert fake.identities(contact_id) == [identity]
