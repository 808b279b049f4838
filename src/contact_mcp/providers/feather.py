"""`FeatherClient`: Feather's identity API serving `attach_contact` (attach a verified email, phone or handle to an
end user), `get_contact` (an end user with its contacts), `find_contacts` (the end-user list, filtered by
`org_external_end_user_id` as our `user_id`, cursor-paginated), `delete_contact` (`DELETE
/v1/identity/end-users/{id}`: the end user and all its data; Feather documents no way to take one contact off an
end user, so detach_contact stays with the store), plus the `whoami` probe; it owns the requests sent,
the mapping of Feather's answers into canonical results, and Feather-specific error hints.

Feather answers 201 whether the contact is new or was already on the end user, so the client reads the end user
first (which also turns an unknown id into a clean not_found) and reports `created` when the returned uid was not
among the end user's contacts before. Both requests are replayable: the read trivially, and the attach because
re-adding the same channel and value returns the existing contact (PROVIDERS.md [ASSUMPTION]).

A dry run sends only the read: an unknown end user is the same not_found, a contact already on the end user (same
channel, same normalised value) is the same `created: false`; otherwise the contact the attach would add. Whether
Feather would refuse the value (its 400) and the new contact's uid no read can tell.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contact_mcp.errors import InvalidArgument, NotFound, ProviderError
from contact_mcp.models import (
    AttachContactInput,
    AttachedContact,
    Contact,
    ContactMethod,
    ContactPage,
    ContactSummary,
    CustomValue,
    DeleteContactInput,
    DeletedContact,
    FieldChange,
    FindContactsInput,
    Operation,
)
from contact_mcp.normalize import normalize_uuid
from contact_mcp.providers.http import ErrorDetail, HttpProvider, path_segment
from contact_mcp.providers.http.wire import decode_cursor, encode_cursor

_Model = TypeVar("_Model", bound=BaseModel)


# ---------- Feather's response bodies (only what we read; unknown fields ignored) ----------


class _ContactResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    uid: str
    channel: str
    type: str | None = None
    raw_value: str
    normalized_value: str
    verification_method: str | None = None


class _ContactRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    uid: str


class _EndUserProfile(BaseModel):
    """GET /v1/identity/end-users/{id}, read before an attach: only the uids of the contacts matter there."""

    model_config = ConfigDict(extra="ignore")

    uid: str
    contacts: list[_ContactRef] = Field(default_factory=list[_ContactRef])


class _EndUser(BaseModel):
    """`EndUserResponse` (an item of the list); the profile adds its contacts."""

    model_config = ConfigDict(extra="ignore")

    uid: str
    status: str | None = None
    display_name: str | None = None
    primary_email: str | None = None
    primary_phone: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict[str, Any])
    org_external_end_user_id: str | None = None
    merged_into: str | None = None


class _EndUserWithContacts(_EndUser):
    """`EndUserProfileResponse`: GET /v1/identity/end-users/{id}."""

    contacts: list[_ContactResponse] = Field(default_factory=list[_ContactResponse])


class _EndUserPage(BaseModel):
    """`CursorPage[EndUserResponse]`: GET /v1/identity/end-users."""

    model_config = ConfigDict(extra="ignore")

    items: list[_EndUser]
    next_cursor: str | None = None
    has_more: bool = False


class _WhoAmI(BaseModel):
    model_config = ConfigDict(extra="ignore")

    organization_name: str | None = None
    role: str | None = None


class FeatherClient(HttpProvider):
    """Feather's identity API (`x-api-key` auth, flat `{error, message}` envelope, FastAPI 422s)."""

    name = "feather"
    display_name = "Feather"
    operations = frozenset(
        {Operation.ATTACH_CONTACT, Operation.GET_CONTACT, Operation.FIND_CONTACTS, Operation.DELETE_CONTACT}
    )
    find_filters = ("user_id",)

    def auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self._api_key}

    # ---------- attach_contact ----------

    async def attach_contact(self, call: AttachContactInput) -> AttachedContact:
        end_user_id = normalize_uuid(call.end_user_id, field="end_user_id")
        end_user_path = f"/v1/identity/end-users/{path_segment(end_user_id)}"

        try:
            _, profile_body = await self.request("GET", end_user_path, replayable=True)
            if call.dry_run:
                return self._dry_attach(end_user_id, call, profile_body)
            profile = self._parse(_EndUserProfile, profile_body, what="end user")
            before = {contact.uid for contact in profile.contacts}

            _, contact_body = await self.request(
                "POST",
                f"{end_user_path}/contacts",
                replayable=True,
                json_body={"channel": call.channel, "value": _value_to_send(call)},
            )
        except NotFound as exc:
            # Every path here is keyed by the end user, so a 404 ({"error": "not_found"}, PROVIDERS.md
            # [ASSUMPTION]) can only mean that id is unknown.
            raise exc.evolve(field=exc.field or "end_user_id") from None
        contact = self._parse(_ContactResponse, contact_body, what="contact")
        return AttachedContact(
            provider=self.name,
            # A contact added by someone else between our read and our POST also counts as created: the read
            # is the only way to tell, since Feather answers 201 either way.
            created=contact.uid not in before,
            end_user_id=end_user_id,
            uid=contact.uid,
            channel=contact.channel,
            type=contact.type,
            normalized_value=contact.normalized_value,
            verification_method=contact.verification_method,
        )

    def _dry_attach(self, end_user_id: str, call: AttachContactInput, profile_body: Any) -> AttachedContact:
        profile = self._parse(_EndUserWithContacts, profile_body, what="end user")
        value = _value_to_send(call)
        held = next(
            (c for c in profile.contacts if c.channel == call.channel and c.normalized_value == value),
            None,
        )
        if held is not None:
            return AttachedContact(
                provider=self.name,
                created=False,
                end_user_id=end_user_id,
                uid=held.uid,
                channel=held.channel,
                type=held.type,
                normalized_value=held.normalized_value,
                verification_method=held.verification_method,
                dry_run=True,
                changes=[],
            )
        added = {"channel": call.channel, "type": call.type, "value": value, "verified": True}
        return AttachedContact(
            provider=self.name,
            created=True,
            end_user_id=end_user_id,
            channel=call.channel,
            type=call.type,
            normalized_value=value,
            dry_run=True,
            changes=[FieldChange(field="methods", new={k: v for k, v in added.items() if v is not None})],
            note="Feather assigns the contact's uid, and no read can tell whether it would refuse the value.",
        )

    # ---------- get_contact ----------

    async def delete_contact(self, call: DeleteContactInput) -> DeletedContact:
        """`DELETE /v1/identity/end-users/{end_user_id}` (204): the end user and all associated data."""
        if call.dry_run:
            return await self.delete_preview(call.contact_id)
        end_user_id = self._end_user_id(call.contact_id)
        try:
            await self.request("DELETE", f"/v1/identity/end-users/{path_segment(end_user_id)}", replayable=True)
        except NotFound as exc:
            raise exc.evolve(field="contact_id", hint=_DELETE_HINT) from None
        return DeletedContact(provider=self.name, id=end_user_id)

    async def get_contact(self, contact_id: str) -> Contact:
        end_user_id = self._end_user_id(contact_id)
        try:
            _, body = await self.request("GET", f"/v1/identity/end-users/{path_segment(end_user_id)}", replayable=True)
        except NotFound as exc:
            raise exc.evolve(field="contact_id", hint=_GET_HINT) from None
        end_user = self._parse(_EndUserWithContacts, body, what="end user")
        primaries = {end_user.primary_email, end_user.primary_phone} - {None}
        return Contact(
            provider=self.name,
            id=end_user.uid,
            user_id=end_user.org_external_end_user_id,
            display_name=end_user.display_name,
            status=end_user.status,
            merged_into=end_user.merged_into,
            custom_fields=_scalars(end_user.metadata),
            methods=[
                ContactMethod(
                    id=c.uid,
                    channel=c.channel,
                    type=c.type,
                    raw_value=c.raw_value,
                    value=c.normalized_value,
                    primary=c.normalized_value in primaries,
                    # Feather holds verified contacts; the method says how, when it knows.
                    verified=True if c.verification_method else None,
                    verification_method=c.verification_method,
                )
                for c in end_user.contacts
            ],
        )

    def _end_user_id(self, contact_id: str) -> str:
        try:
            return normalize_uuid(contact_id, field="contact_id")
        except InvalidArgument as exc:
            raise exc.evolve(
                provider=self.name, hint="A Feather end user id is a UUID, e.g. from find_contacts"
            ) from None

    # ---------- find_contacts ----------

    async def find_contacts(self, call: FindContactsInput) -> ContactPage:
        self.check_filters(call)
        params = {"limit": str(call.limit)}
        if call.user_id is not None:
            params["org_external_end_user_id"] = call.user_id
        if call.cursor is not None:
            params["cursor"] = str(decode_cursor(call.cursor, self.name, "cursor"))
        _, body = await self.request("GET", "/v1/identity/end-users", replayable=True, params=params)
        page = self._parse(_EndUserPage, body, what="end-user list")
        return ContactPage(
            provider=self.name,
            contacts=[
                ContactSummary(
                    id=u.uid,
                    name=u.display_name,
                    user_id=u.org_external_end_user_id,
                    email=u.primary_email,
                    phone=u.primary_phone,
                )
                for u in page.items
            ],
            next_cursor=encode_cursor(self.name, "cursor", page.next_cursor)
            if page.has_more and page.next_cursor
            else None,
        )

    # ---------- doctor ----------

    async def probe(self) -> str:
        try:
            _, body = await self.request("GET", "/v1/identity/whoami", replayable=True)
        except NotFound:
            raise ProviderError(
                f"{self.shown_url} has no /v1/identity/whoami endpoint",
                provider=self.name,
                status=404,
                hint="FEATHER_BASE_URL must point at a Feather API host, e.g. https://api-sandbox.featherhq.com",
            ) from None
        who = self._parse(_WhoAmI, body, what="whoami answer")
        org = who.organization_name or "an unnamed organization"
        role = f" as {who.role}" if who.role else ""
        return f"Feather at {self.shown_url}: API key accepted for {org}{role}"

    # ---------- errors ----------

    def hint_for(self, status: int, detail: ErrorDetail) -> str | None:
        if status == 400:
            return "Feather could not use this value on this channel; give a valid email, +E.164 phone or handle"
        if status == 404:
            return (
                "Feather has no end user with this id; use the end_user_id Feather returned when the end user was "
                "resolved or created (POST /v1/identity/resolve)"
            )
        if status == 422:
            return _validation_hint(detail.field)
        if status == 429:
            # Feather documents no Retry-After: its limit is 6,000 requests a minute per organization.
            return "Feather's per-organization rate limit was reached; wait a few seconds, then retry"
        if status >= 500:
            return "Feather failed to complete the request; attaching the same value again is safe, so retry shortly"
        return None

    def _parse(self, model: type[_Model], body: Any, *, what: str) -> _Model:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors(include_input=False)})
            raise ProviderError(
                f"Feather's {what} did not have the documented shape (problem with: {self.scrub(', '.join(fields))})",
                provider=self.name,
                hint="Feather's API may have changed; the operator should check the provider's answer",
            ) from None


_GET_HINT = "Feather has no end user with this id; find end users (and their ids) with find_contacts"
_DELETE_HINT = "Feather has no end user with this id (it may be deleted already); find its id with find_contacts"


def _scalars(metadata: dict[str, Any]) -> dict[str, CustomValue]:
    """Feather's free-form metadata as custom fields: the scalar values; nested objects have no canonical place."""
    return {k: v for k, v in metadata.items() if v is None or isinstance(v, str | int | float | bool)}


def _value_to_send(call: AttachContactInput) -> str:
    """Typed channels get our normal form, so a phone written for the server's default region arrives as E.164;
    an untyped channel's value is Feather's to keep as written (trimmed)."""
    return call.normalized_value if call.type is not None else call.raw_value.strip()


def _validation_hint(field: str | None) -> str:
    if field == "end_user_id":
        return "end_user_id must be the end user's UUID"
    if field in ("channel", "value"):
        return f"Correct {field} as the message says and call again"
    return "Feather rejected the request's shape; correct the named field and call again"
