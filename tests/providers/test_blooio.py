"""Contract tests of `BlooioClient` against the fake Blooio v4 API over real HTTP on 127.0.0.1: the exact request,
every documented status and both error envelopes, the 409 lookup, faults, the retry policy and secrets."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from typing import Any, cast

import anyio
import httpx2
import pytest

from contact_mcp import providers
from contact_mcp.errors import ConfigError, ContactError, ErrorCode
from contact_mcp.models import AttachedIdentity, AttachIdentityInput, ChannelType, FindContactsInput, Operation
from contact_mcp.providers.blooio import MAX_IDENTITY_PAGES, BlooioClient
from contact_mcp.providers.http import HttpOptions
from contact_mcp.providers.http.wire import encode_cursor, iso_from_epoch_ms
from contact_mcp.settings import load_settings
from tests.fakes.blooio import DEFAULT_KEY, BlooioFake
from tests.fakes.harness import Fault, free_port

pytestmark = pytest.mark.anyio

PROVIDER = "blooio"

KEY = DEFAULT_KEY
PHONE = "+14155550123"
OPTIONS = HttpOptions(connect_timeout_s=1.0, read_timeout_s=0.5, max_response_bytes=64_000, retry_attempts=3)
# Building a TLS context per client costs ~0.15 s (OS trust store); the fake is plain HTTP, so share one.
_TLS = ssl.create_default_context()


def make_client(base_url: str) -> BlooioClient:
    return BlooioClient(
        base_url=base_url, api_key=KEY, options=OPTIONS, transport=httpx2.AsyncHTTPTransport(verify=_TLS)
    )


@pytest.fixture
async def blooio(served: tuple[BlooioFake, str]) -> AsyncIterator[BlooioClient]:
    client = make_client(served[1])
    yield client
    await client.aclose()


def attach(
    contact_id: str, identifier: str = PHONE, channel_type: str | None = "blooio", channel_id: str | None = None
) -> AttachIdentityInput:
    return AttachIdentityInput(contact_id, identifier, cast(ChannelType | None, channel_type), channel_id)


async def refused(client: BlooioClient, call: AttachIdentityInput) -> ContactError:
    with pytest.raises(ContactError) as info:
        await client.attach_identity(call)
    return info.value


def posts(fake: BlooioFake) -> int:
    return sum(r.method == "POST" for r in fake.requests)


# ---------- success and the exact request ----------


async def test_attach_returns_the_created_identity(fake: BlooioFake, blooio: BlooioClient) -> None:
    contact = fake.seed_contact("Ada")
    fake.now_ms = lambda: 1_718_000_000_123
    result = await blooio.attach_identity(attach(contact))
    stored = fake.identities(contact)
    assert len(stored) == 1
    assert result == AttachedIdentity(
        provider="blooio",
        created=True,
        id=stored[0].id,
        contact_id=contact,
        channel_type="blooio",
        identifier=PHONE,
        channel_id=None,
        created_at="2024-06-10T06:13:20.123Z",
    )
    assert result.id is not None and result.id.startswith("cid_")
    assert "channel_id" not in result.structured()


@pytest.mark.parametrize(
    ("identifier", "channel_type", "channel_id", "body"),
    [
        pytest.param(PHONE, None, None, {"identifier": PHONE}, id="identifier-only"),
        pytest.param(
            "ada@example.com",
            "twilio",
            None,
            {"identifier": "ada@example.com", "channel_type": "twilio"},
            id="email-on-twilio",
        ),
        pytest.param(
            PHONE, "amb", "ch_a1b2", {"identifier": PHONE, "channel_type": "amb", "channel_id": "ch_a1b2"}, id="amb"
        ),
    ],
)
async def test_attach_sends_exactly_the_documented_request(
    fake: BlooioFake,
    blooio: BlooioClient,
    identifier: str,
    channel_type: str | None,
    channel_id: str | None,
    body: dict[str, str],
) -> None:
    contact = fake.seed_contact()
    result = await blooio.attach_identity(attach(contact, identifier, channel_type, channel_id))
    [sent] = fake.requests
    assert (sent.method, sent.path, sent.query) == ("POST", f"/v4/contacts/{contact}/identities", "")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["accept"] == "application/json"
    assert sent.json() == body
    assert (result.channel_type, result.channel_id) == (channel_type, channel_id)


async def test_blooio_normalised_identifier_is_reported(fake: BlooioFake, blooio: BlooioClient) -> None:
    contact = fake.seed_contact()
    result = await blooio.attach_identity(attach(contact, "Ada@Example.COM", "whatsapp"))
    assert result.identifier == "ada@example.com"


@pytest.mark.parametrize(
    "contact_id",
    [
        pytest.param("", id="empty"),
        pytest.param("ct_", id="prefix-only"),
        pytest.param("abc123", id="no-prefix"),
        pytest.param("cid_123", id="identity-id"),
        pytest.param("CT_abc", id="upper-prefix"),
        pytest.param("ct_a/b", id="slash"),
        pytest.param("ct_a/../../me", id="traversal"),
        pytest.param("ct_a?limit=1", id="query"),
        pytest.param("ct_a#frag", id="fragment"),
        pytest.param("ct_a b", id="space"),
        pytest.param("ct_a%2Fb", id="pre-encoded"),
        pytest.param("ct_ä", id="non-ascii"),
        pytest.param("ct_" + "a" * 62, id="too-long"),
    ],
)
async def test_invalid_contact_id_is_refused_before_any_request(
    fake: BlooioFake, blooio: BlooioClient, contact_id: str
) -> None:
    error = await refused(blooio, attach(contact_id))
    assert (error.code, error.field, error.status) == (ErrorCode.INVALID_ARGUMENT, "contact_id", None)
    assert error.hint is not None and "ct_" in error.hint
    assert fake.requests == []


@pytest.mark.parametrize(
    "contact_id",
    [
        pytest.param("ct_01HZ0000000000000000000000", id="ulid"),
        pytest.param("ct_018f7b2a-1c3d-7e4f-9a2b-0c1d2e3f4a5b", id="uuid-like"),
    ],
)
async def test_valid_contact_id_shapes_go_into_the_path_verbatim(
    fake: BlooioFake, blooio: BlooioClient, contact_id: str
) -> None:
    error = await refused(blooio, attach(contact_id))
    assert error.code is ErrorCode.NOT_FOUND
    assert [r.path for r in fake.requests] == [f"/v4/contacts/{contact_id}/identities"]


# ---------- documented error statuses and both envelopes ----------


async def test_unknown_contact_is_not_found_on_contact_id(fake: BlooioFake, blooio: BlooioClient) -> None:
    error = await refused(blooio, attach("ct_doesnotexist"))
    info = error.info()
    assert (info.code, info.status, info.field, info.provider) == (ErrorCode.NOT_FOUND, 404, "contact_id", "blooio")
    assert info.message == "Contact not found."
    assert posts(fake) == 1


@pytest.mark.parametrize(
    ("key_blocked", "status", "message"),
    [
        pytest.param(False, 401, "Invalid or missing API key.", id="wrong-key-401"),
        pytest.param(True, 403, "This API key is blocked.", id="blocked-key-403"),
    ],
)
async def test_auth_middleware_refusal_is_unauthorized(
    fake: BlooioFake, blooio: BlooioClient, key_blocked: bool, status: int, message: str
) -> None:
    contact = fake.seed_contact()
    if key_blocked:
        fake.key_blocked = True
    else:
        fake.api_key = "bl_live_someone_else"
    info = (await refused(blooio, attach(contact))).info()
    assert (info.code, info.status, info.message, info.retryable) == (ErrorCode.UNAUTHORIZED, status, message, False)
    assert info.hint is not None and "BLOOIO_API_KEY" in info.hint
    assert len(fake.requests) == 1
    assert fake.identities(contact) == []


@pytest.mark.parametrize(
    ("identifier", "channel_type", "channel_id", "named"),
    [
        pytest.param("12345", "blooio", None, "phone number", id="not-a-phone"),
        pytest.param("ada@", "blooio", None, "email", id="not-an-email"),
        pytest.param(PHONE, "sms", None, "channel_type", id="unknown-channel-type"),
        pytest.param(PHONE, "amb", None, "channel_id", id="amb-without-channel-id"),
    ],
)
async def test_validation_failure_is_invalid_argument_with_blooios_message(
    fake: BlooioFake, blooio: BlooioClient, identifier: str, channel_type: str, channel_id: str | None, named: str
) -> None:
    contact = fake.seed_contact()
    info = (await refused(blooio, attach(contact, identifier, channel_type, channel_id))).info()
    assert (info.code, info.status, info.retryable) == (ErrorCode.INVALID_ARGUMENT, 422, False)
    assert named in info.message
    assert info.hint is not None and "channel_type" in info.hint
    assert posts(fake) == 1


async def test_bad_request_400_is_invalid_argument(fake: BlooioFake, blooio: BlooioClient) -> None:
    contact = fake.seed_contact()
    body = {"error": {"code": "bad_request", "message": "Malformed request.", "details": {}}}
    fake.push(Fault("status", status=400, body=body))
    info = (await refused(blooio, attach(contact))).info()
    assert (info.code, info.status, info.message) == (ErrorCode.INVALID_ARGUMENT, 400, "Malformed request.")


# ---------- 409: already attached, or a real conflict ----------


async def test_duplicate_returns_the_existing_identity_not_created(fake: BlooioFake, blooio: BlooioClient) -> None:
    contact = fake.seed_contact(identities=((PHONE, "blooio", None),))
    [existing] = fake.identities(contact)
    result = await blooio.attach_identity(attach(contact))
    assert (result.created, result.id, result.identifier) == (False, existing.id, PHONE)
    assert result.summary().startswith("Already attached:")
    assert [(r.method, r.path) for r in fake.requests] == [
        ("POST", f"/v4/contacts/{contact}/identities"),
        ("GET", f"/v4/contacts/{contact}/identities"),
    ]
    assert len(fake.identities(contact)) == 1


async def test_attaching_twice_creates_once_then_reports_it_attached(fake: BlooioFake, blooio: BlooioClient) -> None:
    contact = fake.seed_contact()
    first = await blooio.attach_identity(attach(contact, "ada@example.com", "whatsapp"))
    second = await blooio.attach_identity(attach(contact, "ada@example.com", "whatsapp"))
    assert (first.created, second.created, second.id) == (True, False, first.id)
    assert second.created_at == first.created_at


async def test_duplicate_is_found_on_a_later_page(fake: BlooioFake, blooio: BlooioClient) -> None:
    emails = tuple((f"user{i}@example.com", "blooio", None) for i in range(5))
    contact = fake.seed_contact(identities=emails)
    fake.page_size = 2
    result = await blooio.attach_identity(attach(contact, "user4@example.com"))
    assert (result.created, result.id) == (False, fake.identities(contact)[4].id)
    assert [r.query for r in fake.requests if r.method == "GET"] == ["", "cursor=cur_2", "cursor=cur_4"]


@pytest.mark.parametrize(
    ("seeded", "wanted"),
    [
        pytest.param((PHONE, "whatsapp", None), (PHONE, "blooio", None), id="other-channel-type"),
        pytest.param((PHONE, "amb", "ch_one"), (PHONE, "amb", "ch_two"), id="other-channel-id"),
        pytest.param(("+14155552671", "blooio", None), (PHONE, "blooio", None), id="other-identifier"),
    ],
)
async def test_closed_chat_conflict_is_not_mistaken_for_a_near_match(
    fake: BlooioFake, blooio: BlooioClient, seeded: tuple[str, str, str | None], wanted: tuple[str, str, str | None]
) -> None:
    contact = fake.seed_contact(identities=(seeded,))
    fake.close_chat(contact)
    info = (await refused(blooio, attach(contact, *wanted))).info()
    assert (info.code, info.status, info.message) == (ErrorCode.CONFLICT, 409, "The chat with this contact is closed.")
    assert info.hint is not None and "not on the contact" in info.hint
    assert posts(fake) == 1


async def test_identifier_owned_by_another_contact_is_a_conflict(fake: BlooioFake, blooio: BlooioClient) -> None:
    owner = fake.seed_contact("owner", identities=((PHONE, "blooio", None),))
    contact = fake.seed_contact("newcomer")
    info = (await refused(blooio, attach(contact))).info()
    assert (info.code, info.message) == (ErrorCode.CONFLICT, "This identifier is already attached to another contact.")
    assert (info.field, info.existing_id) == ("identifier", owner)
    assert fake.identities(contact) == []


async def test_inactive_channel_is_a_conflict(fake: BlooioFake, blooio: BlooioClient) -> None:
    contact = fake.seed_contact()
    fake.deactivate_channel("ch_dead")
    info = (await refused(blooio, attach(contact, PHONE, "amb", "ch_dead"))).info()
    assert (info.code, info.message) == (ErrorCode.CONFLICT, "The channel is not active.")


async def test_flat_409_envelope_is_resolved_on_the_status_too(fake: BlooioFake, blooio: BlooioClient) -> None:
    contact = fake.seed_contact(identities=((PHONE, "blooio", None),))
    flat = {"error": "ApiError", "message": "Conflict", "status": 409, "code": "something_new"}
    fake.push(Fault("status", status=409, body=flat))
    result = await blooio.attach_identity(attach(contact))
    assert (result.created, result.id) == (False, fake.identities(contact)[0].id)


async def test_conflict_lookup_reads_a_bounded_number_of_pages(fake: BlooioFake, blooio: BlooioClient) -> None:
    many = tuple((f"user{i}@example.com", "blooio", None) for i in range(MAX_IDENTITY_PAGES + 5))
    contact = fake.seed_contact(identities=many)
    fake.page_size = 1
    fake.close_chat(contact)
    info = (await refused(blooio, attach(contact))).info()
    assert info.code is ErrorCode.CONFLICT
    assert sum(r.method == "GET" and r.path.endswith("/identities") for r in fake.requests) == MAX_IDENTITY_PAGES


async def test_conflict_lookup_stops_on_a_repeated_cursor(fake: BlooioFake, blooio: BlooioClient) -> None:
    contact = fake.seed_contact()
    fake.push(Fault("status", status=409, body={"error": {"code": "chat_closed", "message": "closed"}}))
    loop = {"data": [], "has_more": True, "next_cursor": "same"}
    fake.push(Fault("status", status=200, body=loop, times=50))
    info = (await refused(blooio, attach(contact))).info()
    assert (info.code, info.message) == (ErrorCode.CONFLICT, "closed")
    assert sum(r.method == "GET" and r.path.endswith("/identities") for r in fake.requests) == 2


@pytest.mark.parametrize(
    "lookup",
    [
        pytest.param(Fault("status", status=500, body={"error": {"code": "internal", "message": "boom"}}), id="500"),
        pytest.param(Fault("status", status=200, body={"data": "nope"}), id="unreadable-list"),
        pytest.param(Fault("wrong_type"), id="html"),
    ],
)
async def test_failed_conflict_lookup_reports_the_conflict(
    fake: BlooioFake, blooio: BlooioClient, lookup: Fault
) -> None:
    contact = fake.seed_contact(identities=((PHONE, "blooio", None),))
    fake.push(Fault("status", status=409, body={"error": {"code": "identity_already_exists", "message": "exists"}}))
    fake.push(lookup)
    info = (await refused(blooio, attach(contact))).info()
    assert (info.code, info.status, info.message) == (ErrorCode.CONFLICT, 409, "exists")
    assert info.hint is not None and "failed" in info.hint
    assert posts(fake) == 1


# ---------- response mapping ----------


async def test_minimal_201_falls_back_to_the_call(fake: BlooioFake, blooio: BlooioClient) -> None:
    fake.push(Fault("status", status=201, body={"data": {"id": "cid_minimal"}}))
    result = await blooio.attach_identity(attach("ct_abc"))
    assert result.structured() == {
        "provider": "blooio",
        "created": True,
        "id": "cid_minimal",
        "contact_id": "ct_abc",
        "identifier": PHONE,
    }


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"data": {"contact_id": "ct_abc"}}, id="no-id"),
        pytest.param({"data": {"id": ""}}, id="empty-id"),
        pytest.param({"id": "cid_top_level"}, id="not-enveloped"),
        pytest.param([1, 2], id="list"),
    ],
)
async def test_201_without_an_identity_is_a_provider_error(fake: BlooioFake, blooio: BlooioClient, body: Any) -> None:
    fake.push(Fault("status", status=201, body=body))
    info = (await refused(blooio, attach("ct_abc"))).info()
    assert (info.code, info.retryable) == (ErrorCode.PROVIDER_ERROR, False)
    assert posts(fake) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(0, "1970-01-01T00:00:00.000Z", id="epoch"),
        pytest.param(1_718_000_000_123, "2024-06-10T06:13:20.123Z", id="millis"),
        pytest.param(1_718_000_000_000.0, "2024-06-10T06:13:20.000Z", id="float"),
        pytest.param(None, None, id="absent"),
        pytest.param("1718000000000", None, id="string"),
        pytest.param(True, None, id="bool"),
        pytest.param(float("nan"), None, id="nan"),
        pytest.param(10**20, None, id="overflow"),
    ],
)
def test_created_at_epoch_millis_become_iso_utc(value: object, expected: str | None) -> None:
    assert iso_from_epoch_ms(value) == expected


# ---------- faults: the attach is never replayed ----------


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        pytest.param(Fault("status", status=500, body={"error": {"code": "internal", "message": "x"}}),
                     ErrorCode.PROVIDER_ERROR, id="500"),
        pytest.param(Fault("status", status=502), ErrorCode.PROVIDER_UNAVAILABLE, id="502"),
        pytest.param(Fault("status", status=503), ErrorCode.PROVIDER_UNAVAILABLE, id="503"),
        pytest.param(Fault("truncate"), ErrorCode.PROVIDER_UNAVAILABLE, id="dropped-connection"),
        pytest.param(Fault("slow", delay=1.0), ErrorCode.TIMEOUT, id="slow"),
    ],
)  # fmt: skip
async def test_unknown_outcome_is_not_replayed_and_not_retryable(
    fake: BlooioFake, blooio: BlooioClient, fault: Fault, code: ErrorCode
) -> None:
    contact = fake.seed_contact()
    fake.push(fault)
    info = (await refused(blooio, attach(contact))).info()
    assert (info.code, info.retryable) == (code, False)
    assert info.hint is not None and "may have reached Blooio" in info.hint
    assert posts(fake) == 1


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        pytest.param(Fault("malformed"), "not valid JSON", id="malformed-json"),
        pytest.param(Fault("wrong_type"), "content type", id="html"),
        pytest.param(Fault("oversize", size=100_000), "larger than 64000 bytes", id="oversize"),
    ],
)
async def test_unreadable_answer_is_a_provider_error(
    fake: BlooioFake, blooio: BlooioClient, fault: Fault, words: str
) -> None:
    fake.push(fault)
    info = (await refused(blooio, attach("ct_abc"))).info()
    assert (info.code, info.retryable) == (ErrorCode.PROVIDER_ERROR, False)
    assert words in info.message
    assert posts(fake) == 1


async def test_after_a_timeout_a_repeat_reports_the_identity_attached_once(
    fake: BlooioFake, blooio: BlooioClient
) -> None:
    contact = fake.seed_contact()
    fake.push(Fault("slow", delay=1.0))
    assert (await refused(blooio, attach(contact))).code is ErrorCode.TIMEOUT
    assert await anyio.to_thread.run_sync(fake.attached.wait, 5.0)
    again = await blooio.attach_identity(attach(contact))
    assert again.created is False
    assert [i.id for i in fake.identities(contact)] == [again.id]


async def test_rate_limited_attach_is_reported_with_retry_after_not_replayed(
    fake: BlooioFake, blooio: BlooioClient, retry_waits: list[float]
) -> None:
    body = {"error": {"code": "rate_limited", "message": "Too many requests."}}
    fake.push(Fault("status", status=429, body=body, headers={"Retry-After": "7"}))
    info = (await refused(blooio, attach(fake.seed_contact()))).info()
    assert (info.code, info.retryable, info.retry_after_s, info.message) == (
        ErrorCode.RATE_LIMITED,
        True,
        7.0,
        "Too many requests.",
    )
    assert (posts(fake), retry_waits) == (1, [])


async def test_connection_refused_was_never_sent(fake: BlooioFake) -> None:
    client = make_client(f"http://127.0.0.1:{free_port()}/v4")
    info = (await refused(client, attach("ct_abc"))).info()
    await client.aclose()
    assert (info.code, info.retryable) == (ErrorCode.PROVIDER_UNAVAILABLE, True)
    assert info.hint is not None and "not sent" in info.hint


# ---------- reads are retried: probe ----------


async def test_probe_is_a_cheap_authenticated_list(fake: BlooioFake, blooio: BlooioClient) -> None:
    verdict = await blooio.probe()
    assert "Blooio accepted the API key" in verdict and "\n" not in verdict
    [sent] = fake.requests
    assert (sent.method, sent.path, sent.query) == ("GET", "/v4/contacts", "limit=1")
    assert sent.headers["authorization"] == f"Bearer {KEY}"


async def test_probe_raises_on_a_refused_key(fake: BlooioFake, blooio: BlooioClient) -> None:
    fake.api_key = "bl_live_rotated"
    with pytest.raises(ContactError) as info:
        await blooio.probe()
    assert (info.value.code, info.value.status) == (ErrorCode.UNAUTHORIZED, 401)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault("status", status=503), id="503"),
        pytest.param(Fault("status", status=429, headers={"Retry-After": "0"}), id="429"),
        pytest.param(Fault("truncate"), id="dropped-connection"),
        pytest.param(Fault("slow", delay=1.0), id="slow"),
    ],
)
async def test_probe_is_replayed_after_a_transient_failure(
    fake: BlooioFake, blooio: BlooioClient, fault: Fault
) -> None:
    fake.push(fault)
    assert "accepted" in await blooio.probe()
    assert [r.path for r in fake.requests] == ["/v4/contacts", "/v4/contacts"]


async def test_probe_attempts_are_bounded(fake: BlooioFake, blooio: BlooioClient) -> None:
    fake.push(Fault("status", status=503, times=10))
    with pytest.raises(ContactError) as info:
        await blooio.probe()
    assert info.value.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert len(fake.requests) == OPTIONS.retry_attempts


async def test_retry_after_is_waited_for_before_the_replay(
    fake: BlooioFake, blooio: BlooioClient, retry_waits: list[float]
) -> None:
    fake.push(Fault("status", status=429, body={"error": {"code": "rate_limited", "message": "slow"}},
                    headers={"Retry-After": "1"}))  # fmt: skip
    assert "accepted" in await blooio.probe()
    assert retry_waits == [1.0]
    assert len(fake.requests) == 2


async def test_retry_after_beyond_the_deadline_is_reported_not_waited(
    fake: BlooioFake, blooio: BlooioClient, retry_waits: list[float]
) -> None:
    fake.push(Fault("status", status=429, headers={"Retry-After": "120"}))
    with pytest.raises(ContactError) as info:
        await blooio.probe()
    assert (info.value.code, info.value.retry_after_s) == (ErrorCode.RATE_LIMITED, 120.0)
    assert (len(fake.requests), retry_waits) == (1, [])


# ---------- construction ----------


def test_registry_maps_blooio_to_this_client() -> None:
    factory = providers.provider_class("blooio")
    assert factory is BlooioClient
    assert (factory.name, factory.display_name, factory.operations) == (
        "blooio",
        "Blooio",
        frozenset(
            {
                Operation.ATTACH_IDENTITY,
                Operation.GET_CONTACT,
                Operation.FIND_CONTACTS,
                Operation.DELETE_CONTACT,
                Operation.DETACH_IDENTITY,
            }
        ),
    )


async def test_from_settings_uses_the_documented_host_and_settings() -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(201, json={"data": {"id": "cid_1", "created_at": 0}})

    settings = load_settings(providers="blooio", blooio_api_key=KEY, read_timeout_s=7.5)
    client = BlooioClient.from_settings(settings, transport=httpx2.MockTransport(handler))
    await client.attach_identity(attach("ct_abc"))
    await client.aclose()
    assert str(seen[0].url) == "https://api.blooio.com/v4/contacts/ct_abc/identities"
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert client.options == HttpOptions.from_settings(settings)
    assert client.options.read_timeout_s == 7.5


def test_base_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLOOIO_API_KEY", KEY)
    monkeypatch.setenv("BLOOIO_BASE_URL", "https://blooio.internal.example/v4/")
    client = BlooioClient.from_settings(load_settings())
    assert client.base_url == "https://blooio.internal.example/v4"


def test_from_settings_without_a_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="BLOOIO_API_KEY"):
        BlooioClient.from_settings(load_settings(providers="blooio"))


# ---------- secrets ----------


async def test_the_key_appears_in_no_result_error_or_log(
    fake: BlooioFake, blooio: BlooioClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    contact = fake.seed_contact(identities=(("ada@example.com", "blooio", None),))
    outputs: list[str] = [(await blooio.attach_identity(attach(contact))).model_dump_json()]
    outputs.append((await blooio.attach_identity(attach(contact, "ada@example.com"))).model_dump_json())
    outputs.append(await blooio.probe())
    fake.close_chat(contact)
    outputs.append((await refused(blooio, attach(contact, "bob@example.com"))).info().model_dump_json())
    outputs.append((await refused(blooio, attach(contact, PHONE, "amb"))).info().model_dump_json())
    fake.push(Fault("truncate"))
    outputs.append((await refused(blooio, attach(contact))).info().model_dump_json())
    fake.api_key = "bl_live_other"
    outputs.append((await refused(blooio, attach(contact))).info().model_dump_json())
    assert caplog.records, "debug logging was captured"
    assert all(KEY not in text for text in [*outputs, caplog.text, repr(blooio)])


# ---------- reads ----------


async def test_get_contact_maps_identities_tags_and_epoch_instants(fake: BlooioFake, blooio: BlooioClient) -> None:
    fake.now_ms = lambda: 1718000000000
    contact_id = fake.seed_contact("Sam", (("+14155550123", "blooio", None), ("sam@example.com", None, None)))
    fake.contacts[contact_id].tags.append("vip")
    contact = await blooio.get_contact(contact_id)
    assert (contact.id, contact.name, contact.tags, contact.created_at) == (
        contact_id,
        "Sam",
        ["vip"],
        "2024-06-10T06:13:20.000Z",
    )
    assert [(i.identifier, i.channel_type, i.created_at) for i in contact.identities] == [
        ("+14155550123", "blooio", "2024-06-10T06:13:20.000Z"),
        ("sam@example.com", None, "2024-06-10T06:13:20.000Z"),
    ]
    assert all(i.id.startswith("cid_") for i in contact.identities) and contact.methods == []


async def test_find_by_phone_sends_it_as_identifier(fake: BlooioFake, blooio: BlooioClient) -> None:
    contact_id = fake.seed_contact("Sam", (("+14155550123", "blooio", None),))
    fake.seed_contact("Other", (("+14155550199", "blooio", None),))
    page = await blooio.find_contacts(FindContactsInput(phone="+14155550123"))
    assert [(c.id, c.name, c.phone, c.email) for c in page.contacts] == [(contact_id, "Sam", "+14155550123", None)]
    assert fake.requests[-1].query == "limit=20&identifier=%2B14155550123"


async def test_find_by_email_and_phone_at_once_is_refused(fake: BlooioFake, blooio: BlooioClient) -> None:
    with pytest.raises(ContactError) as info:
        await blooio.find_contacts(FindContactsInput(email="a@example.com", phone="+14155550123"))
    assert (info.value.info().code, info.value.field) == (ErrorCode.INVALID_ARGUMENT, "phone")
    assert fake.requests == []


async def test_unfiltered_find_passes_blooios_own_cursor_and_a_search_pages_by_offset(
    fake: BlooioFake, blooio: BlooioClient
) -> None:
    for n in range(3):
        fake.seed_contact(f"Sam {n}")
    first = await blooio.find_contacts(FindContactsInput(limit=2))
    second = await blooio.find_contacts(FindContactsInput(limit=2, cursor=first.next_cursor))
    assert "cursor=cur_2" in fake.requests[-1].query and second.next_cursor is None
    searched = await blooio.find_contacts(FindContactsInput(query="SAM", limit=2))
    assert fake.requests[-1].query == "limit=2&q=SAM"
    await blooio.find_contacts(FindContactsInput(query="SAM", limit=2, cursor=searched.next_cursor))
    assert fake.requests[-1].query == "limit=2&q=SAM&offset=2"
    with pytest.raises(ContactError):
        # A search's cursor is an offset: it does not continue an unfiltered list.
        await blooio.find_contacts(FindContactsInput(limit=2, cursor=searched.next_cursor))
    forged = encode_cursor("blooio", "offset", "not-a-number")
    with pytest.raises(ContactError) as info:
        await blooio.find_contacts(FindContactsInput(query="SAM", cursor=forged))
    assert (info.value.info().code, info.value.field) == (ErrorCode.INVALID_ARGUMENT, "cursor")
