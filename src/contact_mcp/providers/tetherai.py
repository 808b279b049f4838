"""`TetherAIClient`: the `set_verification` operation on a TetherAI instance's contacts API, and the reads its
documented neighbours allow: `get_contact` (`GET /api/contacts/{id}`) and `find_contacts`
(`GET /api/contacts?page&size`, no filters; the page number and size travel in our opaque cursor).

TetherAI publishes no shared host: every organisation runs its own instance, so `TETHERAI_BASE_URL` is required and
all paths sit under `/api/`. The client sends `PATCH /api/contacts/{id}/verify-contact-methods` with a bearer token
and maps the `{message, data: {contact}}` answer to a `VerificationResult` built from the entry the call touched.
The module reads top to bottom: request building, response mapping, error mapping (with the one extra read that
lists a contact's values when TetherAI refuses a value that is not on the contact).

A dry run sends no PATCH: it reads the contact (`GET /api/contacts/{id}`), refuses an unknown contact or a value
the contact lacks as the PATCH would (not_found on contact_id, invalid_argument on value), and reports the entry's
verification state before and after; `verifiedBy` is set by TetherAI to the caller's user, which no read tells.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

import httpx2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contact_mcp.errors import ContactError, InvalidArgument, NotFound, ProviderError
from contact_mcp.models import (
    Contact,
    ContactMethod,
    ContactPage,
    ContactSummary,
    FindContactsInput,
    MethodType,
    Operation,
    SetVerificationInput,
    VerificationResult,
    changes_between,
    verification_message,
)
from contact_mcp.providers.http import ErrorDetail, HttpProvider, path_segment
from contact_mcp.providers.http.wire import (
    decode_cursor,
    encode_cursor,
    invalid_cursor,
    iso_from_text,
    mapping,
    text,
)

VerificationMessage = Literal[
    "Phone number verified", "Phone number verification cleared", "Email verified", "Email verification cleared"
]
MESSAGES: frozenset[str] = frozenset(get_args(VerificationMessage))

_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")
# The contact's arrays are named after the method type: `phoneNumber[]` and `email[]`.
_ARRAY_FOR: dict[MethodType, str] = {"phone": "phoneNumber", "email": "email"}
_NOUN_FOR: dict[MethodType, str] = {"phone": "phone numbers", "email": "email addresses"}
_HINT_VALUES_MAX = 10


_GET_HINT = "No TetherAI contact has this contact_id; check the id (the contact's 24-hex _id, from find_contacts)"


def object_id(raw: str, *, field: str, provider: str | None = None) -> str:
    """TetherAI ids are MongoDB ObjectIds: exactly 24 hex digits (either case); returned lower-cased."""
    given = raw.strip()
    if not _OBJECT_ID.fullmatch(given):
        raise InvalidArgument(
            f"{field} must be a TetherAI contact id: 24 hexadecimal characters",
            field=field,
            hint="Use the contact's _id, e.g. 64b2c3d4e5f60012345678aa",
            provider=provider,
        )
    return given.lower()


# ---------- response models (only what we read; TetherAI sends much more) ----------


def _id_of(value: object) -> object:
    """`verifiedBy` is a user id; tolerate it arriving populated (`{"_id": ..., "fullName": ...}`)."""
    if isinstance(value, Mapping):
        return cast(Mapping[str, object], value).get("_id")
    return value


class _Entry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    value: str
    verified_at: str | None = Field(default=None, alias="verifiedAt")
    verified_by: str | None = Field(default=None, alias="verifiedBy")
    verification_source: str | None = Field(default=None, alias="verificationSource")

    @field_validator("verified_by", mode="before")
    @classmethod
    def _user_id(cls, value: object) -> object:
        return _id_of(value)


class _Contact(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(alias="_id")
    phone_number: list[_Entry] = Field(default_factory=list[_Entry], alias="phoneNumber")
    email: list[_Entry] = Field(default_factory=list[_Entry])

    def entries(self, kind: MethodType) -> list[_Entry]:
        return self.phone_number if kind == "phone" else self.email


class _Data(BaseModel):
    model_config = ConfigDict(extra="ignore")

    contact: _Contact


class _VerifyResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message: str
    data: _Data


class TetherAIClient(HttpProvider):
    """TetherAI's contacts API: set or clear verification on one phone or email entry of a contact."""

    name = "tetherai"
    display_name = "TetherAI"
    operations = frozenset({Operation.SET_VERIFICATION, Operation.GET_CONTACT, Operation.FIND_CONTACTS})
    find_filters = ()

    # ---------- requests ----------

    async def probe(self) -> str:
        """The cheapest authenticated read: one contact of the first page."""
        await self.request("GET", "/api/contacts", replayable=True, params={"page": "1", "size": "1"})
        return f"TetherAI at {self.shown_url}: token accepted (GET /api/contacts answered)"

    async def set_verification(self, call: SetVerificationInput) -> VerificationResult:
        contact_id = object_id(call.contact_id, field="contact_id")
        if call.dry_run:
            return await self._dry_verification(contact_id, call)
        path = f"/api/contacts/{path_segment(contact_id)}/verify-contact-methods"
        try:
            # PATCH sets the entry to a given state, so sending it twice is harmless: replayable.
            _, body = await self.request("PATCH", path, replayable=True, json_body=verify_body(call))
        except ContactError as exc:
            raise await self._refined(exc, contact_id, call) from None
        return self._verification_result(body, call)

    async def _dry_verification(self, contact_id: str, call: SetVerificationInput) -> VerificationResult:
        try:
            _, body = await self.request("GET", f"/api/contacts/{path_segment(contact_id)}", replayable=True)
        except NotFound as exc:
            raise exc.evolve(field="contact_id", hint=_GET_HINT) from None
        contact = _contact_of(body)
        entries = [(str(e["value"]), e) for e in _entries(contact, call.type)] if contact is not None else []
        entry = next((e for value, e in entries if value == call.value), None) or next(
            (e for value, e in entries if value.casefold() == call.value.casefold()), None
        )
        if entry is None:
            raise InvalidArgument(
                f"the contact has no {call.type} {call.value}",
                field="value",
                hint=_values_hint(call.type, [value for value, _ in entries]),
                provider=self.name,
                status=400,
            )
        state = verify_body(call)
        after = {"verified_at": state["verifiedAt"], "verification_source": state.get("verificationSource")}
        before = {
            "verified_at": text(entry.get("verifiedAt")),
            "verification_source": text(entry.get("verificationSource")),
        }
        value = str(entry["value"])
        old = {"channel": call.type, "value": value, "verified": before["verified_at"] is not None, **before}
        new = {"channel": call.type, "value": value, "verified": call.verified, **after}
        return VerificationResult(
            provider=self.name,
            message=verification_message(call.type, call.verified),
            contact_id=contact_id,
            type=call.type,
            value=value,
            verified=call.verified,
            verified_at=after["verified_at"],
            verification_source=after["verification_source"],
            dry_run=True,
            changes=changes_between({"methods": _present(old)}, {"methods": _present(new)}),
            note="TetherAI records the caller's user as verified_by, which its reads cannot tell in advance."
            if call.verified
            else None,
        )

    async def get_contact(self, contact_id: str) -> Contact:
        canonical = object_id(contact_id, field="contact_id", provider=self.name)
        try:
            _, body = await self.request("GET", f"/api/contacts/{path_segment(canonical)}", replayable=True)
        except NotFound as exc:
            raise exc.evolve(field=exc.field or "contact_id", hint=_GET_HINT) from None
        contact = _contact_of(body)
        if contact is None or text(contact.get("_id")) is None:
            raise ProviderError(
                "TetherAI's contact answer has no data.contact._id",
                provider=self.name,
                status=200,
                hint="TetherAI's API may have changed; the operator should check the instance's answer",
            )
        return Contact(
            provider=self.name,
            id=str(contact["_id"]),
            name=_full_name(contact),
            created_at=iso_from_text(contact.get("createdAt")),
            updated_at=iso_from_text(contact.get("updatedAt")),
            methods=[*_methods(contact, "phone"), *_methods(contact, "email")],
        )

    async def find_contacts(self, call: FindContactsInput) -> ContactPage:
        self.check_filters(call)
        page, size = 1, call.limit
        if call.cursor is not None:
            page, size = _page_and_size(str(decode_cursor(call.cursor, self.name, "page")), self.name)
        params = {"page": str(page), "size": str(size)}
        _, body = await self.request("GET", "/api/contacts", replayable=True, params=params)
        envelope = mapping(body)
        data = envelope.get("data") if envelope is not None else None
        if envelope is None or not isinstance(data, list):
            raise ProviderError(
                "TetherAI's contact list has no data array",
                provider=self.name,
                status=200,
                hint="TetherAI's API may have changed; the operator should check the instance's answer",
            )
        contacts = [m for m in map(mapping, cast(list[object], data)) if m is not None and text(m.get("_id"))]
        total = envelope.get("total")
        # [ASSUMPTION] the list answer says `total`; without it a full page means there may be more.
        more = page * size < total if isinstance(total, int) else len(cast(list[object], data)) >= size
        return ContactPage(
            provider=self.name,
            contacts=[
                ContactSummary(
                    id=str(c["_id"]),
                    name=_full_name(c),
                    email=_first_value(c, "email"),
                    phone=_first_value(c, "phone"),
                )
                for c in contacts
            ],
            next_cursor=encode_cursor(self.name, "page", f"{page + 1}/{size}") if more else None,
        )

    # ---------- response mapping ----------

    def _verification_result(self, body: Any, call: SetVerificationInput) -> VerificationResult:
        try:
            parsed = _VerifyResponse.model_validate(body)
        except ValidationError:
            raise self._unreadable("its answer lacks message or data.contact._id") from None
        if parsed.message not in MESSAGES:
            raise self._unreadable(f"its message {self.scrub(parsed.message[:80])!r} is not one of the documented four")
        entry = _matching_entry(parsed.data.contact.entries(call.type), call.value)
        if entry is None:
            raise self._unreadable(f"its answer does not list {call.value} among the contact's {call.type} entries")
        return VerificationResult(
            provider=self.name,
            message=cast(VerificationMessage, parsed.message),
            contact_id=parsed.data.contact.id,
            type=call.type,
            value=entry.value,
            verified=entry.verified_at is not None,
            verified_at=entry.verified_at,
            verified_by=entry.verified_by,
            verification_source=entry.verification_source,
        )

    def _unreadable(self, why: str) -> ProviderError:
        return ProviderError(
            f"TetherAI answered 200 but {why}",
            provider=self.name,
            status=200,
            hint="The change may have been applied; calling set_verification again is safe (it sets a state)",
        )

    # ---------- error mapping ----------

    def error_for_status(
        self, status: int, detail: ErrorDetail, headers: httpx2.Headers, *, unknown: str | None
    ) -> ContactError:
        if status == 404 and detail.message is None:
            # TetherAI's own 404s carry a JSON `message` ("Contact not found"); a bare 404 (Express's HTML "Cannot
            # PATCH ...") means the route does not exist there, which is the operator's base URL, not the agent's id.
            return ProviderError(
                f"TetherAI has no endpoint at this path (HTTP 404 from {self.shown_url})",
                provider=self.name,
                status=status,
                hint="Check TETHERAI_BASE_URL: it must be the instance's root URL, without /api",
            )
        return super().error_for_status(status, detail, headers, unknown=unknown)

    async def _refined(self, error: ContactError, contact_id: str, call: SetVerificationInput) -> ContactError:
        """Say which argument a refusal is about. Our tool already checked `type` and the id's format, so a 404 is
        the contact and a 400 is `value` unless TetherAI names another field. [ASSUMPTION] unknown id -> 404,
        a value not on the contact -> 400 (PROVIDERS.md section 2)."""
        if isinstance(error, NotFound) and error.field is None:
            return error.evolve(field="contact_id", hint=_GET_HINT)
        if isinstance(error, InvalidArgument) and error.status == 400:
            if error.field not in (None, "value"):
                return error
            return error.evolve(field="value", hint=await self._value_refusal_hint(contact_id, call))
        return error

    async def _value_refusal_hint(self, contact_id: str, call: SetVerificationInput) -> str:
        """Name the values the contact does have, as the local store does; one extra read, on failure only."""
        noun = _NOUN_FOR[call.type]
        try:
            _, body = await self.request("GET", f"/api/contacts/{path_segment(contact_id)}", replayable=True)
        except ContactError:
            return f"value must be one of the contact's {noun} (GET /api/contacts/{contact_id} lists them)"
        return _values_hint(call.type, contact_values(body, call.type))


def _values_hint(kind: MethodType, values: list[str]) -> str:
    noun = _NOUN_FOR[kind]
    if not values:
        return f"The contact has no {noun}; add the {kind} to the contact first"
    shown = ", ".join(values[:_HINT_VALUES_MAX])
    more = f" and {len(values) - _HINT_VALUES_MAX} more" if len(values) > _HINT_VALUES_MAX else ""
    return f"value must be one of the contact's {noun}: {shown}{more}"


def _present(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entry.items() if value is not None}


def verify_body(call: SetVerificationInput) -> dict[str, Any]:
    """The documented body: `verifiedAt` set verifies (with an optional source); `verifiedAt: null` clears all three
    verification fields, so no source is sent then (TetherAI stores it only when verifiedAt is set)."""
    body: dict[str, Any] = {"type": call.type, "value": call.value}
    if not call.verified:
        body["verifiedAt"] = None
        return body
    body["verifiedAt"] = call.verified_at or _now_iso()
    if call.verification_source is not None:
        body["verificationSource"] = call.verification_source
    return body


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _matching_entry(entries: Sequence[_Entry], value: str) -> _Entry | None:
    """The entry TetherAI touched: our value is normalised as TetherAI normalises (E.164, lower-cased email)."""
    for entry in entries:
        if entry.value == value:
            return entry
    folded = value.casefold()
    return next((entry for entry in entries if entry.value.casefold() == folded), None)


def _contact_of(body: Any) -> Mapping[str, Any] | None:
    """The contact of a `GET /api/contacts/{id}` answer: [ASSUMPTION] under `data.contact` like the PATCH answer
    (or directly under `data`)."""
    envelope = mapping(body)
    data = mapping(envelope.get("data")) if envelope is not None else None
    if data is None:
        return None
    return mapping(data.get("contact", data))


def _entries(contact: Mapping[str, Any], kind: MethodType) -> list[Mapping[str, Any]]:
    """A contact's phone or email entries, tolerantly: TetherAI's older contacts page shows `phoneNumber`/`email`
    as plain strings, the verification page as arrays of `{value, isPrimary, verifiedAt, ...}` entries."""
    raw = contact.get(_ARRAY_FOR[kind])
    listed: list[Any] = cast(list[Any], raw) if isinstance(raw, list) else [raw]
    entries: list[Mapping[str, Any]] = []
    for entry in listed:
        found = mapping(entry) or ({"value": entry} if isinstance(entry, str) else None)
        if found is not None and text(found.get("value")):
            entries.append(found)
    return entries


def contact_values(body: Any, kind: MethodType) -> list[str]:
    """The phones or emails of a `GET /api/contacts/{id}` answer."""
    contact = _contact_of(body)
    return [str(entry["value"]) for entry in _entries(contact, kind)] if contact is not None else []


def _methods(contact: Mapping[str, Any], kind: MethodType) -> list[ContactMethod]:
    methods: list[ContactMethod] = []
    for entry in _entries(contact, kind):
        primary = entry.get("isPrimary")
        verified_at = entry.get("verifiedAt") if "verifiedAt" in entry else ...
        methods.append(
            ContactMethod(
                channel=kind,
                type=kind,
                value=str(entry["value"]),
                primary=primary if isinstance(primary, bool) else None,
                # A plain-string entry says nothing about verification: absent, not false.
                verified=None if verified_at is ... else verified_at is not None,
                verified_at=iso_from_text(verified_at),
                verification_source=text(entry.get("verificationSource")),
            )
        )
    return methods


def _first_value(contact: Mapping[str, Any], kind: MethodType) -> str | None:
    entries = _entries(contact, kind)
    primary = next((e for e in entries if e.get("isPrimary") is True), entries[0] if entries else None)
    return str(primary["value"]) if primary is not None else None


def _full_name(contact: Mapping[str, Any]) -> str | None:
    parts = [part for part in (text(contact.get("firstName")), text(contact.get("lastName"))) if part]
    return " ".join(parts) or None


def _page_and_size(position: str, provider: str) -> tuple[int, int]:
    page, _, size = position.partition("/")
    if page.isdigit() and size.isdigit() and 1 <= int(page) <= 1_000_000 and 1 <= int(size) <= 200:
        return int(page), int(size)
    raise invalid_cursor(provider)
