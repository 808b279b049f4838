"""The Feather fake behaves as Feather's docs say, checked with raw HTTP (no client of ours in the way)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from tests.fakes.feather import API_KEY, ORG_NAME, UNAUTHORIZED_BODY, FeatherFake

pytestmark = pytest.mark.anyio

PROVIDER = "feather"


@pytest.fixture
async def http(fake: FeatherFake, base_url: str) -> AsyncIterator[httpx2.AsyncClient]:
    fake.reset()
    async with httpx2.AsyncClient(base_url=base_url, headers={"x-api-key": API_KEY}) as client:
        yield client


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-api-key": "fth_live_wrong"}, {"Authorization": f"Bearer {API_KEY}"}],
    ids=["missing", "wrong", "bearer-instead-of-x-api-key"],
)
async def test_every_endpoint_refuses_without_the_key_in_x_api_key(
    fake: FeatherFake, base_url: str, headers: dict[str, str]
) -> None:
    end_user = fake.add_end_user()
    async with httpx2.AsyncClient(base_url=base_url, headers=headers) as anonymous:
        answers = [
            await anonymous.get("/v1/identity/whoami"),
            await anonymous.get(f"/v1/identity/end-users/{end_user}"),
            await anonymous.post(
                f"/v1/identity/end-users/{end_user}/contacts", json={"channel": "email", "value": "a@b.co"}
            ),
        ]
    assert fake.end_users[end_user].contacts == []
    assert [(r.status_code, r.json()) for r in answers] == [(401, UNAUTHORIZED_BODY)] * 3


async def test_whoami_names_the_organization(http: httpx2.AsyncClient) -> None:
    answer = await http.get("/v1/identity/whoami")
    assert answer.status_code == 200
    assert answer.json()["organization_name"] == ORG_NAME


@pytest.mark.parametrize(
    ("channel", "value", "kind", "normalized"),
    [
        ("email", "  Jane.Doe@Example.COM ", "email", "jane.doe@example.com"),
        ("phone", "+1 (415) 555-0123", "phone", "+14155550123"),
        ("whatsapp", "+44 20 7946 0958", "whatsapp", "+442079460958"),
        ("slack", "  U024BE7LH ", "slack", "U024BE7LH"),
        ("telegram", "  @someone  ", None, "@someone"),
    ],
    ids=["email-lowercased", "phone-e164", "whatsapp-e164", "handle-trimmed", "unknown-channel-untyped"],
)
async def test_add_contact_normalises_typed_channels_only(
    http: httpx2.AsyncClient, fake: FeatherFake, channel: str, value: str, kind: str | None, normalized: str
) -> None:
    end_user = fake.add_end_user()
    answer = await http.post(f"/v1/identity/end-users/{end_user}/contacts", json={"channel": channel, "value": value})
    assert answer.status_code == 201
    body = answer.json()
    assert (body["channel"], body["type"], body["raw_value"], body["normalized_value"]) == (
        channel,
        kind,
        value,
        normalized,
    )
    assert set(body) == {"uid", "channel", "type", "raw_value", "normalized_value", "verification_method"}


async def test_readding_the_same_value_answers_201_with_the_existing_contact(
    http: httpx2.AsyncClient, fake: FeatherFake
) -> None:
    end_user = fake.add_end_user()
    path = f"/v1/identity/end-users/{end_user}/contacts"
    first = await http.post(path, json={"channel": "email", "value": "a@example.com"})
    again = await http.post(path, json={"channel": "email", "value": " A@Example.com"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["uid"] == first.json()["uid"]
    assert len(fake.end_users[end_user].contacts) == 1


async def test_get_end_user_lists_its_contacts(http: httpx2.AsyncClient, fake: FeatherFake) -> None:
    end_user = fake.add_end_user(display_name="Jane")
    seeded = fake.add_contact(end_user, "sms", "+14155550123", verification_method="otp")
    answer = await http.get(f"/v1/identity/end-users/{end_user}")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["uid"], body["display_name"], body["status"]) == (end_user, "Jane", "active")
    assert body["contacts"] == [seeded.as_json()]


@pytest.mark.parametrize("method", ["GET", "POST"], ids=["get-end-user", "add-contact"])
async def test_unknown_end_user_is_404_not_found(http: httpx2.AsyncClient, method: str) -> None:
    path = "/v1/identity/end-users/8e0c1f4a-0000-4000-8000-000000000000"
    if method == "POST":
        answer = await http.post(path + "/contacts", json={"channel": "email", "value": "a@example.com"})
    else:
        answer = await http.get(path)
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"


@pytest.mark.parametrize("method", ["GET", "POST"], ids=["get-end-user", "add-contact"])
async def test_non_uuid_end_user_id_is_422_on_the_path(http: httpx2.AsyncClient, method: str) -> None:
    path = "/v1/identity/end-users/not-a-uuid"
    if method == "POST":
        answer = await http.post(path + "/contacts", json={"channel": "email", "value": "a@example.com"})
    else:
        answer = await http.get(path)
    assert answer.status_code == 422
    (item,) = answer.json()["detail"]
    assert (item["loc"], item["type"], item["input"]) == (["path", "end_user_id"], "uuid_parsing", "not-a-uuid")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"value": "a@example.com"}, [(["body", "channel"], "missing")]),
        ({}, [(["body", "channel"], "missing"), (["body", "value"], "missing")]),
        ({"channel": "email", "value": 42}, [(["body", "value"], "string_type")]),
        (["email"], [(["body"], "model_attributes_type")]),
    ],
    ids=["missing-channel", "empty-object", "value-not-a-string", "not-an-object"],
)
async def test_invalid_body_is_fastapi_422(
    http: httpx2.AsyncClient, fake: FeatherFake, body: object, expected: list[tuple[list[str], str]]
) -> None:
    answer = await http.post(f"/v1/identity/end-users/{fake.add_end_user()}/contacts", json=body)
    assert answer.status_code == 422
    assert [(item["loc"], item["type"]) for item in answer.json()["detail"]] == expected


async def test_path_and_body_problems_come_in_one_422(http: httpx2.AsyncClient) -> None:
    answer = await http.post("/v1/identity/end-users/nope/contacts", json={"channel": "email"})
    assert [item["loc"] for item in answer.json()["detail"]] == [["path", "end_user_id"], ["body", "value"]]


async def test_body_that_is_not_json_is_422(http: httpx2.AsyncClient, fake: FeatherFake) -> None:
    answer = await http.post(
        f"/v1/identity/end-users/{fake.add_end_user()}/contacts",
        content=b"{nope",
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    ("channel", "value"),
    [("email", "not-an-email"), ("phone", "555-0123"), ("sms", "+1 555"), ("slack", "   ")],
    ids=["bad-email", "phone-without-country-code", "short-phone", "blank-handle"],
)
async def test_value_unusable_for_its_channel_is_400_bad_request(
    http: httpx2.AsyncClient, fake: FeatherFake, channel: str, value: str
) -> None:
    end_user = fake.add_end_user()
    answer = await http.post(f"/v1/identity/end-users/{end_user}/contacts", json={"channel": channel, "value": value})
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_request"
    assert fake.end_users[end_user].contacts == []


async def test_unknown_route_uses_the_flat_envelope(http: httpx2.AsyncClient) -> None:
    answer = await http.get("/v1/identity/nowhere")
    assert (answer.status_code, answer.json()["error"]) == (404, "not_found")


async def test_end_user_list_filters_pages_and_refuses_a_foreign_cursor(
    http: httpx2.AsyncClient, fake: FeatherFake
) -> None:
    first = fake.add_end_user(external_id="crm-1")
    second = fake.add_end_user(external_id="crm-2")
    page = (await http.get("/v1/identity/end-users", params={"limit": 1})).json()
    assert [u["uid"] for u in page["items"]] == [first] and page["has_more"] is True
    assert set(page["items"][0]) == {
        "uid",
        "org_id",
        "status",
        "display_name",
        "primary_email",
        "primary_phone",
        "metadata",
        "org_external_end_user_id",
        "merged_into",
    }
    rest = (await http.get("/v1/identity/end-users", params={"limit": 1, "cursor": page["next_cursor"]})).json()
    assert ([u["uid"] for u in rest["items"]], rest["has_more"], rest["next_cursor"]) == ([second], False, None)
    only = (await http.get("/v1/identity/end-users", params={"org_external_end_user_id": "crm-2"})).json()
    assert [u["uid"] for u in only["items"]] == [second]
    refused = await http.get("/v1/identity/end-users", params={"cursor": "nope"})
    assert (refused.status_code, refused.json()["error"]) == (400, "bad_request")
    too_many = await http.get("/v1/identity/end-users", params={"limit": 201})
    assert too_many.status_code == 422 and too_many.json()["detail"][0]["loc"] == ["query", "limit"]
