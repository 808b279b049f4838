"""`TetherAIClient`: the `set_verification` operation on a TetherAI instance's contacts API.

TetherAI publishes no shared host: every organisation runs its own instance, so `TETHERAI_BASE_URL` is required and
all paths sit under `/api/`. The client sends `PATCH /api/contacts/{id}/verify-contact-methods` with a bearer token
and maps the `{message, data: {contact}}` answer to a `VerificationResult` built from the entry the call touched.
The module reads top to bottom: request building, response mapping, error mapping (with the one extra read that
lists a contact's values when TetherAI refuses a value that is not on the contact).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args
from urllib.parse import urlparse

import httpx2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contact_mcp.errors import ContactError, InvalidArgument, NotFound, ProviderError
from contact_mcp.models import MethodType, Operation, SetVerificationInput, VerificationResult
from contact_mcp.providers.http import ErrorDetail, HttpProvider, path_segment

VerificationMessage = Literal[
    "Phone number verified", "Phone number verification cleared", "Email verified", "Email verification cleared"
]
MESSAGES: frozenset[str] = frozenset(get_args(VerificationMessage))

_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")
# The contact's arrays are named after the method type: `phoneNumber[]` and `email[]`.
_ARRAY_FOR: dict[MethodType, str] = {"phone": "phoneNumber", "email": "email"}
_NOUN_FOR: dict[MethodType, str] = {"phone": "phone numbers", "email": "email addresses"}
_HINT_VALUES_MAX = 10


def object_id(raw: str, *, field: str) -> str:
    """TetherAI ids are MongoDB ObjectIds: exactly 24 hex digits (either case); returned lower-cased."""
    text = raw.strip()
    if not _OBJECT_ID.fullmatch(text):
        raise InvalidArgument(
            f"{field} must be a TetherAI contact id: 24 hexadecimal characters",
            field=field,
            hint="Use the contact's _id, e.g. 64b2c3d4e5f60012345678aa",
        )
    return text.lower()


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
    operations = frozenset({Operation.SET_VERIFICATION})

    # ---------- requests ----------

    async def probe(self) -> str:
        """The cheapest authenticated read: one contact of the first page."""
        await self.request("GET", "/api/contacts", replayable=True, params={"page": "1", "size": "1"})
        host = urlparse(self.base_url).netloc or self.base_url
        return f"TetherAI at {host}: token accepted (GET /api/contacts answered)"

    async def set_verification(self, call: SetVerificationInput) -> VerificationResult:
        contact_id = object_id(call.contact_id, field="contact_id")
        path = f"/api/contacts/{path_segment(contact_id)}/verify-contact-methods"
        try:
            # PATCH sets the entry to a given state, so sending it twice is harmless: replayable.
            _, body = await self.request("PATCH", path, replayable=True, json_body=verify_body(call))
        except ContactError as exc:
            await self._refine(exc, contact_id, call)
            raise
        return self._verification_result(body, call)

    # ---------- response mapping ----------

    def _verification_result(self, body: Any, call: SetVerificationInput) -> VerificationResult:
        try:
            parsed = _VerifyResponse.model_validate(body)
        except ValidationError:
            raise self._unreadable("its answer lacks message or data.contact._id") from None
        if parsed.message not in MESSAGES:
            raise self._unreadable(f"its message {parsed.message[:80]!r} is not one of the documented four")
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

    def error_for_status(self, status: int, detail: ErrorDetail, headers: httpx2.Headers) -> ContactError:
        if status == 404 and detail.message is None:
            # TetherAI's own 404s carry a JSON `message` ("Contact not found"); a bare 404 (Express's HTML "Cannot
            # PATCH ...") means the route does not exist there, which is the operator's base URL, not the agent's id.
            return ProviderError(
                f"TetherAI has no endpoint at this path (HTTP 404 from {urlparse(self.base_url).netloc})",
                provider=self.name,
                status=status,
                hint="Check TETHERAI_BASE_URL: it must be the instance's root URL, without /api",
            )
        return super().error_for_status(status, detail, headers)

    async def _refine(self, error: ContactError, contact_id: str, call: SetVerificationInput) -> None:
        """Say which argument a refusal is about. Our tool already checked `type` and the id's format, so a 404 is
        the contact and a 400 is `value` unless TetherAI names another field. [ASSUMPTION] unknown id -> 404,
        a value not on the contact -> 400 (PROVIDERS.md section 2)."""
        if isinstance(error, NotFound) and error.field is None:
            error.field = "contact_id"
            error.hint = "No TetherAI contact has this contact_id; check the id (the contact's 24-hex _id)"
        elif isinstance(error, InvalidArgument) and error.status == 400:
            error.field = error.field or "value"
            await self._explain_value_refusal(error, contact_id, call)

    async def _explain_value_refusal(self, error: InvalidArgument, contact_id: str, call: SetVerificationInput) -> None:
        """Name the values the contact does have, as the local store does; one extra read, on failure only."""
        if error.field != "value":
            return
        noun = _NOUN_FOR[call.type]
        try:
            _, body = await self.request("GET", f"/api/contacts/{path_segment(contact_id)}", replayable=True)
        except ContactError:
            error.hint = f"value must be one of the contact's {noun} (GET /api/contacts/{contact_id} lists them)"
            return
        values = contact_values(body, call.type)
        if not values:
            error.hint = f"The contact has no {noun}; add the {call.type} to the contact first"
            return
        shown = ", ".join(values[:_HINT_VALUES_MAX])
        more = f" and {len(values) - _HINT_VALUES_MAX} more" if len(values) > _HINT_VALUES_MAX else ""
        error.hint = f"value must be one of the contact's {noun}: {shown}{more}"


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


def contact_values(body: Any, kind: MethodType) -> list[str]:
    """The phones or emails of a `GET /api/contacts/{id}` answer. Tolerant: TetherAI's older contacts page shows
    `phoneNumber`/`email` as plain strings, the verification page as arrays of `{value, ...}` entries, and
    [ASSUMPTION] the contact sits under `data.contact` like the PATCH answer (or directly under `data`)."""
    if not isinstance(body, Mapping):
        return []
    data = cast(Mapping[str, Any], body).get("data")
    if not isinstance(data, Mapping):
        return []
    data = cast(Mapping[str, Any], data)
    contact = data.get("contact", data)
    if not isinstance(contact, Mapping):
        return []
    raw = cast(Mapping[str, Any], contact).get(_ARRAY_FOR[kind])
    items: list[Any] = cast(list[Any], raw) if isinstance(raw, list) else [raw]
    values: list[str] = []
    for item in items:
        value = cast(Mapping[str, Any], item).get("value") if isinstance(item, Mapping) else item
        if isinstance(value, str) and value:
            values.append(value)
    return values
