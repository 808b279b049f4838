"""The contact rules, written once and pure (no I/O): every store backend calls these between its reads and writes.

What lives here is everything about contacts that is not a database's dialect: ids and timestamps, how a method's
*kind* groups channels for primaries, which contact an upsert matches and when it must refuse (the identity rules),
how an upsert's fields merge into a stored contact and whether anything changed, the size limits after merging,
TetherAI's verification sentences, the errors an agent reads (with their hints), result building, and cursors.
A backend reads what a rule asks for, calls the rule, and writes what it decides, all inside one transaction; so a
behaviour cannot differ by backend without a rule differing, and the contract suite runs on every backend.

JSON-valued columns (`companies`, `custom_fields`, `roles`) are handed to a backend as JSON text (`*_json`), and
read back as either that text or the already-decoded value (a driver decoding `jsonb`): comparisons decode both
and compare canonical JSON, so key order never counts as a change and `1` never equals `true`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Literal, TypeVar, cast

from pydantic import TypeAdapter

from contact_mcp.errors import CURSOR_HINT, Conflict, InvalidArgument, NotFound
from contact_mcp.limits import (
    MAX_CUSTOM_FIELD_KEYS,
    MAX_CUSTOM_KEY_LENGTH,
    MAX_CUSTOM_VALUE_LENGTH,
    MAX_ROLE_LENGTH,
    MAX_ROLES,
)
from contact_mcp.models import (
    AttachContactInput,
    AttachedContact,
    AttachedIdentity,
    AttachIdentityInput,
    Company,
    CreateContactInput,
    CreatedContact,
    CustomValue,
    DeletedContact,
    DetachContactInput,
    DetachedContact,
    DetachedIdentity,
    DetachIdentityInput,
    FieldChange,
    Outcome,
    SetVerificationInput,
    UpsertContactInput,
    UpsertResult,
    VerificationResult,
    WriteResult,
    changes_between,
    verification_message,
)
from contact_mcp.normalize import CHANNEL_KINDS

PROVIDER: Final = "local"
"""The `provider` every result of the store names, whichever backend holds the data."""

PHONE_TYPES: Final = frozenset(channel for channel, kind in CHANNEL_KINDS.items() if kind == "phone")
"""The method types that hold a phone: one primary phone among them."""
FIELD_SEPARATOR: Final = "\x1f"
"""Joins the fields of `search_text`, so a name search never matches across the end of one field into the next."""
ATTACH_VERIFICATION_METHOD: Final = "api"
"""attach_contact says the value is verified (Feather's `verification_method: "api"`)."""
MANUAL_VERIFICATION_METHOD: Final = "manual"
"""set_verification's method (TetherAI's admin verification)."""
MAX_SEQ: Final = 2**63 - 1
"""The largest row number a cursor may carry: both backends' row keys are signed 64-bit integers."""
SHARED_PHONE_LIMIT: Final = 10
"""How many other contacts create_contact names when the phone is already theirs."""
VALUES_IN_HINT: Final = 10
"""How many of a contact's values a set_verification not-found hint lists."""

ATTACH_HINT: Final = "Create the contact with upsert_contact or create_contact, or find its id with find_contacts"
GET_HINT: Final = "Find the contact's id with find_contacts"
DELETE_HINT: Final = "No contact has this id (it may be deleted already); find the contact's id with find_contacts"

_COMPANIES: Final = TypeAdapter(list[Company])
_CUSTOM_FIELDS: Final = TypeAdapter(dict[str, CustomValue])
_ROLES: Final = TypeAdapter(list[str])

JsonColumn = str | list[object] | dict[str, object]
"""A JSON-valued column as a backend reads it: the JSON text, or the value its driver already decoded."""


# ---------- ids, instants, kinds ----------


def instant(moment: datetime) -> str:
    """`moment` in the store's timestamp format: ISO 8601 UTC with milliseconds and `Z` (sorts as text)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now() -> str:
    """This instant in the store's timestamp format (`instant`)."""
    return instant(datetime.now(UTC))


def parse_instant(value: str, *, field: str) -> str:
    """An ISO 8601 date-time (one without an offset taken as UTC) in the store's format; else `InvalidArgument`."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidArgument(
            f"{field} is not an ISO 8601 date-time", field=field, hint="e.g. 2026-05-20T15:04:01Z"
        ) from None
    return instant(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))


def new_id() -> str:
    return str(uuid.uuid4())


def new_ids(count: int) -> list[str]:
    """`count` new ids (random UUIDs, as `new_id`) from one read of the system's randomness: a batch of an import
    needs three a row, and a read each was a fifth of writing them. Spelled from the hex digits directly (version
    4, RFC 4122 variant: what `uuid.UUID(bytes=..., version=4)` would set), four times faster than through `UUID`."""
    digits = os.urandom(16 * count).hex()
    return [
        f"{digits[at : at + 8]}-{digits[at + 8 : at + 12]}-4{digits[at + 13 : at + 16]}-"
        f"{_VARIANT_DIGITS[int(digits[at + 16], 16) & 3]}{digits[at + 17 : at + 20]}-{digits[at + 20 : at + 32]}"
        for at in range(0, 32 * count, 32)
    ]


_VARIANT_DIGITS: Final = "89ab"
"""The first digit of a UUID's fourth group, by its two low bits: the variant bits are 10."""


def canonical_id(raw: str) -> str | None:
    """Contact ids are UUIDs (any case, any UUID spelling); anything else names no contact."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


def kind(channel: str, type_: str | None) -> str:
    """The group one primary is chosen among: "email", "phone" (phone/sms/voice/whatsapp), else the channel."""
    if type_ == "email":
        return "email"
    if type_ in PHONE_TYPES:
        return "phone"
    return channel


def search_text(*fields: str | None) -> str:
    """What find_contacts' `query` searches: name, display name and username, case-folded."""
    return FIELD_SEPARATOR.join(f.casefold() for f in fields if f)


def username_key(username: str | None) -> str | None:
    """Usernames are unique ignoring case."""
    return username.casefold() if username is not None else None


# ---------- cursors ----------


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The row number a cursor we issued carries; anything else (garbage, out of range, a re-spelling of a number
    that `encode_cursor` would not have produced) is `invalid_argument`, never a database error."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    seq = int(raw) if raw.isdigit() and len(raw) <= len(str(MAX_SEQ)) else -1
    if not 0 < seq <= MAX_SEQ or encode_cursor(seq) != cursor:
        raise InvalidArgument("cursor is not a cursor this server issued", field="cursor", hint=CURSOR_HINT)
    return seq


# ---------- JSON-valued columns ----------


# None and empty are written without pydantic (most contacts have neither companies, custom fields nor roles, and
# an import writes these three for every row).
def companies_json(companies: tuple[Company, ...] | list[Company] | None) -> str:
    return _COMPANIES.dump_json(list(companies), exclude_none=True).decode() if companies else "[]"


def custom_fields_json(fields: dict[str, CustomValue] | None) -> str:
    return _CUSTOM_FIELDS.dump_json(fields).decode() if fields else "{}"


def roles_json(roles: tuple[str, ...] | list[str] | None) -> str:
    return _ROLES.dump_json(list(roles)).decode() if roles else "[]"


def parse_companies(stored: JsonColumn) -> list[Company]:
    return _COMPANIES.validate_json(stored) if isinstance(stored, str) else _COMPANIES.validate_python(stored)


def parse_custom_fields(stored: JsonColumn) -> dict[str, CustomValue]:
    return _CUSTOM_FIELDS.validate_json(stored) if isinstance(stored, str) else _CUSTOM_FIELDS.validate_python(stored)


def parse_roles(stored: JsonColumn) -> list[str]:
    return _ROLES.validate_json(stored) if isinstance(stored, str) else _ROLES.validate_python(stored)


def _canonical(value: JsonColumn) -> str:
    decoded: object = json.loads(value) if isinstance(value, str) else value
    return json.dumps(_one_number_form(decoded), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_EXACT_INTEGERS: Final = 2**53  # below it a float holds every integer exactly
_FLOAT_BEYOND: Final = 2**1024  # no float is this large


def _one_number_form(value: object) -> object:
    """One spelling per JSON number. PostgreSQL's jsonb keeps a number as the decimal it was written as, and gives
    an integral one back as an integer (1e16 as 10000000000000000, -0.0 as 0), so the same number must compare
    equal whether read as the float sent or the integer stored. Booleans stay booleans: `true` for 1 is a change."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT_INTEGERS:
        return int(value)
    if isinstance(value, int) and _EXACT_INTEGERS <= abs(value) < _FLOAT_BEYOND:
        as_float = float(value)
        if Decimal(repr(as_float)) == value:
            return as_float  # the float that is spelled as this integer (1e300 stored as 1 and 300 zeros)
    if isinstance(value, dict):
        return {key: _one_number_form(item) for key, item in cast(dict[str, object], value).items()}
    if isinstance(value, list):
        return [_one_number_form(item) for item in cast(list[object], value)]
    return value


# ---------- limits (after merging) ----------


def check_custom_fields(fields: Mapping[str, CustomValue]) -> None:
    """What one contact may hold; raised before anything is written."""
    if len(fields) > MAX_CUSTOM_FIELD_KEYS:
        raise InvalidArgument(
            f"the contact would hold {len(fields)} custom fields; the limit is {MAX_CUSTOM_FIELD_KEYS} keys per "
            "contact, counting the keys it already has",
            field="custom_fields",
            hint="Stored keys are kept across upserts: reuse existing keys, or set fewer new ones "
            "(read the contact's keys with get_contact)",
        )
    check_custom_values(fields)


def check_custom_values(fields: Mapping[str, CustomValue]) -> None:
    """Each custom field's own limits, for one call's fields (whose key count its schema bounds) as for a contact's."""
    for key, value in fields.items():
        if len(key) > MAX_CUSTOM_KEY_LENGTH:
            raise InvalidArgument(
                f"a custom field key is {len(key)} characters; the limit is {MAX_CUSTOM_KEY_LENGTH}",
                field="custom_fields",
                hint=f"Shorten custom field keys to at most {MAX_CUSTOM_KEY_LENGTH} characters",
            )
        if isinstance(value, str) and len(value) > MAX_CUSTOM_VALUE_LENGTH:
            raise InvalidArgument(
                f"custom field {key[:40]!r} is {len(value)} characters; the limit is {MAX_CUSTOM_VALUE_LENGTH}",
                field=f"custom_fields.{key[:40]}",
                hint=f"Shorten custom field values to at most {MAX_CUSTOM_VALUE_LENGTH} characters",
            )
        # JSON has no infinity, but 1e400 reads as one, and it was stored as null: the value silently lost.
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidArgument(
                f"custom field {key[:40]!r} is a number too large to store",
                field=f"custom_fields.{key[:40]}",
                hint="Store numbers within ±1.7e308, or the value as a string",
            )


def check_roles(roles: tuple[str, ...] | list[str]) -> None:
    if len(roles) > MAX_ROLES:
        raise InvalidArgument(
            f"{len(roles)} roles given; the limit is {MAX_ROLES} roles per contact",
            field="roles",
            hint=f"Send at most {MAX_ROLES} roles (roles replace the stored ones)",
        )
    for role in roles:
        if len(role) > MAX_ROLE_LENGTH:
            raise InvalidArgument(
                f"a role is {len(role)} characters; the limit is {MAX_ROLE_LENGTH}",
                field="roles",
                hint=f"Shorten roles to at most {MAX_ROLE_LENGTH} characters",
            )


# ---------- errors an agent reads ----------


def contact_not_found(contact_id: str, *, field: str = "contact_id", hint: str = GET_HINT) -> NotFound:
    noun = "end user" if field == "end_user_id" else "contact"
    return NotFound(f"no {noun} with id {contact_id}", field=field, hint=hint)


def identity_taken(identifier: str, owner_id: str) -> Conflict:
    return Conflict(
        f"identity {identifier} is already attached to contact {owner_id}",
        field="identifier",
        existing_id=owner_id,
        hint="An identity belongs to one contact: use that contact, or attach a different identifier",
    )


def username_taken(username: str, owner_id: str) -> Conflict:
    return Conflict(
        f"username {username!r} is taken by contact {owner_id}",
        field="username",
        existing_id=owner_id,
        hint="Usernames are unique, ignoring case: read that contact with get_contact, or choose another",
    )


def user_id_taken(user_id: str, owner_id: str) -> Conflict:
    return Conflict(
        f"user_id {user_id!r} belongs to contact {owner_id}",
        field="user_id",
        existing_id=owner_id,
        hint="A user_id names one contact: restore that contact's record, or change this record's user_id",
    )


def value_not_found(call: SetVerificationInput, values: list[str]) -> NotFound:
    """set_verification on a value the contact lacks; `values` are the contact's values of that type (up to
    `VALUES_IN_HINT`, oldest first), listed so the agent can pick one."""
    noun, plural = ("phone number", "phone numbers") if call.type == "phone" else ("email address", "email addresses")
    if values:
        hint = (
            f"The contact's {plural}: {', '.join(values)}. Pass one of these as value, "
            f"or add the {noun} first with upsert_contact or attach_contact"
        )
    else:
        hint = f"The contact has no {noun}; add one first with upsert_contact ({call.type}=...) or attach_contact"
    return NotFound(f"the contact has no {noun} {call.value}", field="value", hint=hint)


# ---------- delete_contact, detach_identity, detach_contact (erasure) ----------


@dataclass(frozen=True, slots=True)
class IdentityRow:
    """One identity of a contact, as detach_identity matches it."""

    key: int
    id: str
    identifier: str
    channel_type: str | None
    channel_id: str | None


def identities_to_detach(call: DetachIdentityInput, held: list[IdentityRow]) -> list[IdentityRow]:
    """The contact's identities that detach_identity takes off: the identifier, on the channel type and channel id
    when given (omitted: any); `NotFound` listing the identifiers the contact has when none matches."""
    matched = [
        row
        for row in held
        if row.identifier == call.identifier
        and (call.channel_type is None or row.channel_type == call.channel_type)
        and (call.channel_id is None or row.channel_id == call.channel_id)
    ]
    if matched:
        return matched
    on = f" on {call.channel_type}" if call.channel_type else ""
    names = list(dict.fromkeys(row.identifier for row in held))[:VALUES_IN_HINT]
    hint = (
        f"The contact's identities: {', '.join(names)}; pass one of these as identifier"
        if names
        else "The contact has no identities; read it with get_contact"
    )
    raise NotFound(f"the contact has no identity {call.identifier}{on}", field="identifier", hint=hint)


def detached_identity(call: DetachIdentityInput, contact_id: str, rows: list[IdentityRow]) -> DetachedIdentity:
    return DetachedIdentity(
        provider=PROVIDER, contact_id=contact_id, identifier=call.identifier, ids=[row.id for row in rows]
    )


def method_not_found(call: DetachContactInput, values: list[str]) -> NotFound:
    """detach_contact on a channel and value the contact lacks; `values` are its values on that channel."""
    hint = (
        f"The contact's {call.channel} values: {', '.join(values)}; pass one of these as value"
        if values
        else f"The contact has nothing on channel {call.channel}; read it with get_contact"
    )
    return NotFound(f"the contact has no {call.channel} {call.normalized_value}", field="value", hint=hint)


def detached_contact(call: DetachContactInput, contact_id: str, uid: str, new_primary: str | None) -> DetachedContact:
    return DetachedContact(
        provider=PROVIDER,
        contact_id=contact_id,
        channel=call.channel,
        normalized_value=call.normalized_value,
        uid=uid,
        new_primary=new_primary,
    )


def deleted_contact(contact_id: str, *, merged: list[str], merged_into: str | None) -> DeletedContact:
    return DeletedContact(provider=PROVIDER, id=contact_id, also_deleted=merged or None, merged_into=merged_into)


# ---------- attach_contact, attach_identity, set_verification ----------


def attached_contact(
    call: AttachContactInput, *, uid: str, type_: str | None, verification_method: str | None, created: bool
) -> AttachedContact:
    return AttachedContact(
        provider=PROVIDER,
        created=created,
        end_user_id=call.end_user_id,
        uid=uid,
        channel=call.channel,
        type=type_,
        normalized_value=call.normalized_value,
        verification_method=verification_method,
    )


def identity_key(call: AttachIdentityInput) -> tuple[str, str, str]:
    """An identity is unique by identifier, channel type and channel id, where "none" is one value."""
    return (call.identifier, call.channel_type or "", call.channel_id or "")


def attached_identity(
    call: AttachIdentityInput, *, contact_id: str, identity_id: str, created_at: str, created: bool
) -> AttachedIdentity:
    return AttachedIdentity(
        provider=PROVIDER,
        created=created,
        id=identity_id,
        contact_id=contact_id,
        channel_type=call.channel_type,
        identifier=call.identifier,
        channel_id=call.channel_id,
        created_at=created_at,
    )


def verification_state(call: SetVerificationInput) -> tuple[str | None, str | None, str | None]:
    """(verified_at, verification_source, verification_method) every method with the value takes."""
    if call.verified:
        return (call.verified_at, call.verification_source, MANUAL_VERIFICATION_METHOD)
    return (None, None, None)


def verification_result(call: SetVerificationInput, contact_id: str) -> VerificationResult:
    verified_at, source, _ = verification_state(call)
    return VerificationResult(
        provider=PROVIDER,
        message=verification_message(call.type, call.verified),
        contact_id=contact_id,
        type=call.type,
        value=call.value,
        verified=call.verified,
        verified_at=verified_at,
        verified_by=None,
        verification_source=source,
    )


# ---------- upsert_contact: matching ----------


@dataclass(frozen=True, slots=True)
class StoredContact:
    """What upsert reads of a candidate contact: every field it compares, and its primary email and phone."""

    key: int
    """The backend's row key (its `seq`); rules never interpret it."""
    id: str
    user_id: str | None
    username: str | None
    name: str | None
    display_name: str | None
    locale: str | None
    profile_picture: str | None
    companies: JsonColumn
    custom_fields: JsonColumn
    roles: JsonColumn
    subscribed_to_changelog: bool | None
    email: str | None
    """The primary email."""
    phone: str | None
    """The primary phone."""


def upsert_target(
    call: UpsertContactInput,
    *,
    by_user_id: StoredContact | None,
    by_email: StoredContact | None,
    user_holds_email: bool,
) -> StoredContact | None:
    """The contact an upsert updates, or None to create one; `Conflict` when the call names two people.

    The backend reads, in the call's transaction: `by_user_id`, the contact with `call.user_id` (when given);
    `by_email`, the contact upsert-by-email matches (when `call.email` is given): the oldest contact holding the
    email as its primary, else the oldest holding it at all; `user_holds_email`, whether `by_user_id` holds
    `call.email` as any of its emails (only needed when both contacts exist and differ).

    Matching is by user_id first, else by email. Never a silent duplicate and never a silent change of someone's
    user_id: a user_id whose contact lacks the email while another contact has it, or an email whose contact
    carries a different user_id, is a conflict naming the contacts involved.
    """
    if by_user_id is not None:
        if call.email is None or by_email is None or by_email.id == by_user_id.id or user_holds_email:
            return by_user_id
        raise Conflict(
            f"user_id {call.user_id!r} is contact {by_user_id.id}, but email {call.email} belongs to contact "
            f"{by_email.id}",
            field="email",
            existing_id=by_user_id.id,
            candidates=[by_user_id.id, by_email.id],
            hint=f"Two contacts match: upsert with user_id alone to update {by_user_id.id}, or with email alone "
            f"to update {by_email.id}; an email is never moved between contacts silently",
        )
    if by_email is None:
        return None
    if call.user_id is not None and by_email.user_id is not None and by_email.user_id != call.user_id:
        raise Conflict(
            f"email {call.email} belongs to contact {by_email.id}, whose user_id is {by_email.user_id!r}, "
            f"not {call.user_id!r}",
            field="user_id",
            existing_id=by_email.id,
            hint=f"A contact's user_id is never changed silently: upsert with user_id {by_email.user_id!r} to "
            f"update {by_email.id}, or use another email for user_id {call.user_id!r}",
        )
    return by_email


# ---------- upsert_contact: creating and merging ----------


@dataclass(frozen=True, slots=True)
class NewContact:
    """The columns of a contact to insert (JSON columns as JSON text); methods are added separately."""

    user_id: str | None = None
    username: str | None = None
    name: str | None = None
    display_name: str | None = None
    locale: str | None = None
    profile_picture: str | None = None
    companies: str = "[]"
    custom_fields: str = "{}"
    roles: str = "[]"
    subscribed_to_changelog: bool | None = None

    @property
    def username_key(self) -> str | None:
        return username_key(self.username)

    @property
    def search_text(self) -> str:
        return search_text(self.name, self.display_name, self.username)


def contact_from_upsert(call: UpsertContactInput) -> NewContact:
    """The contact an upsert creates; its email and phone become its primary, unverified methods."""
    if call.custom_fields is not None:
        check_custom_fields(call.custom_fields)
    if call.roles is not None:
        check_roles(call.roles)
    return NewContact(
        user_id=call.user_id,
        name=call.name,
        locale=call.locale,
        profile_picture=call.profile_picture,
        companies=companies_json(call.companies),
        custom_fields=custom_fields_json(call.custom_fields),
        roles=roles_json(call.roles),
        subscribed_to_changelog=call.subscribed_to_changelog,
    )


def contact_from_create(call: CreateContactInput) -> NewContact:
    """The contact create_contact makes: the display name defaults to the username."""
    return NewContact(
        username=call.username, display_name=call.display_name or call.username, profile_picture=call.avatar_url
    )


@dataclass(frozen=True, slots=True)
class UpsertChanges:
    """What an upsert changes on a matched contact. `columns` maps contact columns (the same names on every
    backend) to new values, JSON columns as JSON text; `updated_at` is the backend's to add when anything changed.
    `email`/`phone`: a value to make the primary of its kind (adding it as a method if the contact lacks it)."""

    columns: dict[str, object] = field(default_factory=dict[str, object])
    email: str | None = None
    phone: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.columns) or self.email is not None or self.phone is not None


def upsert_changes(stored: StoredContact, call: UpsertContactInput) -> UpsertChanges:
    """Merge the call into the stored contact: fields not given stay; companies and roles replace; custom fields
    merge key by key (a key sent as null is kept, holding null). Only what differs is returned, so an upsert with
    nothing new writes nothing. The limits apply to the merged result; raising leaves nothing written."""
    columns: dict[str, object] = {}
    if call.user_id is not None and call.user_id != stored.user_id:
        columns["user_id"] = call.user_id
    if call.name is not None and call.name != stored.name:
        columns["name"] = call.name
        columns["search_text"] = search_text(call.name, stored.display_name, stored.username)
    if call.locale is not None and call.locale != stored.locale:
        columns["locale"] = call.locale
    if call.profile_picture is not None and call.profile_picture != stored.profile_picture:
        columns["profile_picture"] = call.profile_picture
    if call.companies is not None:
        text = companies_json(call.companies)
        if _canonical(text) != _canonical(stored.companies):
            columns["companies"] = text
    if call.custom_fields is not None:
        merged = {**parse_custom_fields(stored.custom_fields), **call.custom_fields}
        check_custom_fields(merged)
        text = custom_fields_json(merged)
        if _canonical(text) != _canonical(stored.custom_fields):
            columns["custom_fields"] = text
    if call.roles is not None:
        check_roles(call.roles)
        text = roles_json(call.roles)
        if _canonical(text) != _canonical(stored.roles):
            columns["roles"] = text
    if call.subscribed_to_changelog is not None and stored.subscribed_to_changelog != call.subscribed_to_changelog:
        columns["subscribed_to_changelog"] = call.subscribed_to_changelog
    return UpsertChanges(
        columns=columns,
        email=call.email if call.email is not None and call.email != stored.email else None,
        phone=call.phone if call.phone is not None and call.phone != stored.phone else None,
    )


def upsert_created(call: UpsertContactInput, contact_id: str) -> UpsertResult:
    return UpsertResult(
        provider=PROVIDER,
        outcome="created",
        id=contact_id,
        user_id=call.user_id,
        email=call.email,
        name=call.name,
        phone=call.phone,
    )


def upsert_matched(call: UpsertContactInput, stored: StoredContact, changes: UpsertChanges) -> UpsertResult:
    """The result after updating `stored` (built from the row and the call, as find_contacts would read it back)."""
    outcome: Outcome = "updated" if changes.changed else "unchanged"
    name = call.name if call.name is not None else stored.name
    return UpsertResult(
        provider=PROVIDER,
        outcome=outcome,
        id=stored.id,
        user_id=call.user_id if call.user_id is not None else stored.user_id,
        email=call.email if call.email is not None else stored.email,
        name=name if name is not None else stored.display_name,
        phone=call.phone if call.phone is not None else stored.phone,
    )


# ---------- create_contact ----------


def created_contact(
    call: CreateContactInput, *, contact_id: str, created_at: str, shared_with: list[str]
) -> CreatedContact:
    """`shared_with`: other contacts already holding the phone (families share phones: not a conflict, but said)."""
    new = contact_from_create(call)
    return CreatedContact(
        provider=PROVIDER,
        id=contact_id,
        username=call.username,
        phone_number=call.phone_number,
        display_name=new.display_name or call.username,
        avatar_url=call.avatar_url,
        created_at=created_at,
        phone_shared_with=shared_with or None,
    )


# ---------- contact-mcp import: rows of new data ----------


@dataclass(frozen=True, slots=True)
class ImportContactInput:
    """One contact of new data (a CSV row, a vCard) as `contact-mcp import` hands it to the store: normalised like
    the tools' arguments (emails and phones canonical and distinct, blanks dropped). The first email and the first
    phone are the ones an upsert makes primary; the others are added as further, unverified methods."""

    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    name: str | None = None
    user_id: str | None = None
    username: str | None = None
    locale: str | None = None


ROW_ERRORS: Final = (InvalidArgument, Conflict, NotFound)
"""What the rules refuse one row of an import with (its content, not the database): the row is rolled back alone
and reported, and the import goes on."""
RowError = InvalidArgument | Conflict | NotFound


def import_upsert(call: ImportContactInput) -> UpsertContactInput:
    """The upsert a row of new data amounts to: its first email and first phone become the contact's primaries."""
    return UpsertContactInput(
        email=call.emails[0] if call.emails else None,
        user_id=call.user_id,
        name=call.name,
        phone=call.phones[0] if call.phones else None,
        locale=call.locale,
    )


def name_key(name: str | None) -> str | None:
    """Names compared for phone-and-name matching: ignoring case and spacing (None: no name to compare)."""
    if name is None:
        return None
    return " ".join(name.casefold().split()) or None


def import_target(
    call: ImportContactInput,
    *,
    by_keys: StoredContact | None,
    by_username: StoredContact | None,
    phone_holders: list[StoredContact],
    merged_names: Mapping[str, Sequence[str | None]] | None = None,
) -> StoredContact | None:
    """The contact a row of new data updates, or None to create one.

    A row with an email or a user_id is an upsert: `by_keys` is what `upsert_target` answered for
    `import_upsert(call)` (its conflicts raised). Otherwise the row's username names the contact (`by_username`,
    the contact holding it, when the row has one); otherwise its phone and name together do: `phone_holders` are
    the contacts holding any of the row's phones, oldest first, and the oldest whose name (or display name) is the
    row's, ignoring case and spacing, is the match; `merged_names` adds, per holder id, the names of the contacts
    merged into it (their phones are its own now). A phone alone never matches: families share one.
    """
    if call.emails or call.user_id is not None:
        return by_keys
    if by_username is not None:
        return by_username
    key = name_key(call.name)
    if key is None:
        return None
    for holder in phone_holders:
        names = [holder.name or holder.display_name, *(merged_names or {}).get(holder.id, ())]
        if any(name_key(name) == key for name in names):
            return holder
    return None


def contact_from_import(call: ImportContactInput) -> NewContact:
    """The contact a row of new data creates (its methods: see `import_methods`)."""
    new = contact_from_upsert(import_upsert(call))
    return replace(new, username=call.username)


def import_methods(call: ImportContactInput) -> list[tuple[Literal["email", "phone"], str, bool]]:
    """(kind, value, primary) of every method a created contact gets: the first of each kind primary, none
    verified (an address book says nothing about verification)."""
    return [(kind, value, index == 0) for kind, values in _by_kind(call) for index, value in enumerate(values)]


def _by_kind(call: ImportContactInput) -> tuple[tuple[Literal["email", "phone"], tuple[str, ...]], ...]:
    return (("email", call.emails), ("phone", call.phones))


@dataclass(frozen=True, slots=True)
class BatchKeys:
    """The keys of a batch of new data (`batch_keys`)."""

    emails: tuple[str, ...]
    user_ids: tuple[str, ...]
    username_keys: tuple[str, ...]
    phones: tuple[str, ...]
    """Every phone of every row (a row's phones are locked as it is imported)."""
    matching_phones: tuple[str, ...]
    """The phones of the rows keyed by phone and name: a contact holding one may be a row's match."""


def batch_keys(calls: Sequence[ImportContactInput]) -> BatchKeys | None:
    """The keys by which a stored contact could match a row of `calls`, when no row of them can match a contact
    another row creates or names: no email, user_id or username on two rows, and no phone of a row keyed by phone
    and name on any other row. Else None.

    When the keys are there and no stored contact holds any of them (no email, no phone of `matching_phones` as a
    method, no user_id, no username), every row creates its contact (`contact_from_import`, `import_methods`),
    whatever order the rows are taken in: a backend may then write the whole batch at once, which is what makes
    importing into a new store fast. Otherwise it imports the rows one by one."""
    emails = [email for call in calls for email in call.emails]
    user_ids = [call.user_id for call in calls if call.user_id is not None]
    usernames = [key for call in calls if (key := username_key(call.username)) is not None]
    phones = [phone for call in calls for phone in call.phones]
    matching = [
        phone
        for call in calls
        if not (call.emails or call.user_id is not None or call.username is not None)
        for phone in call.phones
    ]
    distinct = all(len(set(keys)) == len(keys) for keys in (emails, user_ids, usernames))
    if not distinct or (matching and _held_twice(calls, set(matching))):
        return None
    return BatchKeys(
        emails=tuple(emails),
        user_ids=tuple(user_ids),
        username_keys=tuple(usernames),
        phones=tuple(dict.fromkeys(phones)),
        matching_phones=tuple(matching),
    )


def _held_twice(calls: Sequence[ImportContactInput], phones: set[str]) -> bool:
    """Whether a phone of `phones` is on two rows."""
    seen: set[str] = set()
    for call in calls:
        for phone in phones.intersection(call.phones):
            if phone in seen:
                return True
            seen.add(phone)
    return False


@dataclass(frozen=True, slots=True)
class ImportChanges:
    """What a row of new data changes on its contact: the upsert's changes (with the username's columns when it
    changes), and further methods to add, unverified and not primary."""

    upsert: UpsertChanges
    more_methods: tuple[tuple[Literal["email", "phone"], str], ...] = ()

    @property
    def changed(self) -> bool:
        return self.upsert.changed or bool(self.more_methods)


def import_changes(
    stored: StoredContact,
    call: ImportContactInput,
    *,
    held: set[tuple[str, str]],
    username_owner: str | None,
    merged_names: Sequence[str | None] = (),
) -> ImportChanges:
    """Merge a row into its contact as an upsert does, plus the row's username (`username_owner`: the id of the
    contact holding it, if any; another contact's is a `Conflict`) and the row's further emails and phones the
    contact lacks (`held`: the (kind, value) pairs of its methods). `merged_names`: the names of the contacts
    merged into it, which a row keyed by phone and name may carry without renaming it."""
    merge = import_upsert(call)
    keyed_by_phone_and_name = not (call.emails or call.user_id is not None or call.username is not None)
    names = {name_key(name) for name in (stored.name or stored.display_name, *merged_names)}
    if keyed_by_phone_and_name and name_key(call.name) in names:
        merge = replace(merge, name=None)  # the name matched, ignoring case and spacing: it is not an edit
    upsert = upsert_changes(stored, merge)
    columns = dict(upsert.columns)
    if call.username is not None and call.username != stored.username:
        if username_owner is not None and username_owner != stored.id:
            raise username_taken(call.username, username_owner)
        name = call.name if call.name is not None else stored.name
        columns.update(
            username=call.username,
            username_key=username_key(call.username),
            search_text=search_text(name, stored.display_name, call.username),
        )
    more: tuple[tuple[Literal["email", "phone"], str], ...] = tuple(
        (kind, value) for kind, values in _by_kind(call) for value in values[1:] if (kind, value) not in held
    )
    return ImportChanges(upsert=replace(upsert, columns=columns), more_methods=more)


# ---------- what a write changed ----------

_W = TypeVar("_W", bound=WriteResult)

# Bookkeeping, not what the caller changed: never reported.
_UNREPORTED: Final = frozenset({"seq", "id", "created_at", "updated_at", "methods", "identities"})
# What a method and an identity show of themselves in a change (their own timestamps and raw input are bookkeeping).
_METHOD_SHOWN: Final = ("id", "channel", "type", "value", "verified_at", "verification_source", "verification_method")
_IDENTITY_SHOWN: Final = ("id", "channel_type", "identifier", "channel_id")
_METHOD_KEY: Final = ("channel", "value")
_IDENTITY_KEY: Final = ("identifier", "channel_type", "channel_id")

Whole = Mapping[str, Any]
"""A whole contact as a write's transaction reads it before and after its changes (`snapshot`)."""

SNAPSHOT_COLUMNS: Final = (
    "id", "user_id", "username", "name", "display_name", "locale", "profile_picture", "companies", "custom_fields",
    "roles", "subscribed_to_changelog", "merged_into",
)  # fmt: skip
"""The contact columns a snapshot reads, in this order, followed by its methods and its identities, each a JSON
array of objects (`METHOD_SNAPSHOT`, `IDENTITY_SNAPSHOT` name their keys); one statement on every backend."""
METHOD_SNAPSHOT: Final = (
    "id", "channel", "type", "value", "primary", "verified_at", "verification_source", "verification_method",
)  # fmt: skip
IDENTITY_SNAPSHOT: Final = ("id", "channel_type", "identifier", "channel_id")


def snapshot(row: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
    """A snapshot row as a whole contact for `field_changes`. JSON values stay as the driver gives them (JSON text
    or decoded); `field_changes` decodes only those that differ."""
    *columns, methods, identities = row
    whole: dict[str, Any] = dict(zip(SNAPSHOT_COLUMNS, columns, strict=True))
    subscribed = whole["subscribed_to_changelog"]
    whole["subscribed_to_changelog"] = None if subscribed is None else bool(subscribed)
    whole["methods"] = methods
    whole["identities"] = identities
    return whole


_JSON_VALUED: Final = frozenset({"companies", "custom_fields", "roles", "methods", "identities"})


def _decoded(value: object) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _plain(value: object) -> Any:
    """A field's value as JSON values; an empty list or map is no value (a new contact's `roles: []` is no change)."""
    if isinstance(value, Company):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in cast(Sequence[object], value)] or None
    if isinstance(value, dict):
        return dict(cast(Mapping[str, object], value)) or None
    return value


Keyed = dict[tuple[object, ...], dict[str, Any]]


def _keyed(entries: object, names: tuple[str, ...], key: tuple[str, ...]) -> Keyed:
    """A contact's methods or identities by their key, each as a change shows it (its `names` that have values;
    a method also says whether it is primary and verified, as get_contact does)."""
    keyed: Keyed = {}
    for row in cast(list[Mapping[str, Any]], entries or []):
        shown = {n: row[n] for n in names if row.get(n) is not None}
        if "primary" in row:
            shown.update(primary=bool(row["primary"]), verified=row.get("verified_at") is not None)
        keyed[tuple(row.get(k) for k in key)] = shown
    return keyed


def field_changes(before: Whole | None, after: Whole | None, *, contact_id: str | None = None) -> list[FieldChange]:
    """What a write did to one contact, from the contact read whole before it (None: the write created it) and
    after it (None: the write deleted it), in the same transaction: each field whose value differs, old to new;
    custom fields key by key; methods by (channel, value) and identities by their key, each as an object. Ids,
    timestamps and raw input are bookkeeping and never reported. `contact_id` labels every change (for a call
    that changes several contacts)."""
    # A JSON value whose text did not change, or that is the very value read before (an after-state derived from
    # the write, `store/effects.py`, shares what it did not change), is not decoded (most writes touch one or two).
    same = frozenset(
        name
        for name in _JSON_VALUED
        if before
        and after
        and name in before
        and (before[name] is after.get(name) or (isinstance(before[name], str) and before[name] == after.get(name)))
    )
    changes = changes_between(_flat(before, same), _flat(after, same), contact_id=contact_id)
    for field_name, names, key in (
        ("methods", _METHOD_SHOWN, _METHOD_KEY),
        ("identities", _IDENTITY_SHOWN, _IDENTITY_KEY),
    ):
        if field_name in same:
            continue
        old = _keyed(_decoded(before.get(field_name)) if before else None, names, key)
        new = _keyed(_decoded(after.get(field_name)) if after else None, names, key)
        changes += [
            FieldChange(field=field_name, old=v, new=new.get(k), contact_id=contact_id)
            for k, v in old.items()
            if new.get(k) != v
        ]
        changes += [FieldChange(field=field_name, new=v, contact_id=contact_id) for k, v in new.items() if k not in old]
    return changes


def _flat(whole: Whole | None, same: frozenset[str]) -> dict[str, Any]:
    """A contact's own fields as one flat view: custom fields one entry each (`custom_fields.<key>`); the JSON
    values in `same` (unchanged) are left out."""
    flat: dict[str, Any] = {}
    for name, value in (whole or {}).items():
        if name in _UNREPORTED or name in same:
            continue
        if name == "custom_fields":
            fields = cast(Mapping[str, Any], _decoded(value) or {})
            flat.update((f"custom_fields.{key}", item) for key, item in fields.items())
        else:
            flat[name] = _plain(_decoded(value) if name in _JSON_VALUED else value)
    return flat


def reported(result: _W, changes: list[FieldChange], *, dry_run: bool) -> _W:
    """A write's result with what it changed, and marked as a dry run when it was one (nothing written)."""
    return result.model_copy(update={"changes": changes, "dry_run": True if dry_run else None})
