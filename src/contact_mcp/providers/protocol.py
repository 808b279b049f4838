"""`ProtocolClient`: the `create_contact` tool on Protocol's API (`POST /v1/contacts`, PROVIDERS.md section 5), and
the reads its neighbours allow: `get_contact` (`GET /v1/contacts/{id}`) and `find_contacts` by `username` only
(`GET /v1/contacts?username=`; Protocol documents no pagination), and `delete_contact` (`DELETE /v1/contacts/{id}`).

It owns what is particular to Protocol: the request body (`username`, `phone_number`, and `display_name` /
`avatar_url` only when given), the mapping of Protocol's contact (unix `created_at`) to `CreatedContact`, and the
two follow-ups a create can need. A create is never replayed once it may have reached the server, so an unknown
outcome (timeout, dropped connection, 5xx, unreadable 2xx) names the read that settles it; and a duplicate
username (409) is looked up with `GET /v1/contacts?username=` so the conflict carries the existing contact's id.
Protocol publishes no host: `PROTOCOL_BASE_URL` is required (the registry checks it before start-up).

A dry run sends no create: the username lookup says whether Protocol would refuse it as taken (the same conflict,
with the existing id); what else Protocol might refuse (the phone number) and the new id no read can tell.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx2

from contact_mcp.errors import Conflict, ContactError, InvalidArgument, NotFound, ProviderError
from contact_mcp.models import (
    Contact,
    ContactMethod,
    ContactPage,
    ContactSummary,
    CreateContactInput,
    CreatedContact,
    DeleteContactInput,
    DeletedContact,
    FindContactsInput,
    Operation,
    changes_between,
)
from contact_mcp.providers.http import ErrorDetail, HttpProvider, path_segment
from contact_mcp.providers.http.wire import iso_from_epoch_s, item, items, text

log = logging.getLogger("contact_mcp.protocol")

_CONTACTS = "/v1/contacts"
_BODY_FIELDS = ("username", "phone_number", "display_name", "avatar_url")
# A username nobody registers: the probe only needs Protocol to check the key and answer.
_PROBE_USERNAME = "contact-mcp-doctor-probe"
_CONTACT_ID = re.compile(r"[A-Za-z0-9]{16}")
_GET_HINT = "Protocol has no contact with this id; find it by username with find_contacts"
_DELETE_HINT = (
    "Protocol has no contact with this id (it may be deleted already); find it by username with find_contacts"
)


class ProtocolClient(HttpProvider):
    """Protocol's contact API: creates contacts."""

    name: ClassVar[str] = "protocol"
    display_name: ClassVar[str] = "Protocol"
    operations: ClassVar[frozenset[Operation]] = frozenset(
        {Operation.CREATE_CONTACT, Operation.GET_CONTACT, Operation.FIND_CONTACTS, Operation.DELETE_CONTACT}
    )
    find_filters: ClassVar[tuple[str, ...]] = ("username",)
    filter_required: ClassVar[bool] = True
    paginates: ClassVar[bool] = False

    # ---------- create ----------

    async def create_contact(self, call: CreateContactInput) -> CreatedContact:
        if call.dry_run:
            return await self._dry_create(call)
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

    async def _dry_create(self, call: CreateContactInput) -> CreatedContact:
        existing_id = await self._find_id(call.username)
        if existing_id is not None:
            raise Conflict(
                f"username {call.username!r} is taken by contact {existing_id}",
                field="username",
                existing_id=existing_id,
                hint=_taken_hint(call.username, existing_id),
                provider=self.name,
                status=409,
            )
        planned = CreatedContact(
            provider=self.name,
            username=call.username,
            phone_number=call.phone_number,
            display_name=call.display_name or call.username,  # Protocol's documented default
            avatar_url=call.avatar_url,
            dry_run=True,
            note="Protocol assigns the id on creation, and no read can tell whether it would refuse the phone number.",
        )
        fields = ("username", "phone_number", "display_name", "avatar_url")
        shown = planned.model_dump(include=set(fields), exclude_none=True)
        return planned.model_copy(update={"changes": changes_between({}, shown)})

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
        username = text(contact.get("username")) or call.username
        return CreatedContact(
            provider=self.name,
            id=contact_id,
            username=username,
            phone_number=text(contact.get("phone_number")) or call.phone_number,
            # Protocol documents display_name as defaulting to the username.
            display_name=text(contact.get("display_name")) or call.display_name or username,
            avatar_url=text(contact.get("avatar_url")) or call.avatar_url,
            created_at=iso_from_epoch_s(contact.get("created_at")),
        )

    def _read_first_hint(self, username: str) -> str:
        read = f"GET {_CONTACTS}?{urlencode({'username': username})}"
        return (
            f"The create may have reached Protocol: check whether contact {username!r} exists ({read}) "
            "before calling create_contact again"
        )

    # ---------- reads ----------

    async def delete_contact(self, call: DeleteContactInput) -> DeletedContact:
        """`DELETE /v1/contacts/{id}`. [ASSUMPTION] Protocol documents the endpoint but not its answer: 204, or a
        2xx whose body (if any) is not read; an unknown id is 404 `not_found`."""
        if call.dry_run:
            return await self.delete_preview(call.contact_id)
        try:
            await self.request("DELETE", self._contact_path(call.contact_id), replayable=True)
        except NotFound as exc:
            raise exc.evolve(field="contact_id", hint=_DELETE_HINT) from None
        return DeletedContact(provider=self.name, id=call.contact_id)

    def _contact_path(self, contact_id: str) -> str:
        if not _CONTACT_ID.fullmatch(contact_id):
            raise InvalidArgument(
                "contact_id must be a Protocol contact id: 16 letters and digits",
                field="contact_id",
                hint="Use the contact's id as Protocol returns it, or find it by username with find_contacts",
                provider=self.name,
            )
        return f"{_CONTACTS}/{path_segment(contact_id)}"

    async def get_contact(self, contact_id: str) -> Contact:
        try:
            status, payload = await self.request("GET", self._contact_path(contact_id), replayable=True)
        except NotFound as exc:
            raise exc.evolve(field="contact_id", hint=_GET_HINT) from None
        contact = _item(payload)
        if contact is None or text(contact.get("id")) is None:
            raise ProviderError(f"Protocol answered {status} without a contact id", provider=self.name, status=status)
        phone = text(contact.get("phone_number"))
        return Contact(
            provider=self.name,
            id=str(contact["id"]),
            username=text(contact.get("username")),
            display_name=text(contact.get("display_name")),
            profile_picture=text(contact.get("avatar_url")),
            created_at=iso_from_epoch_s(contact.get("created_at")),
            methods=[ContactMethod(channel="phone", type="phone", value=phone)] if phone else [],
        )

    async def find_contacts(self, call: FindContactsInput) -> ContactPage:
        self.check_filters(call)
        try:
            _, payload = await self.request("GET", _CONTACTS, replayable=True, params={"username": call.username or ""})
        except NotFound:
            return ContactPage(provider=self.name, contacts=[])
        found = [c for c in _candidates(payload) if text(c.get("id"))][: call.limit]
        return ContactPage(
            provider=self.name,
            contacts=[
                ContactSummary(
                    id=str(c["id"]),
                    name=text(c.get("display_name")),
                    username=text(c.get("username")),
                    phone=text(c.get("phone_number")),
                )
                for c in found
            ],
        )

    # ---------- duplicate username ----------

    async def _with_existing_id(self, error: Conflict, username: str) -> Conflict:
        """Give the 409 the existing contact's id; a failed lookup still leaves a conflict, just without it."""
        existing_id: str | None = None
        try:
            existing_id = await self._find_id(username)
        except ContactError as lookup:
            log.info("protocol: looking up the existing contact after a 409 failed: %s", lookup.code.value)
        return error.evolve(existing_id=existing_id, field="username", hint=_taken_hint(username, existing_id))

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

    def error_for_status(
        self, status: int, detail: ErrorDetail, headers: httpx2.Headers, *, unknown: str | None
    ) -> ContactError:
        if detail.field is None and 400 <= status < 500:
            # Protocol's envelope has no field member; its message names the field (e.g. "username is required").
            detail = replace(detail, field=_named_field(detail.message))
        return super().error_for_status(status, detail, headers, unknown=unknown)

    async def probe(self) -> str:
        """An authenticated lookup of a username nobody has: 200 (empty) or 404 both prove the key works."""
        with contextlib.suppress(NotFound):
            await self.request("GET", _CONTACTS, replayable=True, params={"username": _PROBE_USERNAME})
        return f"Protocol at {self.shown_url}: API key accepted"


def _taken_hint(username: str, existing_id: str | None) -> str:
    if existing_id:
        return f"Contact {username!r} already exists (id {existing_id}): use it or pick another username"
    return f"A contact with username {username!r} already exists: use it or pick another username"


# ---------- reading Protocol's JSON ----------


def _item(payload: object) -> Mapping[str, Any] | None:
    """A contact object, bare or under `data`/`contact` (the public page shows only a placeholder response)."""
    return item(payload, "data", "contact")


def _candidates(payload: object) -> list[Mapping[str, Any]]:
    """The contacts in a lookup answer: a bare list, a list under `data`/`contacts`, or a single contact."""
    listed = items(payload, "data", "contacts")
    if listed is not None:
        return listed
    single = _item(payload)
    return [single] if single is not None else []


def _matching_id(payload: object, username: str) -> str | None:
    """The id of the contact whose username matches: exactly first, then ignoring case ([ASSUMPTION] Protocol
    treats usernames case-insensitively, so the 409 for "Alice" may be about "alice"). Never a guess."""
    named = [(c["username"], c["id"]) for c in _candidates(payload) if text(c.get("id")) and text(c.get("username"))]
    exact = [cid for name, cid in named if name == username]
    caseless = [cid for name, cid in named if name.casefold() == username.casefold()]
    found = (exact or caseless or [None])[0]
    return str(found) if found is not None else None


def _named_field(message: str | None) -> str | None:
    """The one request field a message names as a word, if exactly one."""
    if not message:
        return None
    named = [f for f in _BODY_FIELDS if re.search(rf"\b{f}\b", message)]
    return named[0] if len(named) == 1 else None
