"""Contract tests: `FeaturebaseClient` against the fake Featurebase API over real HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import logging
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from contact_mcp import ConfigError, build_server, load_settings
from contact_mcp.errors import (
    ContactError,
    InvalidArgument,
    NotFound,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    Unauthorized,
)
from contact_mcp.models import Company, FindContactsInput, UpsertContactInput
from contact_mcp.providers.featurebase import FeaturebaseClient, argument_name
from contact_mcp.providers.http import HttpOptions
from tests.fakes.featurebase import API_KEY, FeaturebaseFake, error_body, user_hash
from tests.fakes.harness import Fault, free_port

pytestmark = pytest.mark.anyio

PROVIDER = "featurebase"

SECRET = "whsec_identity_fake_91b7"
FAST = HttpOptions(
    connect_timeout_s=1.0,
    read_timeout_s=0.5,
    max_response_bytes=64_000,
    retry_attempts=3,
    retry_deadline_s=5.0,
    retry_wait_initial_s=0.0,
    retry_wait_max_s=0.0,
)
TLS = ssl.create_default_context()
ADA = UpsertContactInput(email="ada@example.com", user_id="usr_ada", name="Ada Lovelace")


def make_client(base_url: str, **kwargs: Any) -> FeaturebaseClient:
    # One TLS context for the module: building one per client (loading the CA bundle) costs ~0.15 s each.
    transport = httpx2.AsyncHTTPTransport(verify=TLS)
    api_key = kwargs.pop("api_key", API_KEY)
    return FeaturebaseClient(base_url=base_url, api_key=api_key, options=FAST, transport=transport, **kwargs)


@pytest.fixture
async def fb(base_url: str) -> AsyncIterator[FeaturebaseClient]:
    client = make_client(base_url)
    yield client
    await client.aclose()


async def upsert_error(fb: FeaturebaseClient, call: UpsertContactInput = ADA) -> ContactError:
    with pytest.raises(ContactError) as caught:
        await fb.upsert_contact(call)
    return caught.value


def fb_error(status: int, kind: str, code: str, message: str, param: str | None = None) -> Fault:
    return Fault("status", status=status, body=error_body(kind, code, message, status, param))


def rate_limited(times: int, headers: dict[str, str]) -> Fault:
    body = error_body("rate_limit_error", "rate_limit_exceeded", "Too many requests.", 429)
    return Fault("status", status=429, body=body, headers=headers, times=times)


# ---------- the request sent ----------


async def test_upsert_sends_one_post_with_bearer_key_version_header_and_featurebase_field_names(
    fb: FeaturebaseClient, fake: FeaturebaseFake
) -> None:
    call = UpsertContactInput(
        email="ada@example.com",
        user_id="usr_ada",
        name="Ada Lovelace",
        phone="+14155550123",
        locale="en",
        profile_picture="https://example.com/ada.png",
        companies=(
            Company(id="c_1", name="Analytical", plan="pro", monthly_spend=500, industry="Computing"),
            Company(id="c_2", name="Engines", website="https://engines.example", company_size=12),
        ),
        custom_fields={"plan": "pro", "seats": 3, "beta": True, "note": None},
        roles=("role_vip",),
        subscribed_to_changelog=False,
    )
    await fb.upsert_contact(call)
    [sent] = fake.requests
    assert (sent.method, sent.path, sent.query) == ("POST", "/v2/contacts", "")
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["featurebase-version"] == "2026-01-01.nova"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {
        "email": "ada@example.com",
        "userId": "usr_ada",
        "name": "Ada Lovelace",
        "phone": "+14155550123",
        "locale": "en",
        "profilePicture": "https://example.com/ada.png",
        "subscribedToChangelog": False,
        "companies": [
            {"id": "c_1", "name": "Analytical", "plan": "pro", "monthlySpend": 500, "industry": "Computing"},
            {"id": "c_2", "name": "Engines", "website": "https://engines.example", "companySize": 12},
        ],
        "customFields": {"plan": "pro", "seats": 3, "beta": True, "note": None},
        "roles": ["role_vip"],
    }


@pytest.mark.parametrize(
    ("call", "body"),
    [
        pytest.param(UpsertContactInput(email="a@example.com", user_id=None), {"email": "a@example.com"}, id="email"),
        pytest.param(UpsertContactInput(email=None, user_id="u1"), {"userId": "u1"}, id="user_id"),
        pytest.param(
            UpsertContactInput(email=None, user_id="u1", companies=(), roles=(), custom_fields={}),
            {"userId": "u1", "companies": [], "roles": [], "customFields": {}},
            id="empty-collections-are-given",
        ),
    ],
)
async def test_upsert_sends_only_the_fields_that_were_given(
    fb: FeaturebaseClient, fake: FeaturebaseFake, call: UpsertContactInput, body: dict[str, Any]
) -> None:
    await fb.upsert_contact(call)
    assert fake.requests[0].json() == body


async def test_configured_api_version_is_sent_on_every_request(base_url: str, fake: FeaturebaseFake) -> None:
    client = make_client(base_url, api_version="2026-08-19.orbit")
    try:
        await client.upsert_contact(ADA)
        await client.probe()
    finally:
        await client.aclose()
    assert [r.headers["featurebase-version"] for r in fake.requests] == ["2026-08-19.orbit"] * 2


async def test_an_argument_cannot_change_the_path_or_query(fb: FeaturebaseClient, fake: FeaturebaseFake) -> None:
    odd = "../../v2/boards?x=1#frag"
    result = await fb.upsert_contact(UpsertContactInput(email=None, user_id=odd))
    [sent] = fake.requests
    assert (sent.path, sent.query) == ("/v2/contacts", "")
    assert sent.json() == {"userId": odd}
    assert result.user_id == odd


# ---------- identity verification ----------


@pytest.mark.parametrize(
    ("call", "signed"),
    [
        pytest.param(ADA, "usr_ada", id="user-id-when-given"),
        pytest.param(UpsertContactInput(email="ada@example.com", user_id=None), "ada@example.com", id="else-email"),
    ],
)
async def test_with_an_identity_secret_the_client_signs_the_contact_and_featurebase_verifies_it(
    base_url: str, fake: FeaturebaseFake, call: UpsertContactInput, signed: str
) -> None:
    fake.reset(identity_secret=SECRET)
    client = make_client(base_url, identity_secret=SECRET)
    try:
        result = await client.upsert_contact(call)
    finally:
        await client.aclose()
    expected = hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).hexdigest()
    assert fake.requests[0].json()["userHash"] == expected
    assert result.id is not None
    contact = fake.contact(result.id)
    assert contact is not None
    assert contact["verified"] is True


async def test_a_wrong_identity_secret_still_upserts_but_leaves_the_contact_unverified(
    base_url: str, fake: FeaturebaseFake
) -> None:
    fake.reset(identity_secret=SECRET)
    client = make_client(base_url, identity_secret="not-the-workspace-secret")
    try:
        result = await client.upsert_contact(ADA)
    finally:
        await client.aclose()
    assert result.outcome == "created"
    assert result.id is not None
    contact = fake.contact(result.id)
    assert contact is not None
    assert contact["verified"] is False


async def test_without_an_identity_secret_no_user_hash_is_sent(fb: FeaturebaseClient, fake: FeaturebaseFake) -> None:
    await fb.upsert_contact(ADA)
    assert "userHash" not in fake.requests[0].json()


# ---------- results ----------


async def test_a_new_contact_is_created_and_mapped_to_the_canonical_result(
    fb: FeaturebaseClient, fake: FeaturebaseFake
) -> None:
    result = await fb.upsert_contact(
        UpsertContactInput(email="ada@example.com", user_id="usr_ada", name="Ada", phone="+14155550123")
    )
    assert result.structured() == {
        "provider": "featurebase",
        "outcome": "created",
        "id": result.id,
        "user_id": "usr_ada",
        "email": "ada@example.com",
        "name": "Ada",
        "phone": "+14155550123",
    }
    assert result.id is not None
    assert fake.contact(result.id) is not None


async def test_a_second_upsert_with_the_same_user_id_updates_the_same_contact(
    fb: FeaturebaseClient, fake: FeaturebaseFake
) -> None:
    first = await fb.upsert_contact(ADA)
    second = await fb.upsert_contact(UpsertContactInput(email=None, user_id="usr_ada", name="Countess"))
    assert (first.outcome, second.outcome) == ("created", "updated")
    assert second.id == first.id
    assert (second.name, second.email) == ("Countess", "ada@example.com")


async def test_an_email_matches_an_existing_contact_when_no_user_id_is_given(
    fb: FeaturebaseClient, fake: FeaturebaseFake
) -> None:
    seeded = fake.seed_contact(email="grace@example.com", name="Grace")
    result = await fb.upsert_contact(UpsertContactInput(email="grace@example.com", user_id=None, locale="en"))
    assert (result.outcome, result.id, result.name) == ("updated", seeded["id"], "Grace")


async def test_user_id_takes_precedence_over_email_for_matching(fb: FeaturebaseClient, fake: FeaturebaseFake) -> None:
    by_id = fake.seed_contact(user_id="usr_1", email="old@example.com")
    fake.seed_contact(user_id="usr_2", email="new@example.com")
    result = await fb.upsert_contact(UpsertContactInput(email="new@example.com", user_id="usr_1"))
    assert (result.outcome, result.id) == ("updated", by_id["id"])


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"object": "contact"}, id="no-id"),
        pytest.param([{"id": "x"}], id="not-an-object"),
        pytest.param({"id": ""}, id="empty-id"),
    ],
)
async def test_a_success_without_a_contact_id_is_a_provider_error(
    fb: FeaturebaseClient, fake: FeaturebaseFake, body: Any
) -> None:
    fake.app.push(Fault("status", status=200, body=body))
    error = await upsert_error(fb)
    assert isinstance(error, ProviderError)
    assert "without a contact id" in error.message


# ---------- Featurebase's errors ----------


async def test_an_unknown_key_is_unauthorized_with_featurebases_message(base_url: str, fake: FeaturebaseFake) -> None:
    client = make_client(base_url, api_key="sk_wrong")
    try:
        error = await upsert_error(client)
    finally:
        await client.aclose()
    assert isinstance(error, Unauthorized)
    assert (error.status, error.message, error.retryable) == (401, "Invalid API key provided.", False)
    assert error.hint is not None
    assert "FEATUREBASE_API_KEY" in error.hint
    assert len(fake.requests) == 1


async def test_a_key_without_access_is_unauthorized_with_a_permission_hint(
    base_url: str, fake: FeaturebaseFake
) -> None:
    fake.state.forbidden_keys.add("sk_readonly")
    client = make_client(base_url, api_key="sk_readonly")
    try:
        error = await upsert_error(client)
    finally:
        await client.aclose()
    assert isinstance(error, Unauthorized)
    assert error.status == 403
    assert error.hint is not None
    assert "may not use contacts" in error.hint


@pytest.mark.parametrize(
    ("call", "field"),
    [
        pytest.param(UpsertContactInput(email=None, user_id=None), "email", id="no-identifier"),
        pytest.param(UpsertContactInput(email="not-an-email", user_id=None), "email", id="email-format"),
        pytest.param(UpsertContactInput(email=None, user_id="u" * 501), "user_id", id="user-id-too-long"),
        pytest.param(UpsertContactInput(email=None, user_id="u", name="n" * 501), "name", id="name-too-long"),
        pytest.param(UpsertContactInput(email=None, user_id="u", locale="x" * 11), "locale", id="locale-too-long"),
        pytest.param(
            UpsertContactInput(email=None, user_id="u", profile_picture="not a uri"), "profile_picture", id="uri"
        ),
        pytest.param(
            UpsertContactInput(email=None, user_id="u", companies=(Company.model_construct(id="c1", name=""),)),
            "companies[0].name",
            id="company-name-missing",
        ),
        pytest.param(
            UpsertContactInput(
                email=None,
                user_id="u",
                companies=(Company(id="c0", name="ok"), Company.model_construct(id="c1", name="n", monthly_spend=-1)),
            ),
            "companies[1].monthly_spend",
            id="company-spend-negative",
        ),
    ],
)
async def test_featurebase_validation_errors_name_the_agents_argument(
    fb: FeaturebaseClient, fake: FeaturebaseFake, call: UpsertContactInput, field: str
) -> None:
    error = await upsert_error(fb, call)
    assert isinstance(error, InvalidArgument)
    assert (error.status, error.field, error.retryable) == (400, field, False)
    assert error.message
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("param", "argument"),
    [
        pytest.param("email", "email", id="same"),
        pytest.param("userId", "user_id", id="userId"),
        pytest.param("profilePicture", "profile_picture", id="profilePicture"),
        pytest.param("subscribedToChangelog", "subscribed_to_changelog", id="subscribedToChangelog"),
        pytest.param("companies.0.name", "companies[0].name", id="dotted-index"),
        pytest.param("companies[2].companySize", "companies[2].company_size", id="bracket-index"),
        pytest.param("companies.1.monthlySpend", "companies[1].monthly_spend", id="company-camel"),
        pytest.param("customFields.signupSource", "custom_fields.signupSource", id="custom-key-kept"),
        pytest.param("body.userId", "user_id", id="body-prefix"),
        pytest.param("someNewField", "some_new_field", id="unknown-camel"),
        pytest.param(None, None, id="none"),
        pytest.param("", None, id="empty"),
    ],
)
def test_featurebase_param_names_become_tool_argument_paths(param: str | None, argument: str | None) -> None:
    assert argument_name(param) == argument


async def test_an_old_api_version_is_the_operators_error_not_the_agents(base_url: str, fake: FeaturebaseFake) -> None:
    client = make_client(base_url, api_version="2025-12-12.clover")
    try:
        error = await upsert_error(client)
    finally:
        await client.aclose()
    assert type(error) is ProviderError
    assert (error.status, error.field, error.retryable) == (400, None, False)
    assert "2026-01-01.nova and newer" in error.message
    assert error.hint is not None
    assert "FEATUREBASE_API_VERSION" in error.hint
    assert len(fake.requests) == 1


async def test_a_rejected_user_hash_points_the_operator_at_the_identity_secret(
    fb: FeaturebaseClient, fake: FeaturebaseFake
) -> None:
    fake.app.push(fb_error(400, "invalid_request_error", "parameter_too_long", "userHash is too long", "userHash"))
    error = await upsert_error(fb)
    assert type(error) is ProviderError
    assert error.field is None
    assert error.hint is not None
    assert "FEATUREBASE_IDENTITY_SECRET" in error.hint


@pytest.mark.parametrize(
    ("fault", "kind", "retryable", "hint_part"),
    [
        pytest.param(
            fb_error(400, "invalid_request_error", "invalid_json", "The request body is not valid JSON."),
            InvalidArgument,
            False,
            "argument the message names",
            id="400-without-param",
        ),
        pytest.param(
            fb_error(404, "invalid_request_error", "resource_not_found", "Not found.", "id"),
            NotFound,
            False,
            "cannot cause this",
            id="404",
        ),
        pytest.param(
            fb_error(410, "invalid_request_error", "gone", "This endpoint was removed."),
            NotFound,
            False,
            "FEATUREBASE_API_VERSION",
            id="410",
        ),
        pytest.param(
            fb_error(500, "api_error", "internal_error", "Something went wrong on our end."),
            ProviderError,
            True,
            "idempotent",
            id="500",
        ),
    ],
)
async def test_each_documented_error_status_maps_with_featurebases_message_and_a_hint(
    fb: FeaturebaseClient,
    fake: FeaturebaseFake,
    fault: Fault,
    kind: type[ContactError],
    retryable: bool,
    hint_part: str,
) -> None:
    message = fault.body["error"]["message"]
    fake.app.push(fault)
    error = await upsert_error(fb)
    assert type(error) is kind
    assert (error.status, error.message, error.retryable) == (fault.status, message, retryable)
    assert error.hint is not None
    assert hint_part in error.hint
    assert error.provider == "featurebase"
    assert len(fake.requests) == 1, "a 4xx or 500 is never replayed"


async def test_a_404_without_featurebases_envelope_points_at_the_base_url(
    fb: FeaturebaseClient, fake: FeaturebaseFake
) -> None:
    fake.app.push(Fault("status", status=404, body={}))
    error = await upsert_error(fb)
    assert type(error) is ProviderError
    assert error.hint is not None
    assert "FEATUREBASE_BASE_URL" in error.hint


# ---------- rate limits and retries ----------


async def test_a_429_with_retry_after_is_replayed_and_then_succeeds(
    fb: FeaturebaseClient, fake: FeaturebaseFake
) -> None:
    fake.app.push(rate_limited(1, {"Retry-After": "1"}))
    result = await fb.upsert_contact(ADA)
    assert result.outcome == "created"
    assert len(fake.requests) == 2
    assert fake.requests[0].json() == fake.requests[1].json()


async def test_retries_are_bounded_and_the_agent_is_told_when_to_retry(
    fb: FeaturebaseClient, fake: FeaturebaseFake
) -> None:
    fake.app.push(rate_limited(10, {"Retry-After": "1", "X-RateLimit-Reset": "7"}))
    error = await upsert_error(fb)
    assert isinstance(error, RateLimited)
    assert (error.status, error.retry_after_s, error.retryable) == (429, 1.0, True)
    assert error.message == "Too many requests."
    assert len(fake.requests) == FAST.retry_attempts


async def test_without_retry_after_the_rate_limit_reset_is_the_delay_and_one_beyond_the_deadline_is_not_waited(
    fb: FeaturebaseClient, fake: FeaturebaseFake
) -> None:
    fake.app.push(
        rate_limited(10, {"X-RateLimit-Limit": "2000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "42"})
    )
    error = await upsert_error(fb)
    assert isinstance(error, RateLimited)
    assert error.retry_after_s == 42.0
    assert len(fake.requests) == 1, "42 s is past the 5 s retry deadline, so the client does not wait"


async def test_a_rate_limit_reset_given_as_a_unix_time_is_read_as_seconds_from_now(
    fb: FeaturebaseClient, fake: FeaturebaseFake
) -> None:
    fake.app.push(rate_limited(10, {"X-RateLimit-Reset": str(int(time.time()) + 120)}))
    error = await upsert_error(fb)
    assert isinstance(error, RateLimited)
    assert error.retry_after_s is not None
    assert 100 <= error.retry_after_s <= 121
    assert len(fake.requests) == 1


async def test_the_fakes_own_rate_limit_answers_429_with_its_headers_and_the_client_reports_the_reset(
    fb: FeaturebaseClient, fake: FeaturebaseFake
) -> None:
    fake.state.rate_limit = 2
    await fb.upsert_contact(ADA)
    await fb.upsert_contact(ADA)
    error = await upsert_error(fb)
    assert isinstance(error, RateLimited)
    assert error.retry_after_s is not None
    assert 50 <= error.retry_after_s <= 60
    assert len(fake.requests) == 3


@pytest.mark.parametrize("send_retry_after", [True, False], ids=["retry-after", "reset-only"])
async def test_a_real_wait_uses_retry_after_or_else_the_rate_limit_reset(
    fb: FeaturebaseClient, fake: FeaturebaseFake, send_retry_after: bool, retry_waits: list[float]
) -> None:
    """Outside stamina's testing mode (see the `retry_waits` fixture) the wait is real."""
    headers = {"Retry-After": "1"} if send_retry_after else {"X-RateLimit-Reset": "1"}
    fake.app.push(rate_limited(1, headers))
    result = await fb.upsert_contact(ADA)
    assert result.outcome == "created"
    assert retry_waits == [1.0]
    assert len(fake.requests) == 2


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_a_gateway_failure_is_replayed_because_the_upsert_is_idempotent(
    fb: FeaturebaseClient, fake: FeaturebaseFake, status: int
) -> None:
    fake.app.push(Fault("status", status=status, body={}))
    result = await fb.upsert_contact(ADA)
    assert result.outcome == "created"
    assert len(fake.requests) == 2


async def test_a_lasting_outage_is_unavailable_and_retryable_after_bounded_attempts(
    fb: FeaturebaseClient, fake: FeaturebaseFake
) -> None:
    fake.app.push(Fault("status", status=503, body={}, times=10))
    error = await upsert_error(fb)
    assert isinstance(error, ProviderUnavailable)
    assert (error.status, error.retryable) == (503, True)
    assert len(fake.requests) == FAST.retry_attempts


async def test_a_dropped_connection_is_replayed(fb: FeaturebaseClient, fake: FeaturebaseFake) -> None:
    fake.app.push(Fault("truncate"))
    result = await fb.upsert_contact(ADA)
    assert result.outcome == "created"
    assert len(fake.requests) == 2


async def test_a_slow_answer_is_replayed_after_the_read_timeout(fb: FeaturebaseClient, fake: FeaturebaseFake) -> None:
    fake.app.push(Fault("slow", delay=1.0))
    result = await fb.upsert_contact(ADA)
    assert result.id
    assert len(fake.requests) == 2


async def test_answers_that_never_come_are_a_retryable_timeout(fb: FeaturebaseClient, fake: FeaturebaseFake) -> None:
    fake.app.push(Fault("slow", delay=1.0, times=FAST.retry_attempts))
    error = await upsert_error(fb)
    assert isinstance(error, ProviderTimeout)
    assert error.retryable is True
    assert len(fake.requests) == FAST.retry_attempts


@pytest.mark.parametrize(
    ("fault", "phrase"),
    [
        pytest.param(Fault("malformed"), "not valid JSON", id="malformed-json"),
        pytest.param(Fault("wrong_type"), "content type text/html", id="wrong-content-type"),
        pytest.param(Fault("oversize", size=200_000), "larger than 64000 bytes", id="oversized-body"),
    ],
)
async def test_an_unreadable_success_is_a_provider_error_and_not_replayed(
    fb: FeaturebaseClient, fake: FeaturebaseFake, fault: Fault, phrase: str
) -> None:
    fake.app.push(fault)
    error = await upsert_error(fb)
    assert type(error) is ProviderError
    assert phrase in error.message
    assert len(fake.requests) == 1


async def test_a_refused_connection_is_unavailable_and_says_nothing_was_sent() -> None:
    client = make_client(f"http://127.0.0.1:{free_port()}")
    try:
        error = await upsert_error(client)
    finally:
        await client.aclose()
    assert isinstance(error, ProviderUnavailable)
    assert error.retryable is True
    assert error.hint == "The request was not sent; retry later"


# ---------- probe ----------


async def test_probe_looks_up_an_unknown_user_id_and_reads_the_404_as_healthy(
    fb: FeaturebaseClient, fake: FeaturebaseFake
) -> None:
    verdict = await fb.probe()
    assert "accepted the key and API version 2026-01-01.nova" in verdict
    [sent] = fake.requests
    assert sent.method == "GET"
    assert sent.path.startswith("/v2/contacts/by-user-id/contact-mcp-probe-")
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["featurebase-version"] == "2026-01-01.nova"


@pytest.mark.parametrize(
    ("setup", "kind"),
    [
        pytest.param({"api_key": "sk_wrong"}, Unauthorized, id="401"),
        pytest.param({"api_key": "sk_readonly"}, Unauthorized, id="403"),
        pytest.param({"api_version": "2025-12-12.clover"}, ProviderError, id="old-version"),
    ],
)
async def test_probe_fails_when_featurebase_refuses_the_key_or_version(
    base_url: str, fake: FeaturebaseFake, setup: dict[str, str], kind: type[ContactError]
) -> None:
    fake.state.forbidden_keys.add("sk_readonly")
    client = make_client(base_url, **setup)
    try:
        with pytest.raises(kind):
            await client.probe()
    finally:
        await client.aclose()


async def test_probe_fails_on_a_bare_404_from_something_that_is_not_featurebase(
    fb: FeaturebaseClient, fake: FeaturebaseFake
) -> None:
    fake.app.push(Fault("status", status=404, body={}))
    with pytest.raises(ProviderError, match="without its error envelope"):
        await fb.probe()


# ---------- secrets ----------


async def test_no_secret_appears_in_any_result_error_or_log_line(
    base_url: str, fake: FeaturebaseFake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.reset(identity_secret=SECRET)
    client = make_client(base_url, identity_secret=SECRET)
    seen: list[str] = []
    try:
        seen.append((await client.upsert_contact(ADA)).model_dump_json())
        seen.append(await client.probe())
        fake.app.push(rate_limited(10, {"Retry-After": "1"}))
        fake.app.push(fb_error(500, "api_error", "internal_error", "boom"))
        for _ in range(2):
            error = await upsert_error(client)
            seen.append(error.info().model_dump_json())
            seen.append(repr(error))
        fake.state.api_keys.clear()
        seen.append((await upsert_error(client)).info().model_dump_json())
    finally:
        await client.aclose()
    assert caplog.records, "the client logged at DEBUG, so the check below reads real lines"
    text = "\n".join([*seen, caplog.text])
    assert API_KEY not in text
    assert SECRET not in text


# ---------- configuration ----------


def test_from_settings_uses_the_key_base_url_version_and_identity_secret() -> None:
    settings = load_settings(
        providers="featurebase",
        featurebase_api_key=API_KEY,
        featurebase_base_url="http://127.0.0.1:9/",
        featurebase_api_version="2026-08-19.orbit",
        featurebase_identity_secret=SECRET,
        read_timeout_s=7,
    )
    client = FeaturebaseClient.from_settings(settings)
    assert client.base_url == "http://127.0.0.1:9"
    assert client.client.headers["featurebase-version"] == "2026-08-19.orbit"
    assert client.client.headers["authorization"] == f"Bearer {API_KEY}"
    assert client.options.read_timeout_s == 7
    assert client.user_hash("u1") == user_hash(SECRET, "u1")


def test_the_default_base_url_is_featurebases_host() -> None:
    client = FeaturebaseClient.from_settings(load_settings(featurebase_api_key=API_KEY))
    assert client.base_url == "https://do.featurebase.app"
    assert client.user_hash("u1") is None


@pytest.mark.parametrize(
    "version",
    [
        pytest.param("2025-12-12.clover", id="older"),
        pytest.param("nova", id="malformed"),
    ],
)
def test_the_server_refuses_to_start_with_an_api_version_that_cannot_serve_v2_contacts(version: str) -> None:
    settings = load_settings(providers="featurebase", featurebase_api_key=API_KEY, featurebase_api_version=version)
    with pytest.raises(ConfigError, match="FEATUREBASE_API_VERSION"):
        build_server(settings)


# ---------- the fake itself, where the client does not reach ----------


async def test_the_fake_serves_reads_and_deletes_with_rate_limit_headers_on_every_answer(
    base_url: str, fake: FeaturebaseFake
) -> None:
    seeded = fake.seed_contact(user_id="usr_9", email="nine@example.com")
    headers = {"Authorization": f"Bearer {API_KEY}", "Featurebase-Version": "2026-01-01.nova"}
    async with httpx2.AsyncClient(base_url=base_url, headers=headers) as http:
        answers = [
            await http.get(f"/v2/contacts/{seeded['id']}"),
            await http.get("/v2/contacts/by-user-id/usr_9"),
            await http.delete(f"/v2/contacts/{seeded['id']}"),
            await http.get(f"/v2/contacts/{seeded['id']}"),
            await http.get("/v2/contacts/not-an-object-id"),
            await http.get("/v2/contacts/by-user-id/usr_9", headers={"Authorization": "Bearer nope"}),
            await http.post("/v2/contacts", json={"email": "a@example.com"}, headers={"Featurebase-Version": ""}),
        ]
    assert [a.status_code for a in answers] == [200, 200, 200, 404, 400, 401, 400]
    assert answers[0].json()["userId"] == "usr_9"
    assert answers[2].json() == {"object": "contact", "id": seeded["id"], "deleted": True}
    assert answers[3].json()["error"]["type"] == "invalid_request_error"
    assert answers[6].json()["error"]["param"] == "Featurebase-Version"
    for answer in answers:
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(answer.headers)


# ---------- reads ----------


async def test_get_contact_maps_featurebases_contact(fb: FeaturebaseClient, fake: FeaturebaseFake) -> None:
    seeded = fake.seed_contact(
        user_id="usr_1",
        email="ada@example.com",
        name="Ada",
        phone="+14155550123",
        locale="en",
        roles=["role_vip"],
        customFields={"plan": "pro"},
        companies=[{"id": "comp_1", "name": "Acme", "plan": "enterprise", "monthlySpend": 5000}],
    )
    contact = await fb.get_contact(seeded["id"].upper())
    assert (contact.id, contact.user_id, contact.name, contact.locale) == (seeded["id"], "usr_1", "Ada", "en")
    assert (contact.roles, contact.custom_fields) == (["role_vip"], {"plan": "pro"})
    assert [(m.type, m.value) for m in contact.methods] == [("email", "ada@example.com"), ("phone", "+14155550123")]
    assert [(c.id, c.name, c.plan, c.monthly_spend) for c in contact.companies] == [
        ("comp_1", "Acme", "enterprise", 5000)
    ]


async def test_find_by_user_id_is_one_contact_or_none(fb: FeaturebaseClient, fake: FeaturebaseFake) -> None:
    seeded = fake.seed_contact(user_id="usr/1 x", email="ada@example.com")
    page = await fb.find_contacts(FindContactsInput(user_id="usr/1 x"))
    assert [(c.id, c.user_id, c.email) for c in page.contacts] == [(seeded["id"], "usr/1 x", "ada@example.com")]
    assert fake.app.requests[-1].path == "/v2/contacts/by-user-id/usr/1 x"
    assert (await fb.find_contacts(FindContactsInput(user_id="nobody"))).contacts == []


async def test_find_without_user_id_is_refused(fb: FeaturebaseClient, fake: FeaturebaseFake) -> None:
    with pytest.raises(ContactError) as info:
        await fb.find_contacts(FindContactsInput())
    assert (info.value.info().code.value, info.value.field) == ("invalid_argument", "user_id")
