"""What every provider client must do, run once per provider against its fake on 127.0.0.1: reads that find and
miss, ids and filters refused before any request, forged cursors, and the failures every API can have (refused
key, rate limit, server errors, timeouts, oversized, malformed or non-JSON answers), with our secrets scrubbed from
whatever the provider says. A provider's own quirks are tested in its own `test_<provider>.py`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from contact_mcp import load_settings
from contact_mcp.errors import ErrorCode
from contact_mcp.models import FindContactsInput
from contact_mcp.providers import provider_class
from contact_mcp.providers.http import HttpProvider
from contact_mcp.redact import REDACTED
from tests.fakes.harness import Fault
from tests.providers.cases import ProviderCase, failure, push, requests

pytestmark = pytest.mark.anyio


# ---------- reads ----------


async def test_get_contact_returns_the_canonical_contact(case: ProviderCase, fake: Any, client: HttpProvider) -> None:
    seeded = case.seed(fake, 1)
    contact = await client.get_contact(seeded.id)
    assert contact.provider == case.name
    assert contact.model_dump(include=set(seeded.expected)) == seeded.expected


async def test_find_contacts_finds_the_seeded_contact(case: ProviderCase, fake: Any, client: HttpProvider) -> None:
    seeded = case.seed(fake, 1)
    case.seed(fake, 2)
    page = await client.find_contacts(seeded.find)
    assert page.provider == case.name
    assert seeded.id in [c.id for c in page.contacts]


async def test_unknown_id_is_not_found_on_contact_id(case: ProviderCase, fake: Any, client: HttpProvider) -> None:
    error = await failure(client.get_contact(case.missing_id))
    info = error.info()
    assert (info.code, info.field, info.provider, info.status) == (ErrorCode.NOT_FOUND, "contact_id", case.name, 404)
    assert info.hint and "find_contacts" in info.hint


async def test_malformed_id_is_refused_before_any_request(case: ProviderCase, fake: Any, client: HttpProvider) -> None:
    info = (await failure(client.get_contact(case.bad_id))).info()
    assert (info.code, info.field, info.provider) == (ErrorCode.INVALID_ARGUMENT, "contact_id", case.name)
    assert requests(fake) == []


async def test_a_filter_the_api_cannot_serve_is_refused_naming_those_it_can(
    case: ProviderCase, fake: Any, client: HttpProvider
) -> None:
    call = replace(FindContactsInput(), **{case.unsupported: "x@example.com"})
    info = (await failure(client.find_contacts(call))).info()
    assert (info.code, info.field, info.provider) == (ErrorCode.INVALID_ARGUMENT, case.unsupported, case.name)
    served = case.client_class.find_filters
    assert info.hint is not None
    assert all(name in info.hint for name in served)
    assert requests(fake) == []


async def test_a_forged_cursor_is_invalid_argument(case: ProviderCase, fake: Any, client: HttpProvider) -> None:
    seeded = case.seed(fake, 1)
    for forged in ("OTk5OTk5OTk5OTk5OTk5OTk5OQ", "not base64 !", "WyJvdGhlciIsInBhZ2UiLDJd"):
        info = (await failure(client.find_contacts(replace(seeded.find, cursor=forged)))).info()
        assert (info.code, info.field, info.provider) == (ErrorCode.INVALID_ARGUMENT, "cursor", case.name)
    assert requests(fake) == []


async def test_pages_follow_the_cursor_without_repeats_where_the_api_paginates(
    case: ProviderCase, fake: Any, client: HttpProvider
) -> None:
    if not case.paginates:
        # Featurebase and Protocol look a contact up exactly: one answer, never a cursor.
        page = await client.find_contacts(case.seed(fake, 1).find)
        assert page.next_cursor is None
        return
    seeded = [case.seed(fake, n) for n in range(5)]
    # The unfiltered list; for Blooio a search ("sam" matches every seeded name), whose pages are offsets.
    call = FindContactsInput(query="sam", limit=2) if case.name == "blooio" else FindContactsInput(limit=2)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        page = await client.find_contacts(replace(call, cursor=cursor))
        assert len(page.contacts) <= 2
        seen.extend(c.id for c in page.contacts)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(s.id for s in seeded)


# ---------- failures every API can have ----------


async def test_refused_key_is_unauthorized_and_the_key_is_not_echoed(
    case: ProviderCase, fake: Any, base_url: str
) -> None:
    wrong = "sk_wrong_key_0123456789"
    provider = case.client(base_url, api_key=wrong)
    try:
        info = (await failure(provider.get_contact(case.missing_id))).info()
    finally:
        await provider.aclose()
    assert (info.code, info.provider, info.status, info.retryable) == (ErrorCode.UNAUTHORIZED, case.name, 401, False)
    assert wrong not in info.model_dump_json()


async def test_every_configured_secret_quoted_by_the_provider_is_scrubbed(
    case: ProviderCase, fake: Any, base_url: str, tmp_path: Any
) -> None:
    token = "mcp-http-token-0123456789abcdef0123"
    settings = load_settings(**case.settings(base_url, str(tmp_path / "c.db"), http_token=token))
    provider = provider_class(case.name).from_settings(settings)
    quoted = f"Invalid API key provided: Bearer {case.api_key} (token {token})"
    push(fake, Fault("status", status=401, body={"error": {"code": "invalid_api_key", "message": quoted}}))
    try:
        info = (await failure(provider.get_contact(case.missing_id))).info()
    finally:
        await provider.aclose()
    assert info.message == f"Invalid API key provided: Bearer {REDACTED} (token {REDACTED})"
    assert case.api_key not in info.model_dump_json() and token not in info.model_dump_json()


async def test_rate_limit_that_persists_is_rate_limited_after_bounded_attempts(
    case: ProviderCase, fake: Any, client: HttpProvider
) -> None:
    push(fake, Fault("status", status=429, body={"error": {"code": "rate_limited", "message": "slow down"}}, times=9))
    info = (await failure(client.get_contact(case.missing_id))).info()
    assert (info.code, info.retryable, info.provider) == (ErrorCode.RATE_LIMITED, True, case.name)
    assert len(requests(fake)) == 3


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (500, ErrorCode.PROVIDER_ERROR, True),
        (503, ErrorCode.PROVIDER_UNAVAILABLE, True),
    ],
)
async def test_server_errors_on_a_read_are_retryable(
    case: ProviderCase, fake: Any, client: HttpProvider, status: int, code: ErrorCode, retryable: bool
) -> None:
    push(fake, Fault("status", status=status, body={"error": {"code": "boom", "message": "broken"}}, times=9))
    info = (await failure(client.get_contact(case.missing_id))).info()
    assert (info.code, info.retryable, info.status) == (code, retryable, status)


async def test_a_transient_outage_on_a_read_is_retried_then_succeeds(
    case: ProviderCase, fake: Any, client: HttpProvider
) -> None:
    seeded = case.seed(fake, 1)
    push(fake, Fault("status", status=503, body={}, times=2))
    contact = await client.get_contact(seeded.id)
    assert contact.id == seeded.id
    assert len(requests(fake)) == 3


async def test_an_answer_past_the_read_timeout_is_a_retryable_timeout(
    case: ProviderCase, fake: Any, client: HttpProvider
) -> None:
    push(fake, Fault("slow", delay=1.0, times=9))
    info = (await failure(client.get_contact(case.missing_id))).info()
    assert (info.code, info.retryable, info.provider) == (ErrorCode.TIMEOUT, True, case.name)


@pytest.mark.parametrize("kind", ["oversize", "malformed", "wrong_type"])
async def test_an_unusable_answer_is_a_provider_error(
    case: ProviderCase, fake: Any, client: HttpProvider, kind: Any
) -> None:
    push(fake, Fault(kind, size=100_000))
    info = (await failure(client.get_contact(case.seed(fake, 1).id))).info()
    assert (info.code, info.provider) == (ErrorCode.PROVIDER_ERROR, case.name)


def test_the_readme_names_the_filters_each_provider_declares(case: ProviderCase) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    reads = readme.split("### Reads on each provider", 1)[1]
    display = {"tetherai": "TetherAI"}.get(case.name, case.name.capitalize())
    row = next(line for line in reads.splitlines() if line.startswith(f"| {display} | "))
    filters_cell = row.split(" | ")[2]
    named = {name for name in ("email", "phone", "username", "user_id", "query") if f"`{name}`" in filters_cell}
    assert named == set(case.client_class.find_filters), row
