"""Reading and writing the providers' wire formats: what the five API clients share instead of each keeping a copy.

Instants (epoch milliseconds, epoch seconds, ISO 8601 strings) become ISO 8601 UTC with a "Z"; JSON envelopes are
read tolerantly (`mapping`, `text`, `item`, `items`); path parameters are percent-encoded; and a provider's own
pagination (a page number, an offset, its cursor) is handed to the agent as one opaque cursor that a forged or
foreign value cannot pass (`encode_cursor` / `decode_cursor`).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import quote

from contact_mcp.errors import CURSOR_HINT, InvalidArgument

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# ---------- paths ----------


def path_segment(value: str) -> str:
    """Percent-encode one path parameter so no argument can add segments, a query or a fragment."""
    return quote(value, safe="")


# ---------- instants ----------


def _iso(moment: datetime, timespec: str) -> str:
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def iso_from_epoch_ms(value: object) -> str | None:
    """Epoch milliseconds as ISO 8601 UTC with milliseconds and "Z"; None when absent or unreadable."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    try:
        return _iso(_EPOCH + timedelta(milliseconds=value), "milliseconds")
    except OverflowError:
        return None


def iso_from_epoch_s(value: object) -> str | None:
    """Unix seconds as ISO 8601 UTC with a "Z"; None when absent or not a usable number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    try:
        return _iso(_EPOCH + timedelta(seconds=value), "seconds")
    except OverflowError:
        return None


def iso_from_text(value: object) -> str | None:
    """An ISO 8601 string as UTC with a "Z" (a naive one is taken as UTC); None when absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    spec = "milliseconds" if moment.microsecond else "seconds"
    return _iso(moment, spec)


# ---------- envelopes ----------


def mapping(value: object) -> Mapping[str, Any] | None:
    return cast(Mapping[str, Any], value) if isinstance(value, Mapping) else None


def text(value: object) -> str | None:
    """A non-empty string, or None."""
    return value if isinstance(value, str) and value else None


def item(payload: object, *keys: str) -> Mapping[str, Any] | None:
    """The object of an item envelope: under the first of `keys` that holds one, else the payload itself when it
    carries an `id` or `_id`."""
    body = mapping(payload)
    if body is None:
        return None
    for key in keys:
        inner = mapping(body.get(key))
        if inner is not None:
            return inner
    return body if ("id" in body or "_id" in body) else None


def items(payload: object, *keys: str) -> list[Mapping[str, Any]] | None:
    """The objects of a list envelope (a bare list, or a list under the first of `keys` holding one); None when
    the payload has no list at all."""
    if isinstance(payload, list):
        listed: list[object] = cast(list[object], payload)
    else:
        body = mapping(payload)
        found = next((body[k] for k in keys if body is not None and isinstance(body.get(k), list)), None)
        if found is None:
            return None
        listed = cast(list[object], found)
    return [m for m in map(mapping, listed) if m is not None]


# ---------- cursors ----------


def encode_cursor(provider: str, kind: str, value: str | int) -> str:
    """An opaque cursor naming the provider and the kind of position it holds (a page, an offset, a native cursor)."""
    raw = json.dumps([provider, kind, value], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(
    cursor: str, provider: str, kind: str, *, numeric: bool = False, maximum: int = 10_000_000
) -> str | int:
    """The position in a cursor `encode_cursor` made for this provider and kind: a number in 0..maximum when
    `numeric`, else a non-empty string; `InvalidArgument` otherwise (a forged cursor, one from another provider or
    kind, a number out of range)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded: object = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        decoded = None
    if isinstance(decoded, list):
        parts = cast(list[object], decoded)
        if len(parts) == 3 and parts[0] == provider and parts[1] == kind:
            value = parts[2]
            if not numeric and isinstance(value, str) and value:
                return value
            if numeric and isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum:
                return value
    raise invalid_cursor(provider)


def invalid_cursor(provider: str) -> InvalidArgument:
    return InvalidArgument(
        "cursor is not a cursor this server issued for this provider",
        field="cursor",
        hint=CURSOR_HINT,
        provider=provider,
    )
