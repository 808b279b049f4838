"""`HttpProvider`: what the five API clients share — one `httpx2.AsyncClient`, timeouts, a response-size cap,
retries (stamina), secret scrubbing of everything the provider says, and the single place where HTTP failures
become `ContactError`s (mapped by `errors.error_for_status`, built once after the retries have run).

A subclass supplies `auth_headers()`, declares the find_contacts filters its API serves (`find_filters`,
checked by `check_filters`), and builds requests with `request()`, which returns the parsed JSON of a 2xx answer
or raises a `ContactError`. Retry rules (PROVIDERS.md, "Where the docs are silent"):

* a request that never left (connect error/timeout, pool timeout) is always retried: it cannot have had effect;
* 429, 502, 503, 504 and dropped/timed-out connections are retried only when the caller says the operation is
  `replayable`; `Retry-After` (delta seconds or HTTP date) is honoured, else capped exponential backoff with jitter;
* a non-replayable request whose outcome is unknown is reported with `retryable: false` and a hint to read first.
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import httpx2
import stamina

from contact_mcp import dry_run
from contact_mcp.errors import ContactError, InvalidArgument, ProviderError, ProviderTimeout, ProviderUnavailable
from contact_mcp.logs import mask_contact_values
from contact_mcp.models import DeletedContact, FindContactsInput
from contact_mcp.providers.base import Provider
from contact_mcp.providers.http.errors import (
    RETRY_STATUSES,
    ErrorDetail,
    StatusContext,
    error_for_status,
    parse_error_body,
    parse_retry_after,
)
from contact_mcp.providers.http.wire import invalid_cursor
from contact_mcp.redact import Scrubber, display_url
from contact_mcp.settings import Settings

log = logging.getLogger("contact_mcp.http")

FILTERS = ("email", "phone", "username", "user_id", "query")
"""find_contacts' filters, in the order an error names them."""
_READS = frozenset({"GET", "HEAD"})
"""What a dry run may send (`dry_run.refuse` stops anything else)."""
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


class _StatusFailure(Exception):
    """A non-2xx answer, carried through the retry loop so the hook can decide; the error is built after it."""

    def __init__(self, status: int, detail: ErrorDetail, headers: httpx2.Headers, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.detail = detail
        self.headers = headers
        self.retry_after = retry_after


class HttpProvider(Provider):
    """Shared plumbing of the provider API clients."""

    find_filters: ClassVar[tuple[str, ...]] = ()
    """The find_contacts filters the provider's API can serve (besides limit and cursor)."""
    filter_required: ClassVar[bool] = False
    """Whether the provider's find needs one of its filters (it has no list of everything)."""
    paginates: ClassVar[bool] = True
    """Whether the provider's find answers page by page (else every match comes in one answer)."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        options: HttpOptions | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        scrubber: Scrubber | None = None,
    ) -> None:
        self.options = options or HttpOptions()
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.shown_url = display_url(self.base_url)
        """The base URL as messages may show it (userinfo and query masked)."""
        # Built from Settings by `from_settings`, it knows every secret of the process; a client built directly
        # knows at least its own key.
        self.scrub = scrubber or Scrubber([api_key])
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
        return cls(
            base_url=base_url,
            api_key=api_key,
            options=HttpOptions.from_settings(settings),
            transport=transport,
            scrubber=Scrubber.from_settings(settings),
        )

    # ---------- for subclasses ----------

    async def delete_preview(self, contact_id: str) -> DeletedContact:
        """A dry run of delete_contact: the contact is read with the provider's documented read (so an unknown or
        malformed id fails as the delete would) and nothing is sent that deletes. `changes` lists what the read shows
        would go; what else the provider keeps about the contact no read tells, and `note` says so."""
        contact = await self.get_contact(contact_id)
        return DeletedContact(
            provider=self.name,
            id=contact.id,
            dry_run=True,
            changes=contact.removed(),
            note=f"{self.display_name} may also erase data it keeps about the contact that its read does not show.",
        )

    def check_filters(self, call: FindContactsInput) -> None:
        """The filters a find gives, after refusing one the API cannot serve: never a scan of a whole list."""
        given = [name for name in FILTERS if getattr(call, name) is not None]
        served = ", ".join(self.find_filters)
        can = (
            f"{self.display_name} finds contacts by {served} only"
            if served
            else (f"{self.display_name} only lists contacts, without filters")
        )
        refused = [name for name in given if name not in self.find_filters]
        if refused:
            omit = f"; omit {', '.join(refused)}"
            raise InvalidArgument(
                f"{self.display_name} cannot filter contacts by {', '.join(refused)}",
                field=refused[0],
                hint=f"{can}{omit}",
                provider=self.name,
            )
        if call.cursor is not None and not self.paginates:
            raise invalid_cursor(self.name)
        if self.filter_required and not given:
            raise InvalidArgument(
                f"{self.display_name} cannot list every contact: give a filter",
                field=self.find_filters[0],
                hint=can,
                provider=self.name,
            )

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}

    def retry_after(self, status: int, headers: httpx2.Headers) -> float | None:
        """Seconds the provider asks us to wait before trying again; APIs that say it another way override this."""
        return parse_retry_after(headers.get("retry-after"))

    def hint_for(self, status: int, detail: ErrorDetail) -> str | None:
        """A provider may say more about how to fix a given status; the generic hints below apply otherwise."""
        return None

    def error_for_status(
        self, status: int, detail: ErrorDetail, headers: httpx2.Headers, *, unknown: str | None
    ) -> ContactError:
        """Map one non-2xx answer to a `ContactError`, once. `unknown` is the read-first hint when the request was
        not replayable (a 5xx then leaves its effect unknown), else None. A provider overriding this builds its own
        error from the same facts, or defers here."""
        context = StatusContext(
            provider=self.name,
            display_name=self.display_name,
            env_prefix=self.name.upper(),
            retry_after_s=self.retry_after(status, headers) if status == 429 else None,
            unknown=unknown,
        )
        return error_for_status(status, detail, context, hint=self.hint_for(status, detail))

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
        if method not in _READS:
            dry_run.refuse(f"{self.display_name} {method} {path}")
        started = time.monotonic()
        unknown = read_first or f"The request may have reached {self.display_name}; check with a read before retrying"
        deadline = self.options.retry_deadline_s

        def backoff(exc: Exception) -> bool | float:
            # The deadline counts from the first attempt, which runs before stamina's own clock starts.
            remaining = deadline - (time.monotonic() - started)
            if remaining <= 0:
                return False
            if isinstance(exc, _StatusFailure):
                if not replayable or exc.status not in RETRY_STATUSES:
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
            raise self.error_for_status(
                exc.status, exc.detail, exc.headers, unknown=None if replayable else unknown
            ) from None
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
        # A path may name a contact by email (Featurebase's /v2/contacts/{email}): masked, as logs carry none.
        log.debug("%s %s %s -> %d", self.name, method, mask_contact_values(path), response.status_code)
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
        # The provider's words may quote our credentials back ("Invalid API key: Bearer sk_..."): scrubbed here,
        # before any error, result or log line can carry them.
        detail = parse_error_body(body).scrubbed(self.scrub) if body is not _INVALID else ErrorDetail()
        raise _StatusFailure(status, detail, response.headers, self.retry_after(status, response.headers))

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
