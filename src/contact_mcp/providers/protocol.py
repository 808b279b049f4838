"""`ProtocolClient`: the `create_contact` tool on Protocol's API (`POST /v1/contacts`, PROVIDERS.md section 5).

It owns what is particular to Protocol: the request body (`username`, `phone_number`, and `display_name` /
`avatar_url` only when given), the mapping of Protocol's contact (unix `created_at`) to `CreatedContact`, and the
two follow-ups a create can need. A create is never replayed once it may have reached the server, so an unknown
outcome (timeout, dropped connection, 5xx, unreadable 2xx) names the read that settles it; and a duplicate
username (409) is looked up with `GET /v1/contacts?username=` so the conflict carries the existing contact's id.
Protocol publishes no host: `PROTOCOL_BASE_URL` is required (the registry checks it before start-up).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, cast
from urllib.parse import urlencode

import httpx2

from contact_mcp.errors import (
    Conflict,
    ContactError,
    NotFound,
    ProviderError,
)
from contact_mcp.models import CreateContactInput, CreatedContact, Operation
from contact_mcp.providers.http import ErrorDetail, HttpProvider

log = logging.getLogger("contact_mcp.protocol")

_CONTACTS = "/v1/contacts"
_BODY_FIELDS = ("username", "phone_number", "display_name", "avatar_url")
# A username nobody registers: the probe only needs Protocol to check the key and answer.
_PROBE_USERNAME = "contact-mcp-doctor-probe"


class ProtocolClient(HttpProvider):
    """Protocol's contact API: creates contacts."""

    name: ClassVar[str] = "protocol"
    display_name: ClassVar[str] = "Protocol"
    operations: ClassVar[frozenset[Operation]] = frozenset({Operation.CREATE_CONTACT})

    # ---------- create ----------

    async def create_contact(self, call: CreateContactInput) -> CreatedContact:
        body = {"username": call.username, "phone_number": call.phone_number}
        if call.display_name is not None:
            body["display_name"] = call.display_name
        if call.avatar_url is not None:
            body["avatar_url"] = call.avatar_url
        try:
            status, payload = await self.request(
                "POST", _CONTACTS, replayable=False, json_body=body, read_first=self._read_first_hint(call.username)
            )
        except Conflict as exc:
            raise await self._with_existing_id(exc, call.username) from None
        return self._created(status, payload, call)

    def _created(self, status: int, payload: Any, call: CreateContactInput) -> CreatedContact:
        contact = _item(payload)
        contact_id = contact.get("id") if contact is not None else None
        if contact is None or not isinstance(contact_id, str) or not contact_id:
            raise ProviderError(
                f"Protocol answered {status} without a contact id",
                provider=self.name,
                status=status,
                hint=self._read_first_hint(call.username),
            )
        username = _str(contact.get("username")) or call.username
        return CreatedContact(
            provider=self.name,
            id=contact_id,
            username=username,
            phone_number=_str(contact.get("phone_number")) or call.phone_number,
            # Protocol documents display_name as defaulting to the username.
            display_name=_str(contact.get("display_name")) or call.display_name or username,
            avatar_url=_str(contact.get("avatar_url")) or call.avatar_url,
            created_at=_iso_from_unix(contact.get("created_at")),
        )

    def _read_first_hint(self, username: str) -> str:
        read = f"GET {_CONTACTS}?{urlencode({'username': username})}"
        return (
            f"The create may have reached Protocol: check whether contact {username!r} exists ({read}) "
            "before calling create_contact again"
        )

    # ---------- duplicate username ----------

    async def _with_existing_id(self, error: Conflict, username: str) -> Conflict:
        """Give the 409 the existing contact's id; a failed lookup still leaves a conflict, just without it."""
        try:
            error.existing_id = await self._find_id(username)
        except ContactError as lookup:
            log.info("protocol: looking up the existing contact after a 409 failed: %s", lookup.code.value)
        error.field = "username"
        if error.existing_id:
            error.hint = (
                f"Contact {username!r} already exists (id {error.existing_id}): use it or pick another username"
            )
        else:
            error.hint = f"A contact with username {username!r} already exists: use it or pick another username"
        return error

    async def _find_id(self, username: str) -> str | None:
        """The id of the contact with this username, or None; a lookup is a read, so it may be retried."""
        try:
            _, payload = await self.request("GET", _CONTACTS, replayable=True, params={"username": username})
        except NotFound:
            return None
        return _matching_id(payload, username)

    # ---------- errors and probe ----------

    def hint_for(self, status: int, detail: ErrorDetail) -> str | None:
        if status == 404:
            # The create path has no id in it: a 404 means the configured host is not Protocol's API root.
            return "Protocol does not know /v1/contacts here: the operator must check PROTOCOL_BASE_URL (no /v1)"
        return None

    def error_for_status(self, status: int, detail: ErrorDetail, headers: httpx2.Headers) -> ContactError:
        error = super().error_for_status(status, detail, headers)
        if error.field is None and 400 <= status < 500:
            # Protocol's envelope has no field member; its message names the field (e.g. "username is required").
            error.field = _named_field(detail.message)
        return error

    async def probe(self) -> str:
        """An authenticated lookup of a username nobody has: 200 (empty) or 404 both prove the key works."""
        with contextlib.suppress(NotFound):
            await self.request("GET", _CONTACTS, replayable=True, params={"username": _PROBE_USERNAME})
        return f"Protocol at {self.base_url}: API key accepted"


# ---------- reading Protocol's JSON ----------


def _mapping(value: object) -> Mapping[str, Any] | None:
    return cast(Mapping[str, Any], value) if isinstance(value, Mapping) else None


def _item(payload: object) -> Mapping[str, Any] | None:
    """A contact object, bare or under `data`/`contact` (the public page shows only a placeholder response)."""
    body = _mapping(payload)
    if body is None:
        return None
    if "id" in body:
        return body
    for key in ("data", "contact"):
        inner = _mapping(body.get(key))
        if inner is not None:
            return inner
    return None


def _candidates(payload: object) -> list[Mapping[str, Any]]:
    """The contacts in a lookup answer: a bare list, a list under `data`/`contacts`, or a single contact."""
    if isinstance(payload, list):
        items: list[object] = cast(list[object], payload)
    else:
        body = _mapping(payload)
        listed = next((body[k] for k in ("data", "contacts") if body and isinstance(body.get(k), list)), None)
        items = cast(list[object], listed) if listed is not None else [_item(payload)]
    return [m for m in map(_mapping, items) if m is not None]


def _matching_id(payload: object, username: str) -> str | None:
    """The id of the contact whose username matches: exactly first, then ignoring case ([ASSUMPTION] Protocol
    treats usernames case-insensitively, so the 409 for "Alice" may be about "alice"). Never a guess."""
    named = [(c["username"], c["id"]) for c in _candidates(payload) if _str(c.get("id")) and _str(c.get("username"))]
    exact = [cid for name, cid in named if name == username]
    caseless = [cid for name, cid in named if name.casefold() == username.casefold()]
    found = (exact or caseless or [None])[0]
    return str(found) if found is not None else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _iso_from_unix(value: object) -> str | None:
    """Protocol's unix seconds as ISO 8601 UTC with a `Z`; None when absent or not a usable number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        moment = datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _named_field(message: str | None) -> str | None:
    """The one request field a message names as a word, if exactly one."""
    if not message:
        return None
    named = [f for f in _BODY_FIELDS if re.search(rf"\b{f}\b", message)]
    return named[0] if len(named) == 1 else None
