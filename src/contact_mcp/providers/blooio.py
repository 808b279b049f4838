"""`BlooioClient`: the Blooio v4 (beta) API client; it serves `attach_identity` with
`POST /contacts/{contactId}/identities`, `get_contact` with `GET /contacts/{contactId}` (the contact with its
identities) and `find_contacts` with `GET /contacts` (`identifier` for our email or phone, `q` for our query), and
owns how Blooio's answers become canonical results and errors.

Blooio's contact list paginates by cursor, except that a search (`q`) switches it to offset pagination
(`pagination: {limit, offset, total}`); either position travels to the agent in one opaque cursor.

`delete_contact` is `DELETE /contacts/{contactId}` (a soft delete of the contact and its identities);
`detach_identity` lists the contact's identities to find the `cid_` ids carrying the identifier, then detaches
each with `DELETE /contacts/{contactId}/identities/{identityId}`. Deletes are replayed like reads (DELETE is
idempotent; a replay after a lost answer finds nothing and says so).

The attach is never replayed once it may have reached Blooio (a replay could attach twice or hide the first
outcome). A 409 is resolved with a read instead: the contact's identities are listed (`GET
/contacts/{contactId}/identities`, following `next_cursor` for a bounded number of pages) and, when the same
identity is already there, it is returned with `created: false`; any other 409 (chat closed, channel inactive,
identifier owned elsewhere) is reported as a conflict. Blooio answers errors in two envelopes: route handlers
nest `{"error": {"code", "message", "details"}}`, the auth middleware answers 401/403 flat
`{"error": "ApiError", "message", "status"}`; `HttpProvider` reads both.

A dry run sends no attach: the contact's identities are read as for a 409 (an unknown contact is the same
not_found, an identity already there the same `created: false`), and `GET /contacts?identifier=` tells whether
another contact holds the identifier on that channel_type (the conflict the attach would get, [ASSUMPTION] as the
fake documents). Whether the contact's chat is closed or the channel inactive no documented read tells.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from contact_mcp.errors import Conflict, ContactError, InvalidArgument, NotFound, ProviderError
from contact_mcp.models import (
    AttachedIdentity,
    AttachIdentityInput,
    Contact,
    ContactPage,
    ContactSummary,
    DeleteContactInput,
    DeletedContact,
    DetachedIdentity,
    DetachIdentityInput,
    FieldChange,
    FindContactsInput,
    Identity,
    Operation,
)
from contact_mcp.normalize import identifier_kind
from contact_mcp.providers.http import ErrorDetail, HttpProvider, path_segment
from contact_mcp.providers.http.wire import decode_cursor, encode_cursor, iso_from_epoch_ms, items, mapping, text

# Blooio ids are "ct_" plus an opaque token (examples: ct_a1b2c3d4, ct_01HZ..., UUID-like with hyphens).
_CONTACT_ID = re.compile(r"ct_[A-Za-z0-9_-]{1,61}")
# A conflict lookup reads at most this many pages of identities (default page size 50, so 1,000 identities).
MAX_IDENTITY_PAGES = 20
_GET_HINT = "No Blooio contact has this contact_id; find contacts (and their ct_ ids) with find_contacts"
_DELETE_HINT = "No Blooio contact has this contact_id (it may be deleted already); find its ct_ id with find_contacts"


class BlooioClient(HttpProvider):
    """Blooio v4: contacts (`ct_`) and their phone/email identities (`cid_`)."""

    name: ClassVar[str] = "blooio"
    display_name: ClassVar[str] = "Blooio"
    operations: ClassVar[frozenset[Operation]] = frozenset(
        {
            Operation.ATTACH_IDENTITY,
            Operation.GET_CONTACT,
            Operation.FIND_CONTACTS,
            Operation.DELETE_CONTACT,
            Operation.DETACH_IDENTITY,
        }
    )
    find_filters: ClassVar[tuple[str, ...]] = ("email", "phone", "query")

    # ---------- operations ----------

    async def probe(self) -> str:
        await self.request("GET", "/contacts", replayable=True, params={"limit": "1"})
        return f"Blooio accepted the API key (GET {self.shown_url}/contacts?limit=1)"

    async def attach_identity(self, call: AttachIdentityInput) -> AttachedIdentity:
        path = f"/contacts/{_contact_segment(call.contact_id)}/identities"
        body: dict[str, str] = {"identifier": call.identifier}
        if call.channel_type is not None:
            body["channel_type"] = call.channel_type
        if call.channel_id is not None:
            body["channel_id"] = call.channel_id
        if call.dry_run:
            return await self._dry_attach(path, call)
        try:
            _, payload = await self.request("POST", path, replayable=False, json_body=body)
        except NotFound as exc:
            raise exc.evolve(field=exc.field or "contact_id") from None
        except Conflict as conflict:
            return await self._resolve_conflict(path, call, conflict)
        return _attached(_item(payload, what="attached identity"), call, created=True)

    async def _dry_attach(self, path: str, call: AttachIdentityInput) -> AttachedIdentity:
        try:
            existing = await self._find_identity(path, call)
        except NotFound as exc:
            raise exc.evolve(field=exc.field or "contact_id") from None
        if existing is not None:
            return _attached(existing, call, created=False).model_copy(update={"dry_run": True, "changes": []})
        owner_id = await self._owner(call)
        if owner_id is not None:
            raise _owned_elsewhere(
                Conflict(
                    f"identity {call.identifier} is already attached to contact {owner_id}",
                    provider=self.name,
                    status=409,
                ),
                owner_id,
            )
        planned = {"channel_type": call.channel_type, "identifier": call.identifier, "channel_id": call.channel_id}
        return AttachedIdentity(
            provider=self.name,
            created=True,
            contact_id=call.contact_id,
            channel_type=call.channel_type,
            identifier=call.identifier,
            channel_id=call.channel_id,
            dry_run=True,
            changes=[FieldChange(field="identities", new={k: v for k, v in planned.items() if v is not None})],
            note="Blooio assigns the identity's id, and no read can tell whether it would refuse the attach because "
            "the contact's chat is closed or the channel is not active.",
        )

    async def get_contact(self, contact_id: str) -> Contact:
        try:
            _, payload = await self.request("GET", f"/contacts/{_contact_segment(contact_id)}", replayable=True)
        except NotFound as exc:
            raise exc.evolve(field=exc.field or "contact_id", hint=_GET_HINT) from None
        data = _item(payload, what="contact")
        return Contact(
            provider=self.name,
            id=str(data["id"]),
            name=text(data.get("name")),
            tags=[tag for tag in _list(data.get("tags")) if isinstance(tag, str)] or None,
            created_at=iso_from_epoch_ms(data.get("created_at")),
            identities=[
                Identity(
                    id=str(i["id"]),
                    channel_type=text(i.get("channel_type")),
                    identifier=str(i["identifier"]),
                    channel_id=text(i.get("channel_id")),
                    created_at=iso_from_epoch_ms(i.get("created_at")),
                )
                for i in map(mapping, _list(data.get("identities")))
                if i is not None and text(i.get("id")) and text(i.get("identifier"))
            ],
        )

    async def find_contacts(self, call: FindContactsInput) -> ContactPage:
        self.check_filters(call)
        if call.email is not None and call.phone is not None:
            raise InvalidArgument(
                "Blooio finds a contact by one identifier at a time",
                field="phone",
                hint="Give email or phone, not both",
                provider=self.name,
            )
        params = {"limit": str(call.limit)}
        identifier = call.email or call.phone
        if identifier is not None:
            params["identifier"] = identifier
        # A search switches Blooio's list to offset pagination; without one it pages by cursor.
        kind = "offset" if call.query is not None else "cursor"
        if call.query is not None:
            params["q"] = call.query
        position = (
            decode_cursor(call.cursor, self.name, kind, numeric=kind == "offset") if call.cursor is not None else None
        )
        if position is not None:
            params["offset" if kind == "offset" else "cursor"] = str(position)
        _, payload = await self.request("GET", "/contacts", replayable=True, params=params)
        found, cursor = _page(payload)
        next_cursor = None
        if kind == "cursor" and cursor is not None:
            next_cursor = encode_cursor(self.name, kind, cursor)
        elif kind == "offset":
            after = (int(position) if position is not None else 0) + len(found)
            if _more_after(payload, after):
                next_cursor = encode_cursor(self.name, kind, after)
        return ContactPage(
            provider=self.name,
            contacts=[_summary(c) for c in found if text(c.get("id"))],
            next_cursor=next_cursor,
        )

    # ---------- erasure ----------

    async def delete_contact(self, call: DeleteContactInput) -> DeletedContact:
        """`DELETE /contacts/{contactId}`: Blooio soft-deletes the contact and its identities."""
        if call.dry_run:
            return await self.delete_preview(call.contact_id)
        try:
            _, payload = await self.request("DELETE", f"/contacts/{_contact_segment(call.contact_id)}", replayable=True)
        except NotFound as exc:
            raise exc.evolve(field=exc.field or "contact_id", hint=_DELETE_HINT) from None
        return DeletedContact(provider=self.name, id=str(_item(payload, what="deleted contact")["id"]))

    async def detach_identity(self, call: DetachIdentityInput) -> DetachedIdentity:
        """Blooio detaches by identity id (`cid_`): the contact's identities are listed to find those carrying the
        identifier (on the channel type / id when given), then each is detached."""
        path = f"/contacts/{_contact_segment(call.contact_id)}/identities"
        try:
            held = [item async for item in self._identities(path)]
        except NotFound as exc:
            raise exc.evolve(field=exc.field or "contact_id", hint=_GET_HINT) from None
        found = [item for item in held if _same_identity(item, call) and text(item.get("id"))]
        matched = [str(item["id"]) for item in found]
        if not matched:
            names = list(dict.fromkeys(str(i["identifier"]) for i in held if text(i.get("identifier"))))[:10]
            raise NotFound(
                f"the Blooio contact has no identity {call.identifier}",
                field="identifier",
                provider=self.name,
                hint=f"Its identities: {', '.join(names)}" if names else "The contact has no identities",
            )
        if not call.dry_run:  # a dry run has read what a detach needs, and stops before changing anything
            for identity_id in matched:
                _, payload = await self.request("DELETE", f"{path}/{path_segment(identity_id)}", replayable=True)
                _item(payload, what="detached identity")
        return DetachedIdentity(
            provider=self.name,
            contact_id=call.contact_id,
            identifier=call.identifier,
            ids=matched,
            dry_run=True if call.dry_run else None,
            changes=[FieldChange(field="identities", old=_identity_shown(item)) for item in found],
        )

    # ---------- the 409 lookup ----------

    async def _resolve_conflict(self, path: str, call: AttachIdentityInput, conflict: Conflict) -> AttachedIdentity:
        """Return the identity when the 409 means it is already attached; re-raise the conflict otherwise."""
        try:
            existing = await self._find_identity(path, call)
        except ContactError as exc:
            raise conflict.evolve(
                hint=(
                    f"Blooio refused the attach, and checking whether the identity is already on the contact failed "
                    f"({exc.code.value}: {exc.message}); retry later"
                )
            ) from None
        if existing is None:
            owner_id = await self._owner(call)
            if owner_id is not None:
                raise _owned_elsewhere(conflict, owner_id) from None
            raise conflict.evolve(
                hint=(
                    "This identity is not on the contact; Blooio refused it because of the contact's state "
                    "(e.g. its chat is closed, the channel is not active, or another contact owns the identifier). "
                    "Resolve that in Blooio, or use another channel_type or identifier"
                )
            ) from None
        return _attached(existing, call, created=False)

    async def _owner(self, call: AttachIdentityInput) -> str | None:
        """The other contact holding the call's identifier on its channel_type, if any ([ASSUMPTION] the reason
        for a 409 that is not a duplicate, as the fake documents); a failed lookup tells nothing."""
        try:
            _, payload = await self.request("GET", "/contacts", replayable=True, params={"identifier": call.identifier})
            holders, _ = _page(payload)
        except ContactError:
            return None
        owner = next((c for c in holders if text(c.get("id")) != call.contact_id and _holds(c, call)), None)
        return str(owner["id"]) if owner is not None else None

    async def _find_identity(self, path: str, call: AttachIdentityInput) -> Mapping[str, Any] | None:
        async for item in self._identities(path):
            if _same_identity(item, call):
                return item
        return None

    async def _identities(self, path: str) -> AsyncIterator[Mapping[str, Any]]:
        """The contact's identities, following `next_cursor` for at most `MAX_IDENTITY_PAGES` pages."""
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_IDENTITY_PAGES):
            params = {"cursor": cursor} if cursor else None
            _, payload = await self.request("GET", path, replayable=True, params=params)
            found, cursor = _page(payload)
            for item in found:
                yield item
            if cursor is None or cursor in seen:
                return
            seen.add(cursor)

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


def _unreadable(what: str) -> ProviderError:
    return ProviderError(
        f"Blooio's answer has no readable {what}",
        provider=BlooioClient.name,
        hint="The provider's answer could not be read; check the contact's identities before retrying",
    )


def _item(payload: object, *, what: str) -> Mapping[str, Any]:
    """The object of an item envelope `{"data": {...}}` that carries an id."""
    envelope = mapping(payload)
    data = mapping(envelope.get("data")) if envelope is not None else None
    if data is None or not text(data.get("id")):
        raise _unreadable(what)
    return data


def _page(payload: object) -> tuple[list[Mapping[str, Any]], str | None]:
    """The items and the next cursor of a list envelope `{"data": [...], "has_more", "next_cursor"}`."""
    envelope = mapping(payload)
    found = items(envelope, "data") if envelope is not None else None
    if envelope is None or found is None:
        raise _unreadable("list")
    cursor = text(envelope.get("next_cursor"))
    if envelope.get("has_more") is False:
        return found, None
    return found, cursor


def _more_after(payload: object, after: int) -> bool:
    """In offset mode: `pagination.total` says whether anything lies beyond `after`; `has_more` when it is absent."""
    envelope = mapping(payload) or {}
    total = (mapping(envelope.get("pagination")) or {}).get("total")
    if isinstance(total, int) and not isinstance(total, bool):
        return after < total
    return envelope.get("has_more") is True


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []  # pyright: ignore[reportUnknownArgumentType]


def _summary(contact: Mapping[str, Any]) -> ContactSummary:
    identifiers = [text(i.get("identifier")) for i in map(mapping, _list(contact.get("identities"))) if i is not None]
    return ContactSummary(
        id=str(contact["id"]),
        name=text(contact.get("name")),
        email=next((i for i in identifiers if i and identifier_kind(i) == "email"), None),
        phone=next((i for i in identifiers if i and i.startswith("+")), None),
    )


def _same_identity(item: Mapping[str, Any], call: AttachIdentityInput | DetachIdentityInput) -> bool:
    """Same identifier, and the same channel_type / channel_id where the call names one."""
    identifier = item.get("identifier")
    if not isinstance(identifier, str):
        return False
    if identifier_kind(call.identifier) == "email":
        if identifier.strip().lower() != call.identifier.lower():
            return False
    elif identifier.strip() != call.identifier:
        return False
    if call.channel_type is not None and item.get("channel_type") != call.channel_type:
        return False
    return call.channel_id is None or item.get("channel_id") == call.channel_id


def _owned_elsewhere(conflict: Conflict, owner_id: str) -> Conflict:
    return conflict.evolve(
        field="identifier",
        existing_id=owner_id,
        hint=f"Contact {owner_id} holds this identifier on this channel_type: use that contact, or attach another "
        "identifier or channel_type",
    )


def _identity_shown(item: Mapping[str, Any]) -> dict[str, Any]:
    """An identity as a change shows it (as the store does: no timestamps)."""
    return {key: item[key] for key in ("id", "channel_type", "identifier", "channel_id") if item.get(key) is not None}


def _holds(contact: Mapping[str, Any], call: AttachIdentityInput) -> bool:
    """Whether a contact of a `GET /contacts?identifier=` answer holds the call's identifier on its channel_type."""
    identities = [i for i in map(mapping, _list(contact.get("identities"))) if i is not None]
    probe = AttachIdentityInput(contact_id="", identifier=call.identifier, channel_type=None, channel_id=None)
    return any(_same_identity(i, probe) and i.get("channel_type") == call.channel_type for i in identities)


def _attached(data: Mapping[str, Any], call: AttachIdentityInput, *, created: bool) -> AttachedIdentity:
    identity_id = data.get("id")
    if not isinstance(identity_id, str) or not identity_id:
        raise _unreadable("identity id")
    return AttachedIdentity(
        provider=BlooioClient.name,
        created=created,
        id=identity_id,
        contact_id=text(data.get("contact_id")) or call.contact_id,
        channel_type=text(data.get("channel_type")),
        identifier=text(data.get("identifier")) or call.identifier,
        channel_id=text(data.get("channel_id")),
        created_at=iso_from_epoch_ms(data.get("created_at")),
    )
