"""HttpProvider (`providers/http/`), the plumbing the five API clients share: error mapping, envelopes, retries,
size cap, secrets, wire helpers.

Fast tests over `httpx2.MockTransport` (the transport is the seam); the per-provider contract tests run the same
paths against real fake servers on loopback.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

import httpx2
import pytest

from contact_mcp.errors import ContactError, ErrorCode, NotFound, ProviderError
from contact_mcp.models import Operation
from contact_mcp.providers.http import (
    ErrorDetail,
    HttpOptions,
    HttpProvider,
    parse_error_body,
    parse_retry_after,
    path_segment,
    wire,
)

pytestmark = pytest.mark.anyio

SECRET = "sk_live_0123456789abcdefSECRET"
Handler = Callable[[httpx2.Request], httpx2.Response]


class Dummy(HttpProvider):
    name: ClassVar[str] = "dummy"
    display_name: ClassVar[str] = "Dummy"
    operations: ClassVar[frozenset[Operation]] = frozenset()


def make(handler: Handler, **options: Any) -> Dummy:
    opts = HttpOptions(**{"retry_attempts": 3, "read_timeout_s": 1.0, **options})
    return Dummy(
        base_url="https://api.example.test/v1", api_key=SECRET, options=opts, transport=httpx2.MockTransport(handler)
    )


class Counter:
    """A handler that answers from a script of responses (the last one repeats) and counts calls."""

    def __init__(self, *script: httpx2.Response | Exception) -> None:
        self.script = list(script)
        self.calls: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.calls.append(request)
        step = self.script[min(len(self.calls), len(self.script)) - 1]
        if isinstance(step, Exception):
            raise step
        return step


def ok(body: Any = None, status: int = 200) -> httpx2.Response:
    return httpx2.Response(status, json={"ok": True} if body is None else body)


async def fail(provider: Dummy, *, replayable: bool = True) -> ContactError:
    with pytest.raises(ContactError) as info:
        await provider.request("POST", "/things", replayable=replayable, json_body={"a": 1})
    await provider.aclose()
    return info.value


# ---------- envelopes ----------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": {"code": "not_found", "message": "No contact"}}, ErrorDetail("not_found", "No contact")),
        ({"error": "authentication_required", "message": "No key"}, ErrorDetail("authentication_required", "No key")),
        (
            {"error": {"type": "invalid_request_error", "code": "x", "message": "Bad email", "param": "email"}},
            ErrorDetail("x", "Bad email", "email"),
        ),
        (
            {"error": {"type": "invalid_request_error", "message": "Bad", "param": "email"}},
            ErrorDetail("invalid_request_error", "Bad", "email"),
        ),
        ({"message": "Contact not found", "code": 404}, ErrorDetail("404", "Contact not found")),
        (
            {"error": {"code": "validation_error", "message": "bad", "details": {"field": "channel_type"}}},
            ErrorDetail("validation_error", "bad", "channel_type"),
        ),
        (
            {"error": "ApiError", "code": "contact_already_merged", "message": "merged"},
            ErrorDetail("contact_already_merged", "merged"),
        ),
        ({"message": "Contact not found"}, ErrorDetail(None, "Contact not found")),
        (
            {"detail": [{"loc": ["body", "channel"], "msg": "Field required", "type": "missing"}]},
            ErrorDetail("missing", "Field required", "channel"),
        ),
        (
            {"detail": [{"loc": ["body", "companies", 2, "name"], "msg": "Field required", "type": "missing"}]},
            ErrorDetail("missing", "Field required", "companies[2].name"),
        ),
        ({"detail": "Not authenticated"}, ErrorDetail(None, "Not authenticated")),
        ("plain text", ErrorDetail()),
        (None, ErrorDetail()),
    ],
    ids=[
        "nested",
        "flat",
        "featurebase",
        "featurebase-no-code",
        "tetherai",
        "blooio-details",
        "flat-with-code",
        "message-only",
        "fastapi-422",
        "fastapi-index",
        "fastapi-str",
        "not-object",
        "empty",
    ],
)
def test_error_envelopes_are_read(body: Any, expected: ErrorDetail) -> None:
    assert parse_error_body(body) == expected


def test_long_provider_messages_are_cut() -> None:
    detail = parse_error_body({"error": "x", "message": "m" * 5000})
    assert detail.message is not None and len(detail.message) == 500


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), (" 1.5 ", 1.5), ("-4", 0.0), ("soon", None), ("", None), (None, None), ("nan", None)],
    ids=["int", "float", "negative", "garbage", "empty", "absent", "nan"],
)
def test_retry_after_delta_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_http_date() -> None:
    now = time.time()
    header = email.utils.formatdate(now + 120, usegmt=True)
    seconds = parse_retry_after(header, now=now)
    assert seconds is not None and 119 <= seconds <= 121


def test_path_segments_cannot_escape() -> None:
    assert path_segment("ct_1/../admin?x=1#f") == "ct_1%2F..%2Fadmin%3Fx%3D1%23f"


# ---------- status mapping ----------


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (400, ErrorCode.INVALID_ARGUMENT, False),
        (422, ErrorCode.INVALID_ARGUMENT, False),
        (401, ErrorCode.UNAUTHORIZED, False),
        (403, ErrorCode.UNAUTHORIZED, False),
        (404, ErrorCode.NOT_FOUND, False),
        (410, ErrorCode.NOT_FOUND, False),
        (409, ErrorCode.CONFLICT, False),
        (429, ErrorCode.RATE_LIMITED, True),
        (500, ErrorCode.PROVIDER_ERROR, True),
        (502, ErrorCode.PROVIDER_UNAVAILABLE, True),
        (503, ErrorCode.PROVIDER_UNAVAILABLE, True),
        (504, ErrorCode.PROVIDER_UNAVAILABLE, True),
        (418, ErrorCode.PROVIDER_ERROR, False),
    ],
    ids=lambda v: str(v),
)
async def test_every_status_class_maps_to_a_code(status: int, code: ErrorCode, retryable: bool) -> None:
    handler = Counter(httpx2.Response(status, json={"error": {"code": "c", "message": f"said {status}"}}))
    error = await fail(make(handler))
    info = error.info()
    assert (info.code, info.status, info.provider, info.retryable) == (code, status, "dummy", retryable)
    assert info.message == f"said {status}"
    assert info.hint or code in (ErrorCode.RATE_LIMITED, ErrorCode.PROVIDER_ERROR, ErrorCode.PROVIDER_UNAVAILABLE)


async def test_error_without_body_still_names_status() -> None:
    error = await fail(make(Counter(httpx2.Response(404, text=""))))
    assert error.info().message == "Dummy answered HTTP 404"


# ---------- request shape ----------


async def test_sends_auth_json_and_returns_parsed_body() -> None:
    handler = Counter(ok({"id": 7}, status=201))
    provider = make(handler)
    status, body = await provider.request("POST", "/things", replayable=False, json_body={"name": "x"})
    await provider.aclose()
    (sent,) = handler.calls
    assert (status, body) == (201, {"id": 7})
    assert sent.url == "https://api.example.test/v1/things"
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.read() == b'{"name":"x"}'


# ---------- retries ----------


async def test_replayable_request_is_retried_until_success() -> None:
    handler = Counter(httpx2.Response(503), httpx2.Response(502), ok())
    provider = make(handler)
    assert await provider.request("PATCH", "/x", replayable=True) == (200, {"ok": True})
    await provider.aclose()
    assert len(handler.calls) == 3


async def test_attempts_are_bounded() -> None:
    handler = Counter(httpx2.Response(503))
    error = await fail(make(handler, retry_attempts=4))
    assert len(handler.calls) == 4
    assert error.info().code is ErrorCode.PROVIDER_UNAVAILABLE


@pytest.mark.parametrize("status", [429, 500, 501, 502, 503, 504, 507], ids=str)
async def test_non_replayable_request_is_sent_once(status: int) -> None:
    handler = Counter(httpx2.Response(status, json={"error": {"code": "x", "message": "busy"}}))
    error = await fail(make(handler), replayable=False)
    assert len(handler.calls) == 1
    info = error.info()
    if status == 429:
        assert info.code is ErrorCode.RATE_LIMITED and info.retryable
    else:
        assert not info.retryable
        assert info.hint is not None and "check with a read" in info.hint


class Built(Dummy):
    """A provider whose errors are its own: it records what `error_for_status` was told."""

    seen: ClassVar[list[str | None]] = []

    def error_for_status(
        self, status: int, detail: ErrorDetail, headers: httpx2.Headers, *, unknown: str | None
    ) -> ContactError:
        Built.seen.append(unknown)
        return ProviderError(detail.message or "failed", provider=self.name, status=status, retryable=True)


async def test_an_error_is_built_once_from_what_the_call_site_knows_and_never_edited() -> None:
    """The provider is told the outcome is unknown when it builds the error; nothing changes the error afterwards
    (before, the client set `retryable`/`hint` on the provider's error after it was built)."""
    Built.seen.clear()
    handler = Counter(httpx2.Response(500, json={"error": {"code": "x", "message": "busy"}}))
    provider = Built(base_url="https://api.example.test", api_key=SECRET, transport=httpx2.MockTransport(handler))
    error = await fail(provider, replayable=False)
    assert Built.seen and Built.seen[0] is not None and "check with a read" in Built.seen[0]
    # What the provider built is what the caller gets: its own verdict, untouched.
    assert (error.retryable, error.hint) == (True, None)


def test_a_built_error_cannot_be_edited_only_evolved() -> None:
    error = NotFound("no such contact", provider="dummy", status=404)
    with pytest.raises(AttributeError, match="evolve"):
        error.field = "contact_id"
    refined = error.evolve(field="contact_id", hint="find it first")
    assert (refined.field, refined.hint, refined.status, refined.message) == (
        "contact_id",
        "find it first",
        404,
        error.message,
    )
    assert error.field is None and type(refined) is NotFound
    # The route's provider names an error only in its payload, and only when the error names none itself.
    assert error.info(provider="other").provider == "dummy"
    assert NotFound("x").info(provider="dummy").provider == "dummy"


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422], ids=str)
async def test_client_errors_are_never_retried(status: int) -> None:
    handler = Counter(httpx2.Response(status, json={}))
    await fail(make(handler), replayable=True)
    assert len(handler.calls) == 1


async def test_connect_failure_is_retried_even_when_not_replayable() -> None:
    """A request that never connected cannot have had an effect."""
    handler = Counter(httpx2.ConnectError("refused"), ok())
    provider = make(handler)
    assert await provider.request("POST", "/x", replayable=False) == (200, {"ok": True})
    await provider.aclose()
    assert len(handler.calls) == 2


async def test_connect_failure_exhausted_is_provider_unavailable() -> None:
    handler = Counter(httpx2.ConnectError("refused"))
    info = (await fail(make(handler), replayable=False)).info()
    assert (info.code, info.retryable, len(handler.calls)) == (ErrorCode.PROVIDER_UNAVAILABLE, True, 3)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (httpx2.ReadTimeout("slow"), ErrorCode.TIMEOUT),
        (httpx2.RemoteProtocolError("dropped"), ErrorCode.PROVIDER_UNAVAILABLE),
        (httpx2.ReadError("reset"), ErrorCode.PROVIDER_UNAVAILABLE),
    ],
    ids=["read-timeout", "dropped", "reset"],
)
async def test_uncertain_failures_follow_replayability(exc: Exception, code: ErrorCode) -> None:
    once = Counter(exc)
    info = (await fail(make(once), replayable=False)).info()
    assert (info.code, info.retryable, len(once.calls)) == (code, False, 1)
    assert info.hint is not None and "may have reached" in info.hint
    again = Counter(exc)
    info = (await fail(make(again), replayable=True)).info()
    assert (info.code, info.retryable, len(again.calls)) == (code, True, 3)


async def test_the_retry_deadline_counts_from_the_first_attempt() -> None:
    calls: list[httpx2.Request] = []

    def slow_then_busy(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        time.sleep(0.1)
        return httpx2.Response(503)

    info = (await fail(make(slow_then_busy, retry_deadline_s=0.05))).info()
    assert (info.code, len(calls)) == (ErrorCode.PROVIDER_UNAVAILABLE, 1)


async def test_retry_after_is_honoured(retry_waits: list[float]) -> None:
    handler = Counter(httpx2.Response(429, headers={"Retry-After": "1"}, json={}), ok())
    provider = make(handler)
    assert await provider.request("PUT", "/x", replayable=True) == (200, {"ok": True})
    await provider.aclose()
    assert retry_waits == [1.0]


async def test_retry_after_beyond_the_deadline_is_reported_not_waited(retry_waits: list[float]) -> None:
    handler = Counter(httpx2.Response(429, headers={"Retry-After": "120"}, json={"message": "slow down"}))
    info = (await fail(make(handler, retry_deadline_s=10))).info()
    assert (info.code, info.retry_after_s, len(handler.calls)) == (ErrorCode.RATE_LIMITED, 120.0, 1)
    assert retry_waits == []


async def test_backoff_without_retry_after_is_exponential_and_capped(retry_waits: list[float]) -> None:
    handler = Counter(httpx2.Response(503), httpx2.Response(503), ok())
    provider = make(handler, retry_wait_initial_s=0.01, retry_wait_max_s=0.02)
    await provider.request("PUT", "/x", replayable=True)
    await provider.aclose()
    waits = retry_waits
    assert len(waits) == 2 and all(0 < w <= 0.02 + 1e-9 for w in waits)


# ---------- bodies ----------


async def test_oversized_body_is_refused() -> None:
    big = httpx2.Response(200, json={"pad": "x" * 5000})
    info = (await fail(make(Counter(big), max_response_bytes=1000))).info()
    assert info.code is ErrorCode.PROVIDER_ERROR and "larger than 1000 bytes" in info.message


async def test_declared_oversized_body_is_refused_unread() -> None:
    def stream(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-length": "99999999", "content-type": "application/json"})

    info = (await fail(make(stream, max_response_bytes=1000))).info()
    assert "larger than" in info.message


@pytest.mark.parametrize(
    "response",
    [
        httpx2.Response(200, content=b'{"data": {"id', headers={"content-type": "application/json"}),
        httpx2.Response(200, content=b"<html>down</html>", headers={"content-type": "text/html"}),
    ],
    ids=["malformed-json", "wrong-content-type"],
)
async def test_unreadable_success_is_a_provider_error(response: httpx2.Response) -> None:
    info = (await fail(make(Counter(response)))).info()
    assert info.code is ErrorCode.PROVIDER_ERROR and not info.retryable
    assert info.hint is not None and "check with a read" in info.hint


async def test_non_json_error_body_maps_by_status() -> None:
    response = httpx2.Response(502, content=b"<html>Bad gateway</html>", headers={"content-type": "text/html"})
    info = (await fail(make(Counter(response)))).info()
    assert (info.code, info.message) == (ErrorCode.PROVIDER_UNAVAILABLE, "Dummy answered HTTP 502")


# ---------- secrets ----------


async def test_secret_never_reaches_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for script in (httpx2.Response(401, json={"error": "x", "message": "bad key"}), httpx2.ReadTimeout("t")):
        info = (await fail(make(Counter(script)))).info()
        assert SECRET not in info.model_dump_json()
    assert SECRET not in caplog.text


# ---------- wire helpers ----------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, "1970-01-01T00:00:00Z"), (1718000000, "2024-06-10T06:13:20Z"), (1e300, None), (True, None), ("1", None)],
    ids=str,
)
def test_epoch_seconds_become_iso_utc(value: object, expected: str | None) -> None:
    assert wire.iso_from_epoch_s(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-15T10:30:00Z", "2024-01-15T10:30:00Z"),
        ("2025-01-03T21:42:30.181Z", "2025-01-03T21:42:30.181Z"),
        ("2025-01-03T23:42:30+02:00", "2025-01-03T21:42:30Z"),
        ("2025-01-03T21:42:30", "2025-01-03T21:42:30Z"),
        ("yesterday", None),
        (None, None),
    ],
    ids=str,
)
def test_iso_strings_become_utc_with_z(value: object, expected: str | None) -> None:
    assert wire.iso_from_text(value) == expected


def test_a_cursor_round_trips_and_refuses_another_providers_or_kinds() -> None:
    cursor = wire.encode_cursor("dummy", "page", "3/20")
    assert wire.decode_cursor(cursor, "dummy", "page") == "3/20"
    for provider, kind in (("other", "page"), ("dummy", "offset")):
        with pytest.raises(ContactError) as info:
            wire.decode_cursor(cursor, provider, kind)
        assert (info.value.info().code, info.value.field) == (ErrorCode.INVALID_ARGUMENT, "cursor")
    assert wire.decode_cursor(wire.encode_cursor("dummy", "offset", 40), "dummy", "offset", numeric=True) == 40
    for wrong, numeric in (("abc", True), (10**12, True), (7, False), ("", False)):
        with pytest.raises(ContactError):
            wire.decode_cursor(wire.encode_cursor("dummy", "offset", wrong), "dummy", "offset", numeric=numeric)
