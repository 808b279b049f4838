"""`BlooioClient`: the Blooio v4 (beta) API client; it serves `attach_identity` with
`POST /contacts/{contactId}/identities` and owns how Blooio's answers become canonical results and errors.

The attach is never replayed once it may have reached Blooio (a replay could attach twice or hide the first
outcome). A 409 is resolved with a read instead: the contact's identities are listed (`GET
/contacts/{contactId}/identities`, following `next_cursor` for a bounded number of pages) and, when the same
identity is already there, it is returned with `created: false`; any other 409 (chat closed, channel inactive,
identifier owned elsewhere) is reported as a conflict. Blooio answers errors in two envelopes: route handlers
nest `{"error": {"code", "message", "details"}}`, the auth middleware answers 401/403 flat
`{"error": "ApiError", "message", "status"}`; `HttpProvider` reads both.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, cast

from contact_mcp.errors import Conflict, ContactError, InvalidArgument, NotFound, ProviderError
from contact_mcp.models import AttachedIdentity, AttachIdentityInput, Operation
from contact_mcp.providers.http import ErrorDetail, HttpProvider, path_segment

# Blooio ids are "ct_" plus an opaque token (examples: ct_a1b2c3d4, ct_01HZ..., UUID-like with hyphens).
_CONTACT_ID = re.compile(r"ct_[A-Za-z0-9_-]{1,61}")
# A conflict lookup reads at most this many pages of identities (default page size 50, so 1,000 identities).
MAX_IDENTITY_PAGES = 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BlooioClient(HttpProvider):
    """Blooio v4: contacts (`ct_`) and their phone/email identities (`cid_`)."""

    name: ClassVar[str] = "blooio"
    display_name: ClassVar[str] = "Blooio"
    operations: ClassVar[frozenset[Operation]] = frozenset({Operation.ATTACH_IDENTITY})

    # ---------- operations ----------

    async def probe(self) -> str:
        await self.request("GET", "/contacts", replayable=True, params={"limit": "1"})
        return f"Blooio accepted the API key (GET {self.base_url}/contacts?limit=1)"

    async def attach_identity(self, call: AttachIdentityInput) -> AttachedIdentity:
        path = f"/contacts/{_contact_segment(call.contact_id)}/identities"
        body: dict[str, str] = {"identifier": call.identifier}
        if call.channel_type is not None:
            body["channel_type"] = call.channel_type
        if call.channel_id is not None:
            body["channel_id"] = call.channel_id
        try:
            _, payload = await self.request("POST", path, replayable=False, json_body=body)
        except NotFound as exc:
            exc.field = exc.field or "contact_id"
            raise
        except Conflict as conflict:
            return await self._resolve_conflict(path, call, conflict)
        return _attached(_item(payload, what="attached identity"), call, created=True)

    # ---------- the 409 lookup ----------

    async def _resolve_conflict(self, path: str, call: AttachIdentityInput, conflict: Conflict) -> AttachedIdentity:
        """Return the identity when the 409 means it is already attached; re-raise the conflict otherwise."""
        try:
            existing = await self._find_identity(path, call)
        except ContactError as exc:
            conflict.hint = (
                f"Blooio refused the attach, and checking whether the identity is already on the contact failed "
                f"({exc.code.value}: {exc.message}); retry later"
            )
            raise conflict from None
        if existing is None:
            conflict.hint = (
                "This identity is not on the contact; Blooio refused it because of the contact's state "
                "(e.g. its chat is closed, the channel is not active, or another contact owns the identifier). "
                "Resolve that in Blooio, or use another channel_type or identifier"
            )
            raise conflict
        return _attached(existing, call, created=False)

    async def _find_identity(self, path: str, call: AttachIdentityInput) -> Mapping[str, Any] | None:
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_IDENTITY_PAGES):
            params = {"cursor": cursor} if cursor else None
            _, payload = await self.request("GET", path, replayable=True, params=params)
            items, cursor = _page(payload)
            match = next((item for item in items if _same_identity(item, call)), None)
            if match is not None:
                return match
            if cursor is None or cursor in seen:
                return None
            seen.add(cursor)
        return None

    # ---------- error mapping ----------

    def hint_for(self, status: int, detail: ErrorDetail) -> str | None:
        if status == 401:
            return "Blooio refused the server's BLOOIO_API_KEY; the operator must set a valid key"
        if status == 403:
            return "Blooio refuses BLOOIO_API_KEY here (blocked key or plan limit); the operator must check the account"
        if status == 404:
            return "No Blooio contact has this contact_id; use the ct_ id of an existing Blooio contact"
        if status in (400, 422):
            return (
                "Correct the field Blooio names: identifier (+E.164 phone or email), channel_type, or channel_id "
                "(required for amb), then call again"
            )
        if status == 429:
            return "Blooio is rate limiting this API key; wait, then call again"
        return None


# ---------- request building ----------


def _contact_segment(contact_id: str) -> str:
    """The percent-encoded path segment of a contact id, refused before any request unless it is a ct_ id."""
    if not _CONTACT_ID.fullmatch(contact_id):
        raise InvalidArgument(
            "contact_id is not a Blooio contact id",
            field="contact_id",
            hint="Use the contact's ct_ id as Blooio returns it, e.g. ct_a1b2c3d4",
            provider=BlooioClient.name,
        )
    return path_segment(contact_id)


# ---------- response mapping ----------


def _mapping(value: object) -> Mapping[str, Any] | None:
    return cast(Mapping[str, Any], value) if isinstance(value, Mapping) else None


def _unreadable(what: str) -> ProviderError:
    return ProviderError(
        f"Blooio's answer has no readable {what}",
        provider=BlooioClient.name,
        hint="The provider's answer could not be read; check the contact's identities before retrying",
    )


def _item(payload: object, *, what: str) -> Mapping[str, Any]:
    """The object of an item envelope `{"data": {...}}` that carries an id."""
    envelope = _mapping(payload)
    data = _mapping(envelope.get("data")) if envelope is not None else None
    if data is None or not isinstance(data.get("id"), str) or not data["id"]:
        raise _unreadable(what)
    return data


def _page(payload: object) -> tuple[list[Mapping[str, Any]], str | None]:
    """The items and the next cursor of a list envelope `{"data": [...], "has_more", "next_cursor"}`."""
    envelope = _mapping(payload)
    data = envelope.get("data") if envelope is not None else None
    if envelope is None or not isinstance(data, list):
        raise _unreadable("identity list")
    items = [m for m in (_mapping(d) for d in cast(list[object], data)) if m is not None]
    cursor = envelope.get("next_cursor")
    more = envelope.get("has_more")
    if more is False or not isinstance(cursor, str) or not cursor:
        return items, None
    return items, cursor


def _same_identity(item: Mapping[str, Any], call: AttachIdentityInput) -> bool:
    """Same identifier, and the same channel_type / channel_id where the call names one."""
    identifier = item.get("identifier")
    if not isinstance(identifier, str):
        return False
    if "@" in call.identifier:
        if identifier.strip().lower() != call.identifier.lower():
            return False
    elif identifier.strip() != call.identifier:
        return False
    if call.channel_type is not None and item.get("channel_type") != call.channel_type:
        return False
    return call.channel_id is None or item.get("channel_id") == call.channel_id


def _attached(data: Mapping[str, Any], call: AttachIdentityInput, *, created: bool) -> AttachedIdentity:
    identity_id = data.get("id")
    if not isinstance(identity_id, str) or not identity_id:
        raise _unreadable("identity id")
    return AttachedIdentity(
        provider=BlooioClient.name,
        created=created,
        id=identity_id,
        contact_id=_text(data.get("contact_id")) or call.contact_id,
        channel_type=_text(data.get("channel_type")),
        identifier=_text(data.get("identifier")) or call.identifier,
        channel_id=_text(data.get("channel_id")),
        created_at=iso_from_epoch_ms(data.get("created_at")),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def iso_from_epoch_ms(value: object) -> str | None:
    """Blooio's epoch milliseconds as ISO 8601 UTC with milliseconds and "Z"; None when absent or unreadable."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value):
        return None
    try:
        moment = _EPOCH + timedelta(milliseconds=value)
    except OverflowError:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
