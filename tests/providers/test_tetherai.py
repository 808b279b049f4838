"""Contract tests of `TetherAIClient` against the fake TetherAI instance over real HTTP on 127.0.0.1."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from contact_mcp.errors import ContactError, ErrorCode
from contact_mcp.models import FindContactsInput, MethodType, SetVerificationInput, VerificationResult
from contact_mcp.providers.http import HttpOptions
from contact_mcp.providers.tetherai import TetherAIClient, contact_values, verify_body
from tests.fakes.harness import Fault, serve
from tests.fakes.tetherai import TOKEN, TetherAIFake, user_id_for

pytestmark = pytest.mark.anyio

PROVIDER = "tetherai"

PHONE = "+14165550100"
OTHER_PHONE = "+14165550199"
EMAIL = "alex.morgan@example.com"
WHEN = "2026-05-20T15:04:01.135Z"
OPTIONS = HttpOptions(read_timeout_s=0.4, max_response_bytes=64_000, connect_timeout_s=2.0)
# One TLS context for the module: httpx2 builds a fresh one per client otherwise (~50 ms each), unused on loopback.
_TLS = ssl.create_default_context()


def make_client(base_url: str, api_key: str = TOKEN) -> TetherAIClient:
    return TetherAIClient(
        base_url=base_url, api_key=api_key, options=OPTIONS, transport=httpx2.AsyncHTTPTransport(verify=_TLS)
    )


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[TetherAIClient]:
    provider = make_client(base_url)
    yield provider
    await provider.aclose()


@pytest.fixture
def contact_id(fake: TetherAIFake) -> str:
    return fake.add_contact(phones=[PHONE, OTHER_PHONE], emails=[EMAIL])


def verify(
    contact_id: str,
    *,
    type: MethodType = "phone",
    value: str = PHONE,
    verified: bool = True,
    source: str | None = "admin-manual",
) -> SetVerificationInput:
    return SetVerificationInput(
        contact_id=contact_id,
        type=type,
        value=value,
        verified=verified,
        verified_at=WHEN if verified else None,
        verification_source=source if verified else None,
    )


async def failure(client: TetherAIClient, call: SetVerificationInput) -> ContactError:
    with pytest.raises(ContactError) as caught:
        await client.set_verification(call)
    return caught.value


# ---------- the request sent ----------


async def test_verify_sends_documented_patch_with_bearer_token(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str
) -> None:
    await client.set_verification(verify(contact_id))

    (sent,) = fake.requests
    assert sent.method == "PATCH"
    assert sent.path == f"/api/contacts/{contact_id}/verify-contact-methods"
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {"type": "phone", "value": PHONE, "verifiedAt": WHEN, "verificationSource": "admin-manual"}


async def test_verify_without_source_sends_no_verification_source(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str
) -> None:
    result = await client.set_verification(verify(contact_id, type="email", value=EMAIL, source=None))

    assert fake.requests[0].json() == {"type": "email", "value": EMAIL, "verifiedAt": WHEN}
    assert result.verification_source is None
    assert "verification_source" not in result.structured()


async def test_clearing_sends_null_verified_at_and_no_source(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str
) -> None:
    await client.set_verification(verify(contact_id))
    await client.set_verification(verify(contact_id, verified=False))

    assert fake.requests[1].json() == {"type": "phone", "value": PHONE, "verifiedAt": None}


def test_verify_body_stamps_now_when_verified_at_is_missing() -> None:
    call = SetVerificationInput("a" * 24, "phone", PHONE, verified=True, verified_at=None, verification_source=None)
    body = verify_body(call)
    assert isinstance(body["verifiedAt"], str)
    assert body["verifiedAt"].endswith("Z")


async def test_upper_case_contact_id_is_sent_lower_cased(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str
) -> None:
    result = await client.set_verification(verify(contact_id.upper()))

    assert fake.requests[0].path == f"/api/contacts/{contact_id}/verify-contact-methods"
    assert result.contact_id == contact_id


@pytest.mark.parametrize(
    "bad_id",
    [
        pytest.param("64b2c3d4e5f60012345678a", id="23-chars"),
        pytest.param("64b2c3d4e5f60012345678aaa", id="25-chars"),
        pytest.param("64b2c3d4e5f60012345678ag", id="non-hex"),
        pytest.param("", id="empty"),
        pytest.param("../../api/contacts?page=1", id="path-traversal"),
        pytest.param("64b2c3d4e5f6/012345678aa", id="slash"),
        pytest.param("64b2c3d4e5f6\n12345678aab", id="newline-inside"),
        pytest.param("64b2c3d4e5f6%2F12345678aa", id="percent-encoded"),
    ],
)
async def test_invalid_contact_id_is_refused_before_any_request(
    client: TetherAIClient, fake: TetherAIFake, bad_id: str
) -> None:
    error = await failure(client, verify(bad_id))

    assert error.code is ErrorCode.INVALID_ARGUMENT
    assert error.field == "contact_id"
    assert fake.requests == []


# ---------- the result ----------


async def test_verify_maps_the_touched_entry(client: TetherAIClient, fake: TetherAIFake, contact_id: str) -> None:
    result = await client.set_verification(verify(contact_id))

    assert result == VerificationResult(
        provider="tetherai",
        message="Phone number verified",
        contact_id=contact_id,
        type="phone",
        value=PHONE,
        verified=True,
        verified_at=WHEN,
        verified_by=user_id_for(TOKEN),
        verification_source="admin-manual",
    )
    stored = fake.entry(contact_id, "phone", PHONE)
    assert (stored["verifiedAt"], stored["verifiedBy"], stored["verificationSource"]) == (
        WHEN,
        user_id_for(TOKEN),
        "admin-manual",
    )
    assert fake.entry(contact_id, "phone", OTHER_PHONE)["verifiedAt"] is None


async def test_clearing_reports_unverified_and_clears_all_three_fields(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str
) -> None:
    await client.set_verification(verify(contact_id))
    result = await client.set_verification(verify(contact_id, verified=False))

    assert result.structured() == {
        "provider": "tetherai",
        "message": "Phone number verification cleared",
        "contact_id": contact_id,
        "type": "phone",
        "value": PHONE,
        "verified": False,
    }
    stored = fake.entry(contact_id, "phone", PHONE)
    assert (stored["verifiedAt"], stored["verifiedBy"], stored["verificationSource"]) == (None, None, None)


@pytest.mark.parametrize(
    ("kind", "value", "verified", "message"),
    [
        pytest.param("phone", PHONE, True, "Phone number verified", id="phone-set"),
        pytest.param("phone", PHONE, False, "Phone number verification cleared", id="phone-clear"),
        pytest.param("email", EMAIL, True, "Email verified", id="email-set"),
        pytest.param("email", EMAIL, False, "Email verification cleared", id="email-clear"),
    ],
)
async def test_message_is_kept_exactly(
    client: TetherAIClient, contact_id: str, kind: MethodType, value: str, verified: bool, message: str
) -> None:
    result = await client.set_verification(verify(contact_id, type=kind, value=value, verified=verified))

    assert result.message == message
    assert result.verified is verified


async def test_verifying_twice_is_harmless(client: TetherAIClient, fake: TetherAIFake, contact_id: str) -> None:
    first = await client.set_verification(verify(contact_id))
    second = await client.set_verification(verify(contact_id))

    assert first == second


def _answer(contact_id: str, *, message: str = "Phone number verified", entries: list[Any] | None = None) -> Any:
    phone = entries if entries is not None else [{"value": PHONE, "verifiedAt": WHEN, "verifiedBy": "u" * 24}]
    return {"message": message, "data": {"contact": {"_id": contact_id, "phoneNumber": phone}}}


async def test_populated_verified_by_is_read_as_its_id(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str
) -> None:
    populated = [{"value": PHONE, "verifiedAt": WHEN, "verifiedBy": {"_id": "b" * 24, "fullName": "Super Admin"}}]
    fake.app.push(Fault("status", status=200, body=_answer(contact_id, entries=populated)))

    result = await client.set_verification(verify(contact_id))

    assert result.verified_by == "b" * 24


@pytest.mark.parametrize(
    ("body_of", "says"),
    [
        pytest.param(lambda cid: _answer(cid, message="Phone verified"), "not one of the documented four", id="msg"),
        pytest.param(lambda cid: {"message": "Phone number verified"}, "lacks message or data", id="no-data"),
        pytest.param(lambda cid: _answer(cid, entries=[{"value": OTHER_PHONE}]), "does not list", id="no-entry"),
        pytest.param(lambda cid: [1, 2], "lacks message or data", id="not-object"),
        pytest.param(lambda cid: _answer(cid, entries=[{"value": 7}]), "lacks message or data", id="bad-entry"),
    ],
)
async def test_unexpected_success_body_is_a_provider_error(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str, body_of: Any, says: str
) -> None:
    fake.app.push(Fault("status", status=200, body=body_of(contact_id)))

    error = await failure(client, verify(contact_id))

    assert error.code is ErrorCode.PROVIDER_ERROR
    assert says in error.message
    assert error.hint is not None
    assert "again is safe" in error.hint


# ---------- errors from the provider ----------


async def test_wrong_token_is_unauthorized_and_not_retried(base_url: str, fake: TetherAIFake, contact_id: str) -> None:
    provider = make_client(base_url, "wrong-token")
    try:
        error = await failure(provider, verify(contact_id))
    finally:
        await provider.aclose()

    assert error.code is ErrorCode.UNAUTHORIZED
    assert (error.status, error.message) == (401, "Unauthorized: invalid or missing token")
    assert error.hint is not None
    assert "TETHERAI_API_KEY" in error.hint
    assert len(fake.requests) == 1


async def test_unknown_contact_is_not_found_naming_contact_id(client: TetherAIClient, fake: TetherAIFake) -> None:
    error = await failure(client, verify("ffffffffffffffffffffffff"))

    assert error.code is ErrorCode.NOT_FOUND
    assert (error.status, error.message, error.field) == (404, "Contact not found", "contact_id")
    assert error.hint is not None
    assert "contact_id" in error.hint
    assert len(fake.requests) == 1


async def test_value_not_on_contact_lists_the_contacts_values(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str
) -> None:
    error = await failure(client, verify(contact_id, value="+14165550123"))

    assert error.code is ErrorCode.INVALID_ARGUMENT
    assert (error.status, error.field) == (400, "value")
    assert error.message == "Phone number not found on this contact"
    assert error.hint == f"value must be one of the contact's phone numbers: {PHONE}, {OTHER_PHONE}"
    assert [(r.method, r.path) for r in fake.requests] == [
        ("PATCH", f"/api/contacts/{contact_id}/verify-contact-methods"),
        ("GET", f"/api/contacts/{contact_id}"),
    ]


async def test_value_refused_on_contact_without_such_methods_says_so(
    client: TetherAIClient, fake: TetherAIFake
) -> None:
    contact_id = fake.add_contact(phones=[PHONE])

    error = await failure(client, verify(contact_id, type="email", value=EMAIL))

    assert error.field == "value"
    assert error.hint == "The contact has no email addresses; add the email to the contact first"


async def test_value_refused_when_the_lookup_fails_keeps_a_generic_hint(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str
) -> None:
    refusal = {"error": {"code": "VALUE_NOT_FOUND", "message": "Phone number not found on this contact"}}
    fake.app.push(Fault("status", status=400, body=refusal, path_contains="verify-contact-methods"))
    fake.app.push(Fault("status", status=500, body={"message": "boom"}, path_contains=contact_id))

    error = await failure(client, verify(contact_id))

    assert error.code is ErrorCode.INVALID_ARGUMENT
    assert error.hint == (
        f"value must be one of the contact's phone numbers (GET /api/contacts/{contact_id} lists them)"
    )
    assert len(fake.requests) == 2


async def test_hint_lists_at_most_ten_values(client: TetherAIClient, fake: TetherAIFake) -> None:
    emails = [f"person{i}@example.com" for i in range(12)]
    contact_id = fake.add_contact(emails=emails)

    error = await failure(client, verify(contact_id, type="email", value="nobody@example.com"))

    assert error.hint is not None
    assert error.hint.endswith("person9@example.com and 2 more")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"data": {"contact": {"phoneNumber": [{"value": PHONE}]}}}, [PHONE], id="entries"),
        pytest.param({"data": {"phoneNumber": PHONE}}, [PHONE], id="legacy-string"),
        pytest.param({"data": {"contact": {"phoneNumber": [PHONE, OTHER_PHONE]}}}, [PHONE, OTHER_PHONE], id="strs"),
        pytest.param({"data": {"contact": {}}}, [], id="none"),
        pytest.param({"message": "x"}, [], id="no-data"),
        pytest.param("text", [], id="not-object"),
    ],
)
def test_contact_values_reads_every_documented_shape(body: Any, expected: list[str]) -> None:
    assert contact_values(body, "phone") == expected


@pytest.mark.parametrize(
    ("status", "code"),
    [
        pytest.param(400, ErrorCode.INVALID_ARGUMENT, id="400"),
        pytest.param(401, ErrorCode.UNAUTHORIZED, id="401"),
        pytest.param(403, ErrorCode.UNAUTHORIZED, id="403"),
        pytest.param(404, ErrorCode.NOT_FOUND, id="404"),
        pytest.param(409, ErrorCode.CONFLICT, id="409"),
        pytest.param(422, ErrorCode.INVALID_ARGUMENT, id="422"),
        pytest.param(500, ErrorCode.PROVIDER_ERROR, id="500"),
    ],
)
@pytest.mark.parametrize(
    "envelope",
    [
        pytest.param(lambda m: {"message": m, "code": "SOME_CODE"}, id="flat"),
        pytest.param(lambda m: {"error": {"code": "SOME_CODE", "message": m}}, id="nested"),
    ],
)
async def test_both_error_envelopes_map_with_the_providers_message(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str, status: int, code: ErrorCode, envelope: Any
) -> None:
    fake.app.push(Fault("status", status=status, body=envelope("what TetherAI said"), path_contains="verify"))

    error = await failure(client, verify(contact_id))

    assert error.code is code
    assert (error.status, error.message, error.provider) == (status, "what TetherAI said", "tetherai")
    assert sum(r.method == "PATCH" for r in fake.requests) == 1


async def test_error_envelope_naming_a_field_keeps_it(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str
) -> None:
    body = {"error": {"code": "VALIDATION_ERROR", "message": "verifiedAt is invalid", "field": "verifiedAt"}}
    fake.app.push(Fault("status", status=400, body=body))

    error = await failure(client, verify(contact_id))

    assert (error.field, error.message) == ("verifiedAt", "verifiedAt is invalid")
    assert len(fake.requests) == 1  # no lookup of values when the refusal is not about value


# ---------- faults and retries ----------


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        pytest.param(429, {"Retry-After": "0"}, id="429-retry-after"),
        pytest.param(429, {}, id="429"),
        pytest.param(502, {}, id="502"),
        pytest.param(503, {}, id="503"),
        pytest.param(504, {}, id="504"),
    ],
)
async def test_transient_status_is_replayed_once_then_succeeds(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str, status: int, headers: dict[str, str]
) -> None:
    fake.app.push(Fault("status", status=status, body={"message": "busy"}, headers=headers))

    result = await client.set_verification(verify(contact_id))

    assert result.verified is True
    assert [r.method for r in fake.requests] == ["PATCH", "PATCH"]
    assert fake.requests[0].body == fake.requests[1].body


@pytest.mark.parametrize(
    ("status", "code"),
    [
        pytest.param(429, ErrorCode.RATE_LIMITED, id="429"),
        pytest.param(503, ErrorCode.PROVIDER_UNAVAILABLE, id="503"),
    ],
)
async def test_persistent_transient_status_gives_up_after_the_attempt_limit(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str, status: int, code: ErrorCode
) -> None:
    body = {"error": {"code": "TOO_MANY", "message": "slow down"}}
    fake.app.push(Fault("status", status=status, body=body, headers={"Retry-After": "0"}, times=10))

    error = await failure(client, verify(contact_id))

    assert error.code is code
    assert error.retryable is True
    assert error.message == "slow down"
    assert len(fake.requests) == OPTIONS.retry_attempts


async def test_retry_after_beyond_the_deadline_is_reported_not_waited(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str
) -> None:
    fake.app.push(Fault("status", status=429, body={"message": "Too many requests"}, headers={"Retry-After": "120"}))

    error = await failure(client, verify(contact_id))

    assert error.code is ErrorCode.RATE_LIMITED
    assert (error.retry_after_s, error.retryable) == (120.0, True)
    assert len(fake.requests) == 1


async def test_500_is_not_replayed_but_marked_retryable(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str
) -> None:
    fake.app.push(Fault("status", status=500, body={"message": "Internal server error"}))

    error = await failure(client, verify(contact_id))

    assert (error.code, error.retryable) == (ErrorCode.PROVIDER_ERROR, True)
    assert len(fake.requests) == 1


async def test_retry_after_is_honoured_with_a_real_wait(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str, retry_waits: list[float]
) -> None:
    fake.app.push(Fault("status", status=429, body={"message": "Too many requests"}, headers={"Retry-After": "1"}))

    result = await client.set_verification(verify(contact_id))

    assert result.verified is True
    assert retry_waits == [1.0]
    assert len(fake.requests) == 2


async def test_slow_answer_times_out_and_is_replayed(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str
) -> None:
    fake.app.push(Fault("slow", delay=1.0))

    result = await client.set_verification(verify(contact_id))

    assert result.verified is True
    assert len(fake.requests) == 2


async def test_persistently_slow_provider_is_a_retryable_timeout(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str
) -> None:
    fake.app.push(Fault("slow", delay=1.0, times=OPTIONS.retry_attempts))

    error = await failure(client, verify(contact_id))

    assert (error.code, error.retryable) == (ErrorCode.TIMEOUT, True)
    assert error.hint is None  # replaying the PATCH is safe, so there is no unknown outcome to check
    assert len(fake.requests) == OPTIONS.retry_attempts


async def test_dropped_connection_is_replayed(client: TetherAIClient, fake: TetherAIFake, contact_id: str) -> None:
    fake.app.push(Fault("truncate"))

    result = await client.set_verification(verify(contact_id))

    assert result.verified is True
    assert len(fake.requests) == 2


async def test_persistently_dropped_connection_is_provider_unavailable(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str
) -> None:
    fake.app.push(Fault("truncate", times=OPTIONS.retry_attempts))

    error = await failure(client, verify(contact_id))

    assert (error.code, error.retryable) == (ErrorCode.PROVIDER_UNAVAILABLE, True)
    assert len(fake.requests) == OPTIONS.retry_attempts


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        pytest.param(Fault("malformed"), "not valid JSON", id="malformed"),
        pytest.param(Fault("wrong_type"), "content type text/html", id="wrong-type"),
        pytest.param(Fault("oversize", size=200_000), "larger than 64000 bytes", id="oversize"),
    ],
)
async def test_unreadable_answer_is_a_provider_error_not_replayed(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str, fault: Fault, says: str
) -> None:
    fake.app.push(fault)

    error = await failure(client, verify(contact_id))

    assert error.code is ErrorCode.PROVIDER_ERROR
    assert says in error.message
    assert len(fake.requests) == 1


async def test_unreachable_instance_is_provider_unavailable() -> None:
    with serve(TetherAIFake().app) as closed_url:
        pass  # the server has stopped: nothing listens on its port any more
    provider = make_client(closed_url)
    try:
        error = await failure(provider, verify("a" * 24))
    finally:
        await provider.aclose()

    assert (error.code, error.retryable) == (ErrorCode.PROVIDER_UNAVAILABLE, True)
    assert error.message.startswith("could not connect to TetherAI")


# ---------- probe ----------


async def test_probe_lists_one_contact_with_the_token(client: TetherAIClient, fake: TetherAIFake) -> None:
    verdict = await client.probe()

    assert "token accepted" in verdict
    (sent,) = fake.requests
    assert (sent.method, sent.path, sent.query) == ("GET", "/api/contacts", "page=1&size=1")
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"


async def test_probe_with_wrong_token_raises_unauthorized(base_url: str, fake: TetherAIFake) -> None:
    provider = make_client(base_url, "nope")
    try:
        with pytest.raises(ContactError) as caught:
            await provider.probe()
    finally:
        await provider.aclose()

    assert caught.value.code is ErrorCode.UNAUTHORIZED


async def test_probe_against_a_wrong_base_url_names_the_variable(fake: TetherAIFake, base_url: str) -> None:
    provider = make_client(f"{base_url}/not-the-root")
    try:
        with pytest.raises(ContactError) as caught:
            await provider.probe()
    finally:
        await provider.aclose()

    assert (caught.value.code, caught.value.status) == (ErrorCode.PROVIDER_ERROR, 404)
    assert caught.value.hint is not None
    assert "TETHERAI_BASE_URL" in caught.value.hint


async def test_a_base_url_with_credentials_is_shown_masked(fake: TetherAIFake, base_url: str) -> None:
    """The bare-404 message names the host; the URL's user:password and query string stay out of it."""
    host = base_url.removeprefix("http://")
    provider = make_client(f"http://ops:url-password-42@{host}/not-the-root?sig=query-secret-9")
    try:
        with pytest.raises(ContactError) as caught:
            await provider.probe()
    finally:
        await provider.aclose()
    assert (
        caught.value.message
        == f"TetherAI has no endpoint at this path (HTTP 404 from http://***@{host}/not-the-root?***)"
    )
    assert "url-password-42" not in str(caught.value.info()) and "query-secret-9" not in str(caught.value.info())


async def test_bare_404_is_a_base_url_problem_not_an_unknown_contact(
    base_url: str, fake: TetherAIFake, contact_id: str
) -> None:
    provider = make_client(f"{base_url}/tenant")
    try:
        error = await failure(provider, verify(contact_id))
    finally:
        await provider.aclose()

    assert (error.code, error.status, error.field) == (ErrorCode.PROVIDER_ERROR, 404, None)
    assert error.hint is not None
    assert "TETHERAI_BASE_URL" in error.hint


# ---------- secrets ----------


async def test_token_never_appears_in_results_errors_or_logs(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    seen.append(str((await client.set_verification(verify(contact_id))).structured()))
    fake.app.push(Fault("status", status=503, body={"message": "down"}, times=10))
    for call in (verify(contact_id), verify(contact_id, value="+14165550123"), verify("f" * 24)):
        error = await failure(client, call)
        seen.append(str(error.info().model_dump()))
        fake.app.clear()

    assert caplog.records, "expected DEBUG records from the HTTP layer"
    for text in [*seen, caplog.text, repr(client)]:
        assert TOKEN not in text


# ---------- the fake itself (so the contract above rests on a faithful server) ----------


async def test_fake_normalises_values_and_offers_the_documented_neighbours(base_url: str, fake: TetherAIFake) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx2.AsyncClient(base_url=base_url, headers=auth) as http:
        created = await http.post(
            "/api/contact",
            json={"phoneNumber": "(416) 555-0100", "firstName": "Alex", "lastName": "Morgan", "email": "A@X.example"},
        )
        contact = created.json()["data"]["contact"]
        verified = await http.patch(
            f"/api/contacts/{contact['_id']}/verify-contact-methods",
            json={"type": "email", "value": "a@x.EXAMPLE", "verifiedAt": WHEN},
        )
        duplicate = await http.post("/api/contact", json={"phoneNumber": "+1 416 555 0100"})
        listed = await http.get("/api/contacts", params={"page": "1", "size": "1"})
        fetched = await http.get(f"/api/contacts/{contact['_id']}")
        anonymous = await http.get("/api/contacts", headers={"Authorization": ""})

    assert created.status_code == 201
    assert (contact["phoneNumber"][0]["value"], contact["email"][0]["value"]) == (PHONE, "a@x.example")
    assert (verified.status_code, verified.json()["message"]) == (200, "Email verified")
    assert duplicate.status_code == 409
    assert "error" in duplicate.json()
    assert (listed.status_code, listed.json()["total"], len(listed.json()["data"])) == (200, 1, 1)
    assert fetched.json()["data"]["contact"]["email"][0]["verifiedBy"] == user_id_for(TOKEN)
    assert anonymous.status_code == 401
    assert anonymous.json() == {"message": "Unauthorized: invalid or missing token", "code": "UNAUTHORIZED"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param({"type": "fax", "value": PHONE}, 400, "INVALID_TYPE", id="bad-type"),
        pytest.param({"type": "phone"}, 400, "VALIDATION_ERROR", id="no-value"),
        pytest.param({"type": "phone", "value": "12"}, 400, "INVALID_PHONE", id="bad-phone"),
        pytest.param({"type": "phone", "value": PHONE, "verifiedAt": "soon"}, 400, "VALIDATION_ERROR", id="bad-at"),
        pytest.param({"type": "phone", "value": OTHER_PHONE}, 400, "VALUE_NOT_FOUND", id="not-on-contact"),
    ],
)
async def test_fake_validates_the_verify_body(
    base_url: str, fake: TetherAIFake, body: dict[str, Any], status: int, code: str
) -> None:
    contact_id = fake.add_contact(phones=[PHONE])
    async with httpx2.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        answer = await http.patch(f"/api/contacts/{contact_id}/verify-contact-methods", json=body)

    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code


async def test_fake_clears_when_verified_at_is_omitted(base_url: str, fake: TetherAIFake) -> None:
    contact_id = fake.add_contact(phones=[PHONE])
    path = f"/api/contacts/{contact_id}/verify-contact-methods"
    async with httpx2.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        await http.patch(path, json={"type": "phone", "value": PHONE, "verifiedAt": WHEN, "verificationSource": "x"})
        cleared = await http.patch(path, json={"type": "phone", "value": "416-555-0100"})

    assert cleared.json()["message"] == "Phone number verification cleared"
    assert fake.entry(contact_id, "phone", PHONE)["verificationSource"] is None


# ---------- reads ----------


async def test_get_contact_maps_entries_with_primary_and_verification(
    client: TetherAIClient, fake: TetherAIFake, contact_id: str
) -> None:
    await client.set_verification(verify(contact_id))
    contact = await client.get_contact(contact_id.upper())
    assert (contact.id, contact.name) == (contact_id, "Alex Morgan")
    phones = [(m.value, m.primary, m.verified) for m in contact.methods if m.type == "phone"]
    assert phones == [(PHONE, True, True), (OTHER_PHONE, False, False)]
    (email,) = [m for m in contact.methods if m.type == "email"]
    assert (email.value, email.verified, email.id, email.raw_value) == (EMAIL, False, None, None)


async def test_find_lists_pages_by_page_and_size(client: TetherAIClient, fake: TetherAIFake) -> None:
    ids = [fake.add_contact(first_name=f"C{n}", emails=[f"c{n}@example.com"]) for n in range(3)]
    first = await client.find_contacts(FindContactsInput(limit=2))
    assert fake.requests[-1].query == "page=1&size=2"
    assert [c.email for c in first.contacts] == ["c0@example.com", "c1@example.com"]
    second = await client.find_contacts(FindContactsInput(limit=2, cursor=first.next_cursor))
    assert fake.requests[-1].query == "page=2&size=2"
    assert [c.id for c in first.contacts + second.contacts] == ids and second.next_cursor is None
