"""Contract tests of `FeatherClient` against the Feather fake over real HTTP on 127.0.0.1: the requests it sends,
how it maps answers and every error and fault, its retry policy, and that its key never leaks."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import pytest

from contact_mcp import load_settings
from contact_mcp.errors import (
    ConfigError,
    ContactError,
    InvalidArgument,
    NotFound,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    Unauthorized,
)
from contact_mcp.models import AttachContactInput, AttachedContact, FindContactsInput
from contact_mcp.providers.feather import FeatherClient
from contact_mcp.providers.http import HttpOptions
from tests.fakes.feather import API_KEY, ORG_NAME, RATE_LIMITED_BODY, UNAUTHORIZED_BODY, FeatherFake, validation_error
from tests.fakes.harness import Fault, free_port

pytestmark = pytest.mark.anyio

PROVIDER = "feather"

OPTIONS = HttpOptions(connect_timeout_s=1.0, read_timeout_s=0.5, max_response_bytes=64_000)
CONTACTS = "/contacts"


@pytest.fixture
async def feather(fake: FeatherFake, base_url: str) -> AsyncIterator[FeatherClient]:
    fake.reset()
    client = FeatherClient(base_url=base_url, api_key=API_KEY, options=OPTIONS)
    yield client
    await client.aclose()


@pytest.fixture
def end_user(fake: FeatherFake, feather: FeatherClient) -> str:
    return fake.add_end_user(display_name="Jane")


def email(end_user_id: str, raw: str = " Jane@Example.COM ") -> AttachContactInput:
    """What the tool hands over for an email (it trims and normalises before calling the provider)."""
    return AttachContactInput(
        end_user_id=end_user_id,
        channel="email",
        raw_value=raw.strip(),
        type="email",
        normalized_value="jane@example.com",
    )


def posts(fake: FeatherFake) -> int:
    return sum(1 for r in fake.requests if r.method == "POST")


# ---------- success and the exact requests ----------


async def test_attach_new_email_reports_created_with_feathers_normal_form(
    feather: FeatherClient, fake: FeatherFake, end_user: str
) -> None:
    result = await feather.attach_contact(email(end_user))
    (stored,) = fake.end_users[end_user].contacts
    assert result == AttachedContact(
        provider="feather",
        created=True,
        end_user_id=end_user,
        uid=stored.uid,
        channel="email",
        type="email",
        normalized_value="jane@example.com",
    )


async def test_sends_a_read_then_the_documented_post_with_x_api_key(
    feather: FeatherClient, fake: FeatherFake, end_user: str
) -> None:
    await feather.attach_contact(email(end_user))
    read, attach = fake.requests
    assert (read.method, read.path, read.body) == ("GET", f"/v1/identity/end-users/{end_user}", b"")
    assert (attach.method, attach.path, attach.query) == ("POST", f"/v1/identity/end-users/{end_user}/contacts", "")
    assert attach.json() == {"channel": "email", "value": "jane@example.com"}
    assert attach.headers["content-type"] == "application/json"
    for sent in (read, attach):
        assert sent.headers["x-api-key"] == API_KEY
        assert "authorization" not in sent.headers
        assert sent.headers["accept"] == "application/json"


async def test_reattaching_the_same_value_is_not_created_and_keeps_the_uid(
    feather: FeatherClient, fake: FeatherFake, end_user: str
) -> None:
    first = await feather.attach_contact(email(end_user))
    again = await feather.attach_contact(email(end_user, "JANE@example.com"))
    assert (first.created, again.created) == (True, False)
    assert again.uid == first.uid
    assert len(fake.end_users[end_user].contacts) == 1


async def test_contact_verified_elsewhere_is_reported_existing_with_its_verification_method(
    feather: FeatherClient, fake: FeatherFake, end_user: str
) -> None:
    seeded = fake.add_contact(end_user, "sms", "+14155550123", verification_method="otp")
    call = AttachContactInput(
        end_user_id=end_user, channel="sms", raw_value="(415) 555-0123", type="sms", normalized_value="+14155550123"
    )
    result = await feather.attach_contact(call)
    assert (result.created, result.uid, result.verification_method) == (False, seeded.uid, "otp")


async def test_typed_channel_sends_our_normal_form_so_a_regional_phone_arrives_as_e164(
    feather: FeatherClient, fake: FeatherFake, end_user: str
) -> None:
    call = AttachContactInput(
        end_user_id=end_user, channel="phone", raw_value="(415) 555-0123", type="phone", normalized_value="+14155550123"
    )
    result = await feather.attach_contact(call)
    assert fake.requests[-1].json() == {"channel": "phone", "value": "+14155550123"}
    assert (result.type, result.normalized_value) == ("phone", "+14155550123")


async def test_untyped_channel_sends_the_trimmed_raw_value_and_has_no_type(
    feather: FeatherClient, fake: FeatherFake, end_user: str
) -> None:
    call = AttachContactInput(
        end_user_id=end_user, channel="telegram", raw_value=" @Someone ", type=None, normalized_value="@Someone"
    )
    result = await feather.attach_contact(call)
    assert fake.requests[-1].json() == {"channel": "telegram", "value": "@Someone"}
    assert (result.channel, result.type, result.normalized_value) == ("telegram", None, "@Someone")
    assert "type" not in result.structured()


async def test_end_user_id_is_sent_in_canonical_form(feather: FeatherClient, fake: FeatherFake, end_user: str) -> None:
    result = await feather.attach_contact(email("{" + end_user.upper() + "}"))
    assert {r.path for r in fake.requests} == {
        f"/v1/identity/end-users/{end_user}",
        f"/v1/identity/end-users/{end_user}/contacts",
    }
    assert result.end_user_id == end_user


@pytest.mark.parametrize(
    "end_user_id",
    ["not-a-uuid", "../whoami", "8e0c1f4a-0000-4000-8000-000000000000/../../whoami", "x?channel=email", "%2e%2e", ""],
    ids=["word", "dot-dot", "uuid-then-traversal", "query", "encoded-dots", "empty"],
)
async def test_invalid_end_user_id_is_refused_before_any_request(
    feather: FeatherClient, fake: FeatherFake, end_user_id: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await feather.attach_contact(email(end_user_id))
    assert caught.value.field == "end_user_id"
    assert fake.requests == []


# ---------- Feather's error answers ----------


async def test_unknown_end_user_is_not_found_before_anything_is_posted(
    feather: FeatherClient, fake: FeatherFake
) -> None:
    unknown = str(uuid.uuid4())
    with pytest.raises(NotFound) as caught:
        await feather.attach_contact(email(unknown))
    error = caught.value
    assert (error.status, error.field, error.provider, error.retryable) == (404, "end_user_id", "feather", False)
    assert error.message == f"End user {unknown} not found"
    assert error.hint is not None
    assert "resolve" in error.hint
    assert posts(fake) == 0


async def test_end_user_deleted_between_read_and_post_is_not_found(
    feather: FeatherClient, fake: FeatherFake, end_user: str
) -> None:
    fake.app.push(
        Fault(kind="status", status=404, body={"error": "not_found", "message": "gone"}, path_contains=CONTACTS)
    )
    with pytest.raises(NotFound) as caught:
        await feather.attach_contact(email(end_user))
    assert (caught.value.field, caught.value.message) == ("end_user_id", "gone")


async def test_refused_key_is_unauthorized_with_feathers_message(
    feather: FeatherClient, fake: FeatherFake, end_user: str
) -> None:
    fake.api_key = "fth_live_rotated"
    with pytest.raises(Unauthorized) as caught:
        await feather.attach_contact(email(end_user))
    error = caught.value
    assert (error.status, error.message, error.retryable) == (401, UNAUTHORIZED_BODY["message"], False)
    assert error.hint is not None
    assert "FEATHER_API_KEY" in error.hint
    assert len(fake.requests) == 1


async def test_forbidden_is_unauthorized(feather: FeatherClient, fake: FeatherFake, end_user: str) -> None:
    fake.app.push(Fault(kind="status", status=403, body={"error": "forbidden", "message": "Missing permission"}))
    with pytest.raises(Unauthorized) as caught:
        await feather.attach_contact(email(end_user))
    assert (caught.value.status, caught.value.message) == (403, "Missing permission")


async def test_value_feather_cannot_use_is_invalid_argument_from_its_400(
    feather: FeatherClient, fake: FeatherFake, end_user: str
) -> None:
    call = AttachContactInput(
        end_user_id=end_user, channel="email", raw_value="nope", type="email", normalized_value="nope"
    )
    with pytest.raises(InvalidArgument) as caught:
        await feather.attach_contact(call)
    error = caught.value
    assert (error.status, error.message) == (400, "'nope' is not a valid email address")
    assert error.hint is not None
    assert "valid email" in error.hint
    assert posts(fake) == 1


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (validation_error(["body", "value"], "Field required", "missing"), "value", "Field required"),
        (
            validation_error(["body", "channel"], "Input should be a valid string", "string_type", 3),
            "channel",
            "Input should be a valid string",
        ),
        (
            validation_error(["path", "end_user_id"], "Input should be a valid UUID", "uuid_parsing", "x"),
            "end_user_id",
            "Input should be a valid UUID",
        ),
    ],
    ids=["body-value", "body-channel", "path-id"],
)
async def test_fastapi_422_is_invalid_argument_naming_the_field_from_loc(
    feather: FeatherClient, fake: FeatherFake, end_user: str, body: object, field: str, message: str
) -> None:
    fake.app.push(Fault(kind="status", status=422, body=body, path_contains=CONTACTS))
    with pytest.raises(InvalidArgument) as caught:
        await feather.attach_contact(email(end_user))
    error = caught.value
    assert (error.status, error.field, error.message) == (422, field, message)
    assert error.hint is not None
    assert field in error.hint
    assert posts(fake) == 1


async def test_bad_request_on_the_read_stops_before_posting(
    feather: FeatherClient, fake: FeatherFake, end_user: str
) -> None:
    fake.app.push(Fault(kind="status", status=400, body={"error": "bad_request", "message": "Malformed request"}))
    with pytest.raises(InvalidArgument) as caught:
        await feather.attach_contact(email(end_user))
    assert caught.value.message == "Malformed request"
    assert posts(fake) == 0


# ---------- retries: the attach is replayable, so 429/502/503/504 and lost answers are retried ----------


async def test_rate_limit_without_retry_after_is_retried_then_succeeds(
    feather: FeatherClient, fake: FeatherFake, end_user: str
) -> None:
    fake.app.push(Fault(kind="status", status=429, body=RATE_LIMITED_BODY, path_contains=CONTACTS))
    result = await feather.attach_contact(email(end_user))
    assert result.created is True
    assert posts(fake) == 2


async def test_rate_limit_that_persists_is_rate_limited_after_bounded_attempts(
    feather: FeatherClient, fake: FeatherFake, end_user: str
) -> None:
    fake.app.push(Fault(kind="status", status=429, body=RATE_LIMITED_BODY, path_contains=CONTACTS, times=10))
    with pytest.raises(RateLimited) as caught:
        await feather.attach_contact(email(end_user))
    error = caught.value
    assert (error.status, error.message, error.retryable, error.retry_after_s) == (
        429,
        RATE_LIMITED_BODY["message"],
        True,
        None,
    )
    assert error.hint is not None
    assert "rate limit" in error.hint
    assert posts(fake) == OPTIONS.retry_attempts


async def test_retry_after_is_waited_for_when_feather_sends_one(
    feather: FeatherClient, fake: FeatherFake, end_user: str, retry_waits: list[float]
) -> None:
    """One real 1 s wait, read from the schedule stamina records (see the `retry_waits` fixture)."""
    fake.app.push(
        Fault(kind="status", status=429, body=RATE_LIMITED_BODY, headers={"Retry-After": "1"}, path_contains=CONTACTS)
    )
    result = await feather.attach_contact(email(end_user))
    assert result.created is True
    assert retry_waits == [1.0]
    assert posts(fake) == 2


@pytest.mark.parametrize(
    ("status", "error_type", "attempts"),
    [
        (500, ProviderError, 1),
        (502, ProviderUnavailable, 3),
        (503, ProviderUnavailable, 3),
        (504, ProviderUnavailable, 3),
    ],
    ids=["500-not-retried", "502-retried", "503-retried", "504-retried"],
)
async def test_server_errors_map_and_gateway_errors_are_retried(
    feather: FeatherClient,
    fake: FeatherFake,
    end_user: str,
    status: int,
    error_type: type[ContactError],
    attempts: int,
) -> None:
    body = {"error": "internal_error", "message": "Something broke"}
    fake.app.push(Fault(kind="status", status=status, body=body, path_contains=CONTACTS, times=10))
    with pytest.raises(error_type) as caught:
        await feather.attach_contact(email(end_user))
    assert (caught.value.status, caught.value.message, caught.value.retryable) == (status, "Something broke", True)
    assert posts(fake) == attempts


async def test_outage_on_the_read_is_retried_then_the_attach_proceeds(
    feather: FeatherClient, fake: FeatherFake, end_user: str
) -> None:
    fake.app.push(Fault(kind="status", status=503, body={"error": "unavailable", "message": "down"}))
    result = await feather.attach_contact(email(end_user))
    assert result.created is True
    assert [r.method for r in fake.requests] == ["GET", "GET", "POST"]


async def test_slow_answer_past_the_read_timeout_is_retried(
    feather: FeatherClient, fake: FeatherFake, end_user: str
) -> None:
    fake.app.push(Fault(kind="slow", delay=1.0, path_contains=CONTACTS))
    result = await feather.attach_contact(email(end_user))
    # The slow attempt also reached Feather, so the replay finds the contact it added: created is judged against
    # the read before the first attempt.
    assert result.created is True
    assert posts(fake) == 2
    assert len(fake.end_users[end_user].contacts) == 1


async def test_answers_that_never_come_are_a_retryable_timeout(
    feather: FeatherClient, fake: FeatherFake, end_user: str
) -> None:
    fake.app.push(Fault(kind="slow", delay=1.0, path_contains=CONTACTS, times=3))
    with pytest.raises(ProviderTimeout) as caught:
        await feather.attach_contact(email(end_user))
    assert caught.value.retryable is True
    assert "0.5 s" in caught.value.message
    assert posts(fake) == 3


async def test_dropped_connection_is_retried(feather: FeatherClient, fake: FeatherFake, end_user: str) -> None:
    fake.app.push(Fault(kind="truncate", path_contains=CONTACTS))
    result = await feather.attach_contact(email(end_user))
    assert result.created is True
    assert posts(fake) == 2


async def test_connection_dropped_every_time_is_a_retryable_outage(
    feather: FeatherClient, fake: FeatherFake, end_user: str
) -> None:
    fake.app.push(Fault(kind="truncate", path_contains=CONTACTS, times=10))
    with pytest.raises(ProviderUnavailable) as caught:
        await feather.attach_contact(email(end_user))
    assert caught.value.retryable is True
    assert caught.value.hint is None  # replayable: no "check with a read first" caveat
    assert posts(fake) == 3


async def test_unreachable_feather_is_unavailable_and_says_nothing_was_sent() -> None:
    client = FeatherClient(base_url=f"http://127.0.0.1:{free_port()}", api_key=API_KEY, options=OPTIONS)
    try:
        with pytest.raises(ProviderUnavailable) as caught:
            await client.attach_contact(email(str(uuid.uuid4())))
    finally:
        await client.aclose()
    assert caught.value.message.startswith("could not connect to Feather")
    assert caught.value.hint == "The request was not sent; retry later"


# ---------- answers we cannot read ----------


@pytest.mark.parametrize(
    ("fault", "message_part"),
    [
        (Fault(kind="malformed", path_contains=CONTACTS), "not valid JSON"),
        (Fault(kind="wrong_type", path_contains=CONTACTS), "content type text/html"),
        (Fault(kind="oversize", path_contains=CONTACTS), "larger than 64000 bytes"),
        (
            Fault(kind="status", status=201, body={"id": "c1", "value": "x"}, path_contains=CONTACTS),
            "contact did not have the documented shape",
        ),
    ],
    ids=["malformed-json", "html", "oversize", "undocumented-shape"],
)
async def test_unreadable_attach_answer_is_a_provider_error_and_not_replayed(
    feather: FeatherClient, fake: FeatherFake, end_user: str, fault: Fault, message_part: str
) -> None:
    fake.app.push(fault)
    with pytest.raises(ProviderError) as caught:
        await feather.attach_contact(email(end_user))
    assert message_part in caught.value.message
    assert caught.value.retryable is False
    assert caught.value.hint is not None
    assert posts(fake) == 1


async def test_end_user_read_without_contacts_counts_as_no_contacts(
    feather: FeatherClient, fake: FeatherFake, end_user: str
) -> None:
    fake.add_contact(end_user, "email", "jane@example.com")
    profile = {"uid": end_user, "org_id": "o", "status": "active"}
    fake.app.push(Fault(kind="status", status=200, body=profile))
    result = await feather.attach_contact(email(end_user))
    assert result.created is True


async def test_end_user_read_of_the_wrong_shape_is_a_provider_error(
    feather: FeatherClient, fake: FeatherFake, end_user: str
) -> None:
    fake.app.push(Fault(kind="status", status=200, body={"uid": end_user, "contacts": [{"value": "x"}]}))
    with pytest.raises(ProviderError) as caught:
        await feather.attach_contact(email(end_user))
    assert "contacts.0.uid" in caught.value.message
    assert posts(fake) == 0


# ---------- probe, construction, secrets ----------


async def test_probe_names_the_organization(feather: FeatherClient, fake: FeatherFake) -> None:
    verdict = await feather.probe()
    assert ORG_NAME in verdict
    assert "org:admin" in verdict
    assert [(r.method, r.path, r.headers["x-api-key"]) for r in fake.requests] == [
        ("GET", "/v1/identity/whoami", API_KEY)
    ]


async def test_probe_with_a_refused_key_raises_unauthorized(feather: FeatherClient, fake: FeatherFake) -> None:
    fake.api_key = "fth_live_other"
    with pytest.raises(Unauthorized):
        await feather.probe()


async def test_probe_of_a_host_without_whoami_points_at_the_base_url(feather: FeatherClient, fake: FeatherFake) -> None:
    fake.app.push(Fault(kind="status", status=404, body={"detail": "Not Found"}))
    with pytest.raises(ProviderError) as caught:
        await feather.probe()
    assert caught.value.hint is not None
    assert "FEATHER_BASE_URL" in caught.value.hint


async def test_from_settings_uses_the_configured_url_key_and_timeouts(
    base_url: str, fake: FeatherFake, end_user: str
) -> None:
    settings = load_settings(feather_api_key=f" {API_KEY}\n", feather_base_url=base_url + "/", read_timeout_s=7.5)
    client = FeatherClient.from_settings(settings)
    try:
        assert client.options.read_timeout_s == 7.5
        result = await client.attach_contact(email(end_user))
    finally:
        await client.aclose()
    assert result.created is True
    assert fake.requests[0].headers["x-api-key"] == API_KEY
    assert client.client.is_closed


def test_from_settings_without_a_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="FEATHER_API_KEY"):
        FeatherClient.from_settings(load_settings())


async def test_default_base_url_is_the_documented_sandbox() -> None:
    client = FeatherClient.from_settings(load_settings(feather_api_key=API_KEY))
    try:
        assert client.base_url == "https://api-sandbox.featherhq.com"
    finally:
        await client.aclose()


async def test_the_key_never_appears_in_results_errors_or_logs(
    feather: FeatherClient, fake: FeatherFake, end_user: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    result = await feather.attach_contact(email(end_user))
    seen += [result.model_dump_json(), result.summary(), await feather.probe()]
    fake.app.push(Fault(kind="status", status=503, body={"error": "x", "message": "down"}, times=3))
    fake.app.push(Fault(kind="truncate", times=3))
    for _ in range(2):
        with pytest.raises(ContactError) as caught:
            await feather.attach_contact(email(end_user))
        seen += [str(caught.value), repr(caught.value), caught.value.info().model_dump_json()]
    fake.api_key = "fth_live_other"
    with pytest.raises(Unauthorized) as refused:
        await feather.attach_contact(email(end_user))
    seen += [str(refused.value), refused.value.info().model_dump_json(), repr(feather)]
    assert caplog.records, "DEBUG logging captured nothing: the check below would prove nothing"
    for text in [*seen, caplog.text]:
        assert API_KEY not in text


# ---------- reads ----------


async def test_get_contact_maps_the_end_user_and_its_contacts(feather: FeatherClient, fake: FeatherFake) -> None:
    uid = fake.add_end_user(display_name="Jane", external_id="crm-7", metadata={"plan": "pro", "nested": {"a": 1}})
    email = fake.add_contact(uid, "email", "Jane@Example.com", verification_method="otp")
    handle = fake.add_contact(uid, "slack", " @jane ")
    contact = await feather.get_contact(uid.upper())
    assert (contact.id, contact.user_id, contact.display_name, contact.status) == (uid, "crm-7", "Jane", "active")
    assert contact.custom_fields == {"plan": "pro"}
    first, second = contact.methods
    assert (first.id, first.value, first.raw_value, first.primary, first.verified, first.verification_method) == (
        email.uid,
        "jane@example.com",
        "Jane@Example.com",
        True,
        True,
        "otp",
    )
    # Nothing said about the handle's verification: absent, not false.
    assert (second.id, second.type, second.primary, second.verified) == (handle.uid, "slack", False, None)
    assert contact.created_at is None and contact.identities == []


async def test_find_by_user_id_sends_org_external_end_user_id(feather: FeatherClient, fake: FeatherFake) -> None:
    fake.add_end_user(display_name="Other", external_id="crm-1")
    uid = fake.add_end_user(display_name="Jane", external_id="crm-7")
    fake.add_contact(uid, "phone", "+14155550123")
    page = await feather.find_contacts(FindContactsInput(user_id="crm-7", limit=5))
    assert [(c.id, c.name, c.user_id, c.phone) for c in page.contacts] == [(uid, "Jane", "crm-7", "+14155550123")]
    assert page.next_cursor is None
    assert fake.requests[-1].query == "limit=5&org_external_end_user_id=crm-7"


async def test_find_passes_feathers_cursor_through_opaquely(feather: FeatherClient, fake: FeatherFake) -> None:
    ids = [fake.add_end_user(display_name=f"U{n}") for n in range(3)]
    first = await feather.find_contacts(FindContactsInput(limit=2))
    assert first.next_cursor is not None and ids[1] not in first.next_cursor
    second = await feather.find_contacts(FindContactsInput(limit=2, cursor=first.next_cursor))
    assert [c.id for c in first.contacts + second.contacts] == ids
    assert f"cursor={ids[1]}" in fake.requests[-1].query
