"""`HttpProvider`: what the five API clients share — one `httpx2.AsyncClient`, timeouts, a response-size cap,
retries (stamina) and the single place where HTTP failures become `ContactError`s.

A subclass supplies `auth_headers()` and builds requests with `request()`, which returns the parsed JSON of a
2xx answer or raises a `ContactError`. Retry rules (PROVIDERS.md, "Where the docs are silent"):

* a request that never left (connect error/timeout, pool timeout) is always retried: it cannot have had effect;
* 429, 502, 503, 504 and dropped/timed-out connections are retried only when the caller says the operation is
  `replayable`; `Retry-After` (delta seconds or HTTP date) is honoured, else capped exponential backoff with jitter;
* a non-replayable request whose outcome is unknown is reported with `retryable: false` and a hint to read first.
"""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import math
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self, cast
from urllib.parse import quote

import httpx2
import stamina

from contact_mcp.errors import (
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
from contact_mcp.providers.base import Provider
from contact_mcp.settings import Settings

log = logging.getLogger("contact_mcp.http")

_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_NEVER_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)


@dataclass(frozen=True, slots=True)
class HttpOptions:
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    max_response_bytes: int = 1_048_576
    retry_attempts: int = 3
    retry_deadline_s: float = 30.0
    retry_wait_initial_s: float = 0.25
    retry_wait_max_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpOptions:
        return cls(
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            max_response_bytes=settings.max_response_bytes,
            retry_attempts=settings.retry_attempts,
            retry_deadline_s=settings.retry_deadline_s,
            retry_wait_initial_s=settings.retry_wait_initial_s,
            retry_wait_max_s=settings.retry_wait_max_s,
        )


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """What a provider's error body says, whichever envelope it used."""

    code: str | None = None
    message: str | None = None
    field: str | None = None


def path_segment(value: str) -> str:
    """Percent-encode one path parameter so no argument can add segments, a query or a fragment."""
    return quote(value, safe="")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta seconds or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return cast(Mapping[str, Any], value) if isinstance(value, Mapping) else None


def parse_error_body(body: Any) -> ErrorDetail:
    """Read nested `{"error":{code,message}}`, Featurebase's `{"error":{type,code,message,param}}`, flat
    `{"error": "...", "message": "..."}`, TetherAI's `{"message","code"}` and FastAPI's `{"detail": [...]}`."""
    data = _mapping(body)
    if data is None:
        return ErrorDetail()
    nested = _mapping(data.get("error"))
    if nested is not None:
        details = _mapping(nested.get("details")) or {}
        field = nested.get("param") or nested.get("field") or details.get("field") or details.get("param")
        code = nested.get("code") or nested.get("type")
        return ErrorDetail(
            code=str(code) if code is not None else None,
            message=_text(nested.get("message")),
            field=field if isinstance(field, str) and field else None,
        )
    detail = data.get("detail")
    if isinstance(detail, list) and detail:
        return _fastapi_detail(cast(list[Any], detail))
    error = data.get("error")
    # A flat envelope's "error" is often a generic class ("ApiError"); a separate "code" is the specific one.
    code = data.get("code") if data.get("code") is not None else error if isinstance(error, str) else None
    message = data.get("message")
    if message is None and isinstance(detail, str):
        message = detail
    return ErrorDetail(code=str(code) if code is not None else None, message=_text(message))


def _fastapi_detail(detail: list[Any]) -> ErrorDetail:
    items = [m for m in (_mapping(d) for d in detail) if m is not None]
    if not items:
        return ErrorDetail(code="validation_error", message=_text(detail[0]))
    loc = items[0].get("loc")
    where = cast(list[Any], loc) if isinstance(loc, list) else []
    path = ""
    for part in where:
        if part in ("body", "path", "query"):
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    messages = [text for text in (_text(item.get("msg")) for item in items) if text]
    return ErrorDetail(
        code=str(items[0].get("type") or "validation_error"),
        message="; ".join(messages) or None,
        field=path or None,
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:500]


class _StatusFailure(Exception):
    """A non-2xx answer, carried through the retry loop so the hook can decide."""

    def __init__(self, error: ContactError, status: int, retry_after: float | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.status = status
        self.retry_after = retry_after


class HttpProvider(Provider):
    """Shared plumbing of the provider API clients."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        options: HttpOptions | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.options = options or HttpOptions()
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.client = httpx2.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            verify=_tls_context() if transport is None else True,
            timeout=httpx2.Timeout(
                self.options.read_timeout_s,
                connect=self.options.connect_timeout_s,
                read=self.options.read_timeout_s,
            ),
            headers={"Accept": "application/json", "User-Agent": "contact-mcp", **self.auth_headers()},
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None) -> Self:
        base_url, api_key = settings.credentials(cls.name)
        return cls(base_url=base_url, api_key=api_key, options=HttpOptions.from_settings(settings), transport=transport)

    # ---------- for subclasses ----------

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}

    def retry_after(self, status: int, headers: httpx2.Headers) -> float | None:
        """Seconds the provider asks us to wait before trying again; APIs that say it another way override this."""
        return parse_retry_after(headers.get("retry-after"))

    def hint_for(self, status: int, detail: ErrorDetail) -> str | None:
        """A provider may say more about how to fix a given status; the generic hints below apply otherwise."""
        return None

    def error_for_status(self, status: int, detail: ErrorDetail, headers: httpx2.Headers) -> ContactError:
        """Map one non-2xx answer to a `ContactError`."""
        message = detail.message or f"{self.display_name} answered HTTP {status}"
        hint = self.hint_for(status, detail)
        kwargs: dict[str, Any] = {"provider": self.name, "status": status, "field": detail.field}
        if status in (400, 422):
            return InvalidArgument(message, hint=hint or "Correct the named field and call again", **kwargs)
        if status in (401, 403):
            return Unauthorized(
                message,
                hint=hint or f"The server's {self.name.upper()}_API_KEY was refused; the operator must fix it",
                **kwargs,
            )
        if status in (404, 410):
            return NotFound(message, hint=hint or "Check the id; it does not exist at the provider", **kwargs)
        if status == 409:
            return Conflict(message, hint=hint or "It already exists or clashes with the current state", **kwargs)
        if status == 429:
            return RateLimited(message, hint=hint, retry_after_s=self.retry_after(status, headers), **kwargs)
        if status in (502, 503, 504):
            return ProviderUnavailable(message, hint=hint, **kwargs)
        if status >= 500:
            return ProviderError(message, hint=hint, retryable=True, **kwargs)
        return ProviderError(message, hint=hint, **kwargs)

    # ---------- the request path ----------

    async def request(
        self,
        method: str,
        path: str,
        *,
        replayable: bool,
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        read_first: str | None = None,
    ) -> tuple[int, Any]:
        """Send one logical request (retrying as the rules allow); return (status, parsed JSON body).

        `read_first` is the hint given when the outcome is unknown (a non-replayable request that may have been
        applied, or any answer that could not be read); by default it says to check with a read."""
        started = time.monotonic()
        unknown = read_first or f"The request may have reached {self.display_name}; check with a read before retrying"
        deadline = self.options.retry_deadline_s

        def backoff(exc: Exception) -> bool | float:
            # The deadline counts from the first attempt, which runs before stamina's own clock starts.
            remaining = deadline - (time.monotonic() - started)
            if remaining <= 0:
                return False
            if isinstance(exc, _StatusFailure):
                if not replayable or exc.status not in _RETRY_STATUSES:
                    return False
                if exc.retry_after is not None:
                    return exc.retry_after if exc.retry_after < remaining else False
                return True
            if isinstance(exc, _NEVER_SENT):
                return True
            return replayable and isinstance(exc, httpx2.TransportError)

        async def send() -> tuple[int, Any]:
            return await self._send_once(
                method, path, json_body=json_body, params=params, headers=headers, unknown=unknown
            )

        try:
            # Setting up stamina's retry loop costs ~0.15 ms per call on a server at work, so the first attempt
            # goes out directly. A failure is handed to stamina as its own first attempt: it decides, waits,
            # counts and reports every retry exactly as if it had made that attempt itself.
            try:
                return await send()
            except (_StatusFailure, httpx2.TransportError) as exc:
                first_failure: list[Exception] = [exc]
            async for attempt in stamina.retry_context(
                on=backoff,
                attempts=self.options.retry_attempts,
                timeout=deadline,
                wait_initial=self.options.retry_wait_initial_s,
                wait_max=self.options.retry_wait_max_s,
                wait_jitter=self.options.retry_wait_initial_s,
            ):
                with attempt:
                    if first_failure:
                        raise first_failure.pop()
                    return await send()
        except _StatusFailure as exc:
            if not replayable and exc.status >= 500:
                exc.error.retryable = False
                exc.error.hint = unknown
            raise exc.error from None
        except httpx2.TransportError as exc:
            raise self._transport_error(exc, None if replayable else unknown) from None
        raise AssertionError("unreachable: stamina either returns or raises")  # pragma: no cover

    async def _send_once(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        unknown: str,
    ) -> tuple[int, Any]:
        request = self.client.build_request(method, path, json=json_body, params=params, headers=headers)
        response = await self.client.send(request, stream=True)
        try:
            raw = await self._read_capped(response, unknown)
        finally:
            await response.aclose()
        log.debug("%s %s %s -> %d", self.name, method, path, response.status_code)
        status = response.status_code
        body = _loads(raw)
        if 200 <= status < 300:
            content_type = response.headers.get("content-type", "")
            if raw and "json" not in content_type.lower():
                raise ProviderError(
                    f"{self.display_name} answered {status} with content type {content_type or 'none'}, not JSON",
                    provider=self.name,
                    status=status,
                    hint=unknown,
                )
            if body is _INVALID:
                raise ProviderError(
                    f"{self.display_name} answered {status} with a body that is not valid JSON",
                    provider=self.name,
                    status=status,
                    hint=unknown,
                )
            return status, body
        detail = parse_error_body(body) if body is not _INVALID else ErrorDetail()
        error = self.error_for_status(status, detail, response.headers)
        raise _StatusFailure(error, status, self.retry_after(status, response.headers))

    async def _read_capped(self, response: httpx2.Response, unknown: str) -> bytes:
        cap = self.options.max_response_bytes
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise self._too_large(response.status_code, unknown)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise self._too_large(response.status_code, unknown)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, status: int, unknown: str) -> ProviderError:
        return ProviderError(
            f"{self.display_name}'s answer is larger than {self.options.max_response_bytes} bytes; it was not read",
            provider=self.name,
            status=status,
            hint=unknown,
        )

    def _transport_error(self, exc: httpx2.TransportError, unknown: str | None) -> ContactError:
        """`unknown` is the read-first hint for a non-replayable request, None for a replayable one."""
        name = self.display_name
        if isinstance(exc, _NEVER_SENT):
            return ProviderUnavailable(
                f"could not connect to {name} ({type(exc).__name__})",
                provider=self.name,
                hint="The request was not sent; retry later",
            )
        if isinstance(exc, httpx2.TimeoutException):
            return ProviderTimeout(
                f"{name} did not answer within {self.options.read_timeout_s:g} s",
                provider=self.name,
                retryable=unknown is None,
                hint=unknown,
            )
        return ProviderUnavailable(
            f"the connection to {name} failed ({type(exc).__name__})",
            provider=self.name,
            retryable=unknown is None,
            hint=unknown,
        )

    async def aclose(self) -> None:
        await self.client.aclose()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Loading the trust store costs ~0.15 s; one context serves every client in the process."""
    return httpx2.create_ssl_context()


class _Invalid:
    pass


_INVALID: Any = _Invalid()


def _loads(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return _INVALID
