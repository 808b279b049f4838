"""Where HTTP failures become `ContactError`s: reading a provider's error envelope (`ErrorDetail`), `Retry-After`,
and `error_for_status`, the one mapping of a status class to an error code.

Every error is built once, here or in a provider's override, from all the facts the call site knows (the status,
the provider's words, whether the request was replayable and so whether its outcome is unknown); nothing edits an
error after it is built. Provider text reaching this module has already been scrubbed of our secrets.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from contact_mcp.errors import (
    Conflict,
    ContactError,
    InvalidArgument,
    NotFound,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    Unauthorized,
)
from contact_mcp.redact import Scrubber

RETRY_STATUSES = frozenset({429, 502, 503, 504})
_MESSAGE_MAX = 500


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """What a provider's error body says, whichever envelope it used."""

    code: str | None = None
    message: str | None = None
    field: str | None = None

    def scrubbed(self, scrub: Scrubber) -> ErrorDetail:
        return ErrorDetail(
            code=scrub.optional(self.code), message=scrub.optional(self.message), field=scrub.optional(self.field)
        )


@dataclass(frozen=True, slots=True)
class StatusContext:
    """What the call site knows about a non-2xx answer besides its body."""

    provider: str
    display_name: str
    env_prefix: str
    retry_after_s: float | None
    unknown: str | None
    """The read-first hint when the request was not replayable (its effect is unknown after a 5xx), else None."""


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
    return text[:_MESSAGE_MAX]


def error_for_status(status: int, detail: ErrorDetail, context: StatusContext, *, hint: str | None) -> ContactError:
    """Map one non-2xx answer to a `ContactError`: the status class decides the code, `hint` (a provider's own) wins
    over the generic one, and an unknown outcome (non-replayable request, 5xx) is never called retryable."""
    message = detail.message or f"{context.display_name} answered HTTP {status}"
    common: dict[str, Any] = {"provider": context.provider, "status": status, "field": detail.field}
    if status in (400, 422):
        return InvalidArgument(message, hint=hint or "Correct the named field and call again", **common)
    if status in (401, 403):
        generic = f"The server's {context.env_prefix}_API_KEY was refused; the operator must fix it"
        return Unauthorized(message, hint=hint or generic, **common)
    if status in (404, 410):
        return NotFound(message, hint=hint or "Check the id; it does not exist at the provider", **common)
    if status == 409:
        return Conflict(message, hint=hint or "It already exists or clashes with the current state", **common)
    if status == 429:
        return RateLimited(message, hint=hint, retry_after_s=context.retry_after_s, **common)
    if status >= 500 and context.unknown is not None:
        kind = ProviderUnavailable if status in (502, 503, 504) else ProviderError
        return kind(message, hint=context.unknown, retryable=False, **common)
    if status in (502, 503, 504):
        return ProviderUnavailable(message, hint=hint, **common)
    if status >= 500:
        return ProviderError(message, hint=hint, retryable=True, **common)
    return ProviderError(message, hint=hint, **common)
