"""Contract tests of `ProtocolClient` against the Protocol fake over real HTTP on 127.0.0.1."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import parse_qs

import anyio
import httpx2
import pytest

from contact_mcp import load_settings
from contact_mcp.errors import (
    ConfigError,
    Conflict,
    ContactError,
    InvalidArgument,
    NotFound,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    Unauthorized,
)
from contact_mcp.models import CreateContactInput, FindContactsInput
from contact_mcp.providers import build_provider
from contact_mcp.providers.http import HttpOptions
from contact_mcp.providers.protocol import ProtocolClient
from contact_mcp.tools.plan import make_plan
from tests.fakes.harness import Fault, RecordedRequest, free_port
from tests.fakes.protocol import API_KEY, ProtocolFake

pytestmark = pytest.mark.anyio

PROVIDER = "protocol"

KEY = API_KEY
CONFLICT_BODY = {"error": {"code": "conflict", "message": "A contact with this username already exists."}}
SMALL = HttpOptions(connect_timeout_s=2.0, read_timeout_s=0.5, max_response_bytes=64_000)


@pytest.fixture
async def protocol(fake: ProtocolFake, base_url: str) -> AsyncIterator[ProtocolClient]:
    client = ProtocolClient(base_url=base_url, api_key=KEY, options=SMALL)
    yield client
    await client.aclose()


def new(username: str = "alice", phone: str = "+14155550123", **optional: str) -> CreateContactInput:
    return CreateContactInput(
        username=username,
        phone_number=phone,
        display_name=optional.get("display_name"),
        avatar_url=optional.get("avatar_url"),
    )


def sent(fake: ProtocolFake, method: str) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method == method]


async def create_error(protocol: ProtocolClient, call: CreateContactInput | None = None) -> ContactError:
    with pytest.raises(ContactError) as caught:
        await protocol.create_contact(call or new())
    return caught.value


# ---------- the request sent ----------


async def test_create_posts_required_fields_with_bearer_auth(fake: ProtocolFake, protocol: ProtocolClient) -> None:
    await protocol.create_contact(new())

    [request] = fake.requests
    assert (request.method, request.path, request.query) == ("POST", "/v1/contacts", "")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"username": "alice", "phone_number": "+14155550123"}


async def test_create_sends_optional_fields_only_when_given(fake: ProtocolFake, protocol: ProtocolClient) -> None:
    await protocol.create_contact(new(display_name="Alice A.", avatar_url="https://img.example/a.png"))

    assert fake.requests[0].json() == {
        "username": "alice",
        "phone_number": "+14155550123",
        "display_name": "Alice A.",
        "avatar_url": "https://img.example/a.png",
    }


# ---------- mapping the answer ----------


async def test_created_contact_is_canonical_with_display_name_defaulting_to_username(
    fake: ProtocolFake, protocol: ProtocolClient
) -> None:
    result = await protocol.create_contact(new())

    stored = fake.by_username("alice")
    assert stored is not None
    assert re.fullmatch(r"[A-Za-z0-9]{16}", str(result.id))
    expected_at = datetime.fromtimestamp(stored["created_at"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert result.structured() == {
        "provider": "protocol",
        "id": stored["id"],
        "username": "alice",
        "phone_number": "+14155550123",
        "display_name": "alice",
        "created_at": expected_at,
    }


async def test_created_contact_carries_given_display_name_and_avatar(protocol: ProtocolClient) -> None:
    result = await protocol.create_contact(new(display_name="Alice A.", avatar_url="https://img.example/a.png"))

    assert (result.display_name, result.avatar_url) == ("Alice A.", "https://img.example/a.png")


async def test_create_accepts_200_as_well_as_201(fake: ProtocolFake, protocol: ProtocolClient) -> None:
    contact = {"id": "AbCdEfGh12345678", "username": "alice", "phone_number": "+14155550123", "created_at": 0}
    fake.push(Fault("status", status=200, body=contact))

    result = await protocol.create_contact(new())

    assert (result.id, result.display_name, result.created_at) == ("AbCdEfGh12345678", "alice", "1970-01-01T00:00:00Z")


@pytest.mark.parametrize(
    "created_at",
    [None, "2026-05-13", True, 1e20],
    ids=["null", "string", "bool", "out-of-range"],
)
async def test_unusable_created_at_is_left_out(
    fake: ProtocolFake, protocol: ProtocolClient, created_at: object
) -> None:
    contact = {"id": "AbCdEfGh12345678", "username": "alice", "phone_number": "+14155550123", "created_at": created_at}
    fake.push(Fault("status", status=201, body=contact))

    result = await protocol.create_contact(new())

    assert result.created_at is None
    assert "created_at" not in result.structured()


async def test_answer_without_id_is_a_provider_error_naming_the_read(
    fake: ProtocolFake, protocol: ProtocolClient
) -> None:
    fake.push(Fault("status", status=201, body={"username": "alice"}))

    error = await create_error(protocol)

    assert isinstance(error, ProviderError)
    assert error.retryable is False
    assert error.hint is not None
    assert "GET /v1/contacts?username=alice" in error.hint


# ---------- documented errors ----------


async def test_wrong_key_is_unauthorized_with_protocols_message(base_url: str, fake: ProtocolFake) -> None:
    client = ProtocolClient(base_url=base_url, api_key="pk_wrong", options=SMALL)
    try:
        error = await create_error(client)
    finally:
        await client.aclose()

    assert isinstance(error, Unauthorized)
    assert (error.status, error.message, error.retryable) == (401, "Invalid or missing API key.", False)
    assert error.hint is not None
    assert "PROTOCOL_API_KEY" in error.hint
    assert fake.contacts == {}


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("phone_number is required.", "phone_number"),
        ("username is required.", "username"),
        ("avatar_url must be a string.", "avatar_url"),
        ("Request body must be a JSON object.", None),
    ],
    ids=["phone_number", "username", "avatar_url", "no-field-named"],
)
async def test_invalid_request_is_invalid_argument_naming_the_field(
    fake: ProtocolFake, protocol: ProtocolClient, message: str, field: str | None
) -> None:
    fake.push(Fault("status", status=400, body={"error": {"code": "invalid_request", "message": message}}))

    error = await create_error(protocol)

    assert isinstance(error, InvalidArgument)
    assert (error.status, error.message, error.field) == (400, message, field)


async def test_unknown_path_is_not_found_pointing_at_the_base_url(fake: ProtocolFake, protocol: ProtocolClient) -> None:
    fake.push(Fault("status", status=404, body={"error": {"code": "not_found", "message": "Not found."}}))

    error = await create_error(protocol)

    assert isinstance(error, NotFound)
    assert error.hint is not None
    assert "PROTOCOL_BASE_URL" in error.hint


async def test_duplicate_username_is_a_conflict_carrying_the_existing_id(
    fake: ProtocolFake, protocol: ProtocolClient
) -> None:
    existing = fake.seed("alice")

    error = await create_error(protocol)

    assert isinstance(error, Conflict)
    assert (error.status, error.message, error.field) == (
        409,
        "A contact with this username already exists.",
        "username",
    )
    assert error.existing_id == existing["id"]
    assert error.info().existing_id == existing["id"]
    assert error.hint is not None
    assert existing["id"] in error.hint
    assert len(sent(fake, "POST")) == 1
    [lookup] = sent(fake, "GET")
    assert (lookup.path, parse_qs(lookup.query)) == ("/v1/contacts", {"username": ["alice"]})
    assert lookup.headers["authorization"] == f"Bearer {KEY}"


async def test_conflict_lookup_reads_a_single_object_answer(fake: ProtocolFake, protocol: ProtocolClient) -> None:
    fake.lookup_style = "object"
    existing = fake.seed("alice")

    error = await create_error(protocol)

    assert isinstance(error, Conflict)
    assert error.existing_id == existing["id"]


async def test_conflict_on_a_username_differing_only_in_case_finds_the_existing_contact(
    fake: ProtocolFake, protocol: ProtocolClient
) -> None:
    existing = fake.seed("alice")

    error = await create_error(protocol, new("Alice"))

    assert isinstance(error, Conflict)
    assert error.existing_id == existing["id"]


@pytest.mark.parametrize(
    "lookup",
    [
        [{"id": "AAAAAAAAAAAAAAAA", "username": "alice"}],
        {"contacts": [{"id": "BBBBBBBBBBBBBBBB", "username": "bob"}, {"id": "AAAAAAAAAAAAAAAA", "username": "alice"}]},
        {"data": {"id": "AAAAAAAAAAAAAAAA", "username": "alice"}},
    ],
    ids=["bare-list", "contacts-list", "data-object"],
)
async def test_conflict_lookup_reads_other_envelopes(
    fake: ProtocolFake, protocol: ProtocolClient, lookup: object
) -> None:
    fake.push(Fault("status", status=409, body=CONFLICT_BODY))
    fake.push(Fault("status", status=200, body=lookup))

    error = await create_error(protocol)

    assert isinstance(error, Conflict)
    assert error.existing_id == "AAAAAAAAAAAAAAAA"


@pytest.mark.parametrize(
    "lookup_fault",
    [
        Fault("status", status=500, body={"error": {"code": "internal", "message": "boom"}}, times=3),
        Fault("status", status=200, body={"data": [{"id": "BBBBBBBBBBBBBBBB", "username": "bob"}]}),
        Fault("status", status=404, body={"error": {"code": "not_found", "message": "Contact not found."}}),
        Fault("malformed"),
    ],
    ids=["lookup-fails", "no-matching-username", "lookup-404", "lookup-unreadable"],
)
async def test_conflict_is_reported_without_id_when_the_lookup_cannot_tell(
    fake: ProtocolFake, protocol: ProtocolClient, lookup_fault: Fault
) -> None:
    fake.push(Fault("status", status=409, body=CONFLICT_BODY))
    fake.push(lookup_fault)

    error = await create_error(protocol)

    assert isinstance(error, Conflict)
    assert error.existing_id is None
    assert error.hint is not None
    assert "already exists" in error.hint
    assert len(sent(fake, "POST")) == 1


async def test_conflict_lookup_is_retried_as_a_read(fake: ProtocolFake, protocol: ProtocolClient) -> None:
    existing = fake.seed("alice")
    fake.push(Fault("status", status=409, body=CONFLICT_BODY))
    fake.push(Fault("status", status=503, body={"error": {"code": "unavailable", "message": "try later"}}))

    error = await create_error(protocol)

    assert error.existing_id == existing["id"]
    assert (len(sent(fake, "POST")), len(sent(fake, "GET"))) == (1, 2)


async def test_conflict_lookup_encodes_the_username_as_one_query_value(
    fake: ProtocolFake, protocol: ProtocolClient
) -> None:
    awkward = "a&b=c/../d?e#f g+h%20"
    existing = fake.seed(awkward)

    error = await create_error(protocol, new(awkward))

    assert error.existing_id == existing["id"]
    [lookup] = sent(fake, "GET")
    assert (lookup.path, parse_qs(lookup.query)) == ("/v1/contacts", {"username": [awkward]})


# ---------- faults: a create is never replayed ----------


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(500, ProviderError), (502, ProviderUnavailable), (503, ProviderUnavailable), (504, ProviderUnavailable)],
    ids=["500", "502", "503", "504"],
)
async def test_server_error_on_create_is_sent_once_and_names_the_read(
    fake: ProtocolFake, protocol: ProtocolClient, status: int, error_type: type[ContactError]
) -> None:
    fake.push(Fault("status", status=status, body={"error": {"code": "internal", "message": "upstream"}}, times=5))

    error = await create_error(protocol)

    assert isinstance(error, error_type)
    assert (error.status, error.message, error.retryable) == (status, "upstream", False)
    assert error.hint is not None
    assert "GET /v1/contacts?username=alice" in error.hint
    assert len(fake.requests) == 1


async def test_server_error_without_envelope_still_reports_an_unknown_outcome(
    fake: ProtocolFake, protocol: ProtocolClient
) -> None:
    fake.push(Fault("status", status=507, body=None))

    error = await create_error(protocol)

    assert isinstance(error, ProviderError)
    assert (error.status, error.retryable) == (507, False)
    assert "Protocol answered HTTP 507" in error.message
    assert len(fake.requests) == 1


async def test_rate_limited_create_is_not_replayed_and_reports_retry_after(
    fake: ProtocolFake, protocol: ProtocolClient
) -> None:
    limited = {"error": {"code": "rate_limited", "message": "Too many requests."}}
    fake.push(Fault("status", status=429, body=limited, headers={"Retry-After": "1"}, times=5))

    error = await create_error(protocol)

    assert isinstance(error, RateLimited)
    assert (error.retry_after_s, error.retryable, error.message) == (1.0, True, "Too many requests.")
    assert len(fake.requests) == 1


async def test_timed_out_create_is_sent_once_and_its_named_read_finds_the_contact(
    fake: ProtocolFake, protocol: ProtocolClient, base_url: str
) -> None:
    fake.push(Fault("slow", delay=1.0))

    error = await create_error(protocol)

    assert isinstance(error, ProviderTimeout)
    assert error.retryable is False
    assert error.hint is not None
    read = re.search(r"GET (/v1/contacts\?username=\S+)\)", error.hint)
    assert read is not None
    assert len(fake.requests) == 1
    # The slow answer still lands: this is why the create must not be replayed blindly.
    async with httpx2.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {KEY}"}) as http:
        with anyio.fail_after(5):
            # The fake runs in another thread: polling is simpler than a cross-thread event.
            while fake.by_username("alice") is None:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        found = (await http.get(read.group(1))).json()
    assert [c["username"] for c in found["data"]] == ["alice"]


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        (Fault("truncate"), ProviderUnavailable),
        (Fault("malformed"), ProviderError),
        (Fault("wrong_type"), ProviderError),
        (Fault("oversize", size=200_000), ProviderError),
    ],
    ids=["dropped-connection", "malformed-json", "wrong-content-type", "oversized-body"],
)
async def test_unreadable_answer_to_create_is_sent_once_and_names_the_read(
    fake: ProtocolFake, protocol: ProtocolClient, fault: Fault, error_type: type[ContactError]
) -> None:
    fake.push(fault)

    error = await create_error(protocol)

    assert type(error) is error_type
    assert error.retryable is False
    assert error.hint is not None
    assert "GET /v1/contacts?username=alice" in error.hint
    assert len(fake.requests) == 1


async def test_create_that_never_left_is_reported_retryable() -> None:
    client = ProtocolClient(base_url=f"http://127.0.0.1:{free_port()}", api_key=KEY, options=SMALL)
    try:
        error = await create_error(client)
    finally:
        await client.aclose()

    assert isinstance(error, ProviderUnavailable)
    assert error.retryable is True
    assert error.hint == "The request was not sent; retry later"


# ---------- probe and the retry policy of reads ----------


async def test_probe_is_an_authenticated_username_lookup(fake: ProtocolFake, protocol: ProtocolClient) -> None:
    verdict = await protocol.probe()

    assert verdict.startswith("Protocol at ")
    assert "accepted" in verdict
    [request] = fake.requests
    assert (request.method, request.path) == ("GET", "/v1/contacts")
    assert list(parse_qs(request.query)) == ["username"]
    assert request.headers["authorization"] == f"Bearer {KEY}"


async def test_probe_accepts_not_found_for_the_unknown_username(fake: ProtocolFake, protocol: ProtocolClient) -> None:
    fake.lookup_style = "object"

    assert "accepted" in await protocol.probe()


async def test_probe_with_a_refused_key_raises_unauthorized(base_url: str) -> None:
    client = ProtocolClient(base_url=base_url, api_key="pk_wrong", options=SMALL)
    try:
        with pytest.raises(Unauthorized):
            await client.probe()
    finally:
        await client.aclose()


async def test_read_retries_are_bounded_by_retry_attempts(fake: ProtocolFake, protocol: ProtocolClient) -> None:
    fake.push(Fault("status", status=503, body={"error": {"code": "unavailable", "message": "down"}}, times=10))

    with pytest.raises(ProviderUnavailable) as caught:
        await protocol.probe()

    assert caught.value.retryable is True
    assert len(fake.requests) == SMALL.retry_attempts


async def test_read_is_not_retried_when_retry_after_exceeds_the_deadline(
    fake: ProtocolFake, protocol: ProtocolClient
) -> None:
    limited = {"error": {"code": "rate_limited", "message": "Too many requests."}}
    fake.push(Fault("status", status=429, body=limited, headers={"Retry-After": "120"}, times=5))

    with pytest.raises(RateLimited) as caught:
        await protocol.probe()

    assert caught.value.retry_after_s == 120.0
    assert len(fake.requests) == 1


async def test_read_waits_retry_after_before_replaying(
    fake: ProtocolFake, protocol: ProtocolClient, retry_waits: list[float]
) -> None:
    limited = {"error": {"code": "rate_limited", "message": "Too many requests."}}
    fake.push(Fault("status", status=429, body=limited, headers={"Retry-After": "1"}))
    await protocol.probe()
    assert len(fake.requests) == 2
    assert retry_waits == [1.0]


# ---------- secrets ----------


async def test_key_never_appears_in_results_errors_or_logs(
    fake: ProtocolFake, protocol: ProtocolClient, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = [(await protocol.create_contact(new())).model_dump_json()]
    fake.push(Fault("status", status=500, body={"error": {"code": "internal", "message": "boom"}}))
    for call in (new("bob"), new("alice")):
        error = await create_error(protocol, call)
        seen += [str(error), error.info().model_dump_json()]
    seen.append(await protocol.probe())
    wrong = ProtocolClient(base_url=base_url, api_key=KEY + "x", options=SMALL)
    try:
        refused = await create_error(wrong)
    finally:
        await wrong.aclose()
    seen += [str(refused), refused.info().model_dump_json(), caplog.text]

    assert caplog.records
    assert [text for text in seen if KEY in text] == []


# ---------- settings and registry ----------


def test_from_settings_uses_the_configured_host_key_and_limits(base_url: str) -> None:
    settings = load_settings(
        providers="protocol", protocol_api_key=KEY, protocol_base_url=base_url + "/", read_timeout_s=7.0
    )

    client = build_provider("protocol", settings)

    assert isinstance(client, ProtocolClient)
    assert client.base_url == base_url
    assert client.options.read_timeout_s == 7.0
    assert client.client.headers["authorization"] == f"Bearer {KEY}"


def test_enabling_protocol_without_a_base_url_names_the_variable() -> None:
    settings = load_settings(providers="protocol", protocol_api_key=KEY)

    with pytest.raises(ConfigError, match="PROTOCOL_BASE_URL"):
        make_plan(settings)


def test_protocol_serves_create_contact_and_the_reads(base_url: str) -> None:
    settings = load_settings(providers="protocol", protocol_api_key=KEY, protocol_base_url=base_url)

    assert {route.spec.name: route.providers for route in make_plan(settings).routes} == {
        "create_contact": ("protocol",),
        "delete_contact": ("protocol",),
        "get_contact": ("protocol",),
        "find_contacts": ("protocol",),
    }


# ---------- the fake itself, as the docs describe Protocol ----------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"phone_number": "+14155550123"}, "username is required."),
        ({"username": "alice"}, "phone_number is required."),
        ({"username": "alice", "phone_number": "+14155550123", "avatar_url": 3}, "avatar_url must be a string."),
    ],
    ids=["no-username", "no-phone", "bad-avatar"],
)
async def test_fake_rejects_an_invalid_body_with_invalid_request(
    fake: ProtocolFake, base_url: str, body: dict[str, object], message: str
) -> None:
    async with httpx2.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {KEY}"}) as http:
        response = await http.post("/v1/contacts", json=body)

    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid_request", "message": message}}


async def test_fake_reads_gets_and_deletes_contacts_by_id(fake: ProtocolFake, base_url: str) -> None:
    contact = fake.seed("alice")
    async with httpx2.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {KEY}"}) as http:
        got = await http.get(f"/v1/contacts/{contact['id']}")
        deleted = await http.delete(f"/v1/contacts/{contact['id']}")
        gone = await http.get(f"/v1/contacts/{contact['id']}")
        anonymous = await http.get(f"/v1/contacts/{contact['id']}", headers={"Authorization": ""})

    assert (got.status_code, got.json()) == (200, contact)
    assert deleted.status_code == 204
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "not_found")
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthorized")


# ---------- reads ----------


async def test_get_contact_maps_protocols_contact(protocol: ProtocolClient, fake: ProtocolFake) -> None:
    seeded = fake.seed("lin", "+14155550123", display_name="Lin", avatar_url="https://example.com/a.png")
    contact = await protocol.get_contact(seeded["id"])
    assert (contact.id, contact.username, contact.display_name, contact.profile_picture) == (
        seeded["id"],
        "lin",
        "Lin",
        "https://example.com/a.png",
    )
    assert [(m.type, m.value) for m in contact.methods] == [("phone", "+14155550123")]
    assert contact.created_at is not None and contact.created_at.endswith("Z")


async def test_find_by_username_or_nothing(protocol: ProtocolClient, fake: ProtocolFake) -> None:
    seeded = fake.seed("lin")
    page = await protocol.find_contacts(FindContactsInput(username="lin"))
    assert [(c.id, c.username) for c in page.contacts] == [(seeded["id"], "lin")]
    assert (await protocol.find_contacts(FindContactsInput(username="nobody"))).contacts == []
    fake.lookup_style = "object"
    assert (await protocol.find_contacts(FindContactsInput(username="nobody"))).contacts == []
    with pytest.raises(ContactError) as info:
        await protocol.find_contacts(FindContactsInput())
    assert (info.value.info().code.value, info.value.field) == ("invalid_argument", "username")
