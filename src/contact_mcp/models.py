"""The agent-facing contract: the operations, their normalised inputs, and the canonical results.

Results are the same shape whichever provider serves a tool; each names its `provider`. Inputs here are what
providers receive *after* validation and normalisation (phones E.164, emails normalised), so a provider never
re-checks an argument. Imports nothing of ours but `schemas` (a leaf), which renders each result's published schema.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from contact_mcp.schemas import output_schema


class Operation(StrEnum):
    ATTACH_CONTACT = "attach_contact"
    ATTACH_IDENTITY = "attach_identity"
    SET_VERIFICATION = "set_verification"
    UPSERT_CONTACT = "upsert_contact"
    CREATE_CONTACT = "create_contact"
    DELETE_CONTACT = "delete_contact"
    DETACH_IDENTITY = "detach_identity"
    DETACH_CONTACT = "detach_contact"
    GET_CONTACT = "get_contact"
    FIND_CONTACTS = "find_contacts"
    FIND_DUPLICATES = "find_duplicates"
    MERGE_CONTACTS = "merge_contacts"


ChannelType = Literal["blooio", "twilio", "whatsapp", "whatsapp_business", "rcs_business", "amb"]
MethodType = Literal["phone", "email"]
Outcome = Literal["created", "updated", "unchanged"]
CustomValue = str | int | float | bool | None
EvidenceKind = Literal["user_id", "email", "mailbox", "tagged", "phone", "name", "company", "email_domain"]
"""Why find_duplicates thinks two contacts are one person: a key they share, or a similar name."""


# Featurebase's company object, snake_case. No docstring: it would be published as a description.
class Company(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=500, description="Your id")]
    name: Annotated[str, Field(min_length=1, max_length=500, description="Name")]
    plan: Annotated[str | None, Field(max_length=500, description="Plan")] = None
    monthly_spend: Annotated[float | None, Field(ge=0, allow_inf_nan=False, description="Spend/month")] = None
    industry: Annotated[str | None, Field(max_length=500, description="Industry")] = None
    website: Annotated[str | None, Field(max_length=500, description="URL")] = None
    company_size: Annotated[float | None, Field(ge=0, allow_inf_nan=False, description="Employees")] = None


# ---------- normalised inputs handed to providers ----------


@dataclass(frozen=True, slots=True)
class AttachContactInput:
    end_user_id: str
    channel: str
    raw_value: str
    type: str | None
    normalized_value: str
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class AttachIdentityInput:
    contact_id: str
    identifier: str
    channel_type: ChannelType | None
    channel_id: str | None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class SetVerificationInput:
    contact_id: str
    type: MethodType
    value: str
    verified: bool
    verified_at: str | None  # ISO 8601 UTC; None when clearing
    verification_source: str | None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class UpsertContactInput:
    email: str | None
    user_id: str | None
    name: str | None = None
    phone: str | None = None
    locale: str | None = None
    profile_picture: str | None = None
    companies: tuple[Company, ...] | None = None
    custom_fields: dict[str, CustomValue] | None = None
    roles: tuple[str, ...] | None = None
    subscribed_to_changelog: bool | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class CreateContactInput:
    username: str
    phone_number: str
    display_name: str | None
    avatar_url: str | None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class DeleteContactInput:
    contact_id: str
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class DetachIdentityInput:
    contact_id: str
    identifier: str
    channel_type: str | None
    """None: the identifier on any channel type."""
    channel_id: str | None
    """None: the identifier on any channel id."""
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class DetachContactInput:
    contact_id: str
    channel: str
    normalized_value: str
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class FindContactsInput:
    email: str | None = None
    phone: str | None = None
    username: str | None = None
    user_id: str | None = None
    query: str | None = None
    limit: int = 20
    cursor: str | None = None


DEFAULT_MIN_SCORE: Final = 0.8
"""find_duplicates' threshold unless the call sets one: one shared phone is 0.5, a shared mailbox 0.9."""


@dataclass(frozen=True, slots=True)
class FindDuplicatesInput:
    limit: int = 20
    cursor: str | None = None
    min_score: float = DEFAULT_MIN_SCORE


@dataclass(frozen=True, slots=True)
class MergeContactsInput:
    survivor_id: str
    duplicate_ids: tuple[str, ...]
    dry_run: bool = False


# ---------- canonical results ----------
# Fields that may be unknown default to None and are left out of structuredContent when None (see `Result`),
# so an agent reads only what is there and the published output schemas stay small.


class Result(BaseModel):
    # Built on first use, not at import: a stdio host pays start-up on every launch, and a session calls few tools.
    model_config = ConfigDict(defer_build=True)

    provider: str

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # Pydantic's hook: the SDK publishes a tool's result model's JSON Schema as its output schema; ours is the
        # portable, complete one (no $ref or anyOf), read off the field types.
        return output_schema(cls)

    def summary(self) -> str:
        raise NotImplementedError

    def headline(self) -> str:
        """The one-line summary a result is sent with (a write's says first when it was a dry run)."""
        return self.summary()

    def structured(self) -> dict[str, object]:
        return self.model_dump(mode="json", exclude_none=True)


_TRUNCATED = "Fields cut short to keep the result under 100 KB (the stored contact is whole)"

ChangeValue = str | int | float | bool | list[Any] | dict[str, Any] | None
"""A field's value before or after a write: any JSON value (None: the field had or has no value)."""


# No docstring: it would be published as a description. What `field` names (the history masks values by it):
# a contact's own field by its name (`name`, `user_id`, `roles`, `companies`...), one custom field as
# `custom_fields.<key>`, one contact method as `methods` and one identity as `identities`, whose old and new are
# the method or identity as an object (absent: added, or removed).
class FieldChange(BaseModel):
    model_config = ConfigDict(defer_build=True)

    field: Annotated[str, Field(description="e.g. name, custom_fields.plan, methods")]
    old: Annotated[ChangeValue, Field(description="Before (absent: none)")] = None
    new: Annotated[ChangeValue, Field(description="After (absent: none)")] = None
    contact_id: Annotated[str | None, Field(description="Whose field, when a call changes several contacts")] = None


def _same(old: object, new: object) -> bool:
    """Equal as JSON values: key order never counts, and `1` never equals `true` (Python's `==` says it does, so
    containers that compare equal are checked again as canonical JSON)."""
    if type(old) is not type(new) or old != new:
        return False
    return not isinstance(old, list | dict) or _canonical(new) == _canonical(cast(object, old))


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def changes_between(
    before: Mapping[str, ChangeValue], after: Mapping[str, ChangeValue], *, contact_id: str | None = None
) -> list[FieldChange]:
    """Each field whose value differs between two flat views of one record, old to new, in the order the fields
    first appear. A field missing from a view has no value there; values compare as canonical JSON (key order never
    counts, `1` never equals `true`). Used by the store (on whole contacts) and by providers (on what their reads
    show), so a change reads the same whoever made it."""
    changes: list[FieldChange] = []
    for name in dict.fromkeys((*before, *after)):
        old, new = before.get(name), after.get(name)
        if not _same(old, new):
            changes.append(FieldChange(field=name, old=old, new=new, contact_id=contact_id))
    return changes


VerificationMessage = Literal[
    "Phone number verified", "Phone number verification cleared", "Email verified", "Email verification cleared"
]


def verification_message(type_: MethodType, verified: bool) -> VerificationMessage:
    """TetherAI's exact sentences (the store answers with them too)."""
    if type_ == "phone":
        return "Phone number verified" if verified else "Phone number verification cleared"
    return "Email verified" if verified else "Email verification cleared"


class WriteResult(Result):
    """What every write tool answers besides its own fields: whether it was a dry run, and what changed."""

    dry_run: bool | None = Field(
        default=None, description="True: a dry run; nothing was written (ids of new records are not kept)"
    )
    changes: list[FieldChange] | None = Field(
        default=None,
        description="What the call changed (on a dry run: would change), old to new, where the provider can tell",
    )
    truncated: list[str] | None = Field(default=None, description=_TRUNCATED)
    note: str | None = Field(default=None, description="On a dry run: what the provider's reads cannot tell")

    def headline(self) -> str:
        if self.dry_run:
            note = f" {self.note}" if self.note else ""
            return f"Dry run, nothing written; the call would answer: {self.summary()}{note}"
        return self.summary()


_NEW_ID = "Absent only on a provider's dry run that would create it"


def _id(value: str | None) -> str:
    return f" (id {value})" if value else ""


class AttachedContact(WriteResult):
    """attach_contact: the verified contact method now on the end user."""

    created: bool
    end_user_id: str
    uid: str | None = Field(default=None, description=_NEW_ID)
    channel: str
    type: str | None = None
    normalized_value: str
    verification_method: str | None = None

    def summary(self) -> str:
        verb = "Attached" if self.created else "Already attached:"
        uid = f" (uid {self.uid})" if self.uid else ""
        return f"{verb} {self.channel} {self.normalized_value} to end user {self.end_user_id}{uid}."


class AttachedIdentity(WriteResult):
    """attach_identity: the identity on the contact."""

    created: bool
    id: str | None = Field(default=None, description=_NEW_ID)
    contact_id: str
    channel_type: str | None = None
    identifier: str
    channel_id: str | None = None
    created_at: str | None = None

    def summary(self) -> str:
        verb = "Attached" if self.created else "Already attached:"
        on = f" on {self.channel_type}" if self.channel_type else ""
        return f"{verb} identity {self.identifier}{on} to contact {self.contact_id}{_id(self.id)}."


class VerificationResult(WriteResult):
    """set_verification: the method's verification state after the change."""

    message: VerificationMessage
    contact_id: str
    type: MethodType
    value: str
    verified: bool
    verified_at: str | None = None
    verified_by: str | None = None
    verification_source: str | None = None

    def summary(self) -> str:
        return f"{self.message}: {self.value} on contact {self.contact_id}."


class UpsertResult(WriteResult):
    """upsert_contact: what was done and the contact's key fields."""

    outcome: Outcome | None = Field(default=None, description="Absent only on a dry run that cannot tell")
    id: str | None = Field(default=None, description=_NEW_ID)
    user_id: str | None = None
    email: str | None = None
    name: str | None = None
    phone: str | None = None

    def summary(self) -> str:
        who = self.email or self.user_id or self.id
        return f"Contact {who} {self.outcome or 'created or updated'}{_id(self.id)}."


class CreatedContact(WriteResult):
    """create_contact: the new contact."""

    id: str | None = Field(default=None, description=_NEW_ID)
    username: str
    phone_number: str
    display_name: str
    avatar_url: str | None = None
    created_at: str | None = None
    phone_shared_with: list[str] | None = None
    """Other contacts that already hold this phone number (families share phones), when any."""

    def summary(self) -> str:
        shared = ""
        if self.phone_shared_with:
            shared = f" The phone is shared with contact(s) {', '.join(self.phone_shared_with)}."
        return f"Created contact {self.username} ({self.phone_number}){_id(self.id)}.{shared}"


class DeletedContact(WriteResult):
    """delete_contact: the contact that is gone."""

    id: str
    also_deleted: list[str] | None = None
    """Contacts that had been merged into this one (the same person), deleted with it."""
    merged_into: str | None = None
    """The deleted contact had been merged into this one, which holds the person's data and still exists."""

    def summary(self) -> str:
        also = f" with merged contact(s) {', '.join(self.also_deleted)}" if self.also_deleted else ""
        survivor = f"; its data lives on in contact {self.merged_into}" if self.merged_into else ""
        return f"Deleted contact {self.id}{also}{survivor}."


class DetachedIdentity(WriteResult):
    """detach_identity: the identities taken off the contact."""

    contact_id: str
    identifier: str
    ids: list[str]

    def summary(self) -> str:
        return f"Detached {self.identifier} from contact {self.contact_id} (identity {', '.join(self.ids)})."


class DetachedContact(WriteResult):
    """detach_contact: the method taken off the contact."""

    contact_id: str
    channel: str
    normalized_value: str
    uid: str
    new_primary: str | None = None
    """The value that became primary of its kind in the detached one's place."""

    def summary(self) -> str:
        primary = f"; {self.new_primary} is now primary" if self.new_primary else ""
        return f"Detached {self.channel} {self.normalized_value} from contact {self.contact_id}{primary}."


# A provider fills what its API says; what it does not say stays absent (None), never invented.
class ContactMethod(BaseModel):
    model_config = ConfigDict(defer_build=True)

    id: str | None = None
    channel: str
    type: str | None = None
    raw_value: str | None = None
    value: str
    primary: bool | None = None
    verified: bool | None = None
    verified_at: str | None = None
    verification_source: str | None = None
    verification_method: str | None = None


class Identity(BaseModel):
    model_config = ConfigDict(defer_build=True)

    id: str
    channel_type: str | None = None
    identifier: str
    channel_id: str | None = None
    created_at: str | None = None


class HistoryEntry(BaseModel):
    """One write through a tool, as the history records it."""

    model_config = ConfigDict(defer_build=True)

    at: str
    tool: str
    provider: str
    contact_id: str | None = None
    outcome: str
    """The success outcome (created, updated, unchanged, ...) or the error code."""
    fields: list[FieldChange] = Field(default_factory=list[FieldChange])
    """What changed (emails, phones and custom-field values masked), or the argument names given; no values once
    the contact was deleted."""
    client: str | None = None
    transport: str | None = None


class Contact(Result):
    """get_contact: the whole contact."""

    id: str
    user_id: str | None = None
    username: str | None = None
    name: str | None = None
    display_name: str | None = None
    locale: str | None = None
    profile_picture: str | None = None
    companies: list[Company] = Field(default_factory=list[Company])
    custom_fields: dict[str, CustomValue] = Field(default_factory=dict[str, CustomValue])
    roles: list[str] = Field(default_factory=list[str])
    subscribed_to_changelog: bool | None = None
    status: str | None = None
    merged_into: str | None = None
    tags: list[str] | None = None
    created_at: str | None = None
    updated_at: str | None = None
    methods: list[ContactMethod] = Field(default_factory=list[ContactMethod])
    identities: list[Identity] = Field(default_factory=list[Identity])
    truncated: list[str] | None = Field(default=None, description=_TRUNCATED)
    history: list[HistoryEntry] | None = Field(
        default=None, description="Writes to this contact, newest first (with include_history)"
    )
    history_cursor: str | None = Field(default=None, description="More history: pass as history_cursor")

    def summary(self) -> str:
        who = self.name or self.display_name or self.username or self.user_id or self.id
        return f"Contact {who} (id {self.id}): {len(self.methods)} method(s), {len(self.identities)} identity(ies)."

    def removed(self) -> list[FieldChange]:
        """What deleting this contact takes away, as far as this view of it shows: each field old to nothing,
        custom fields key by key, each method and identity as an object (as the store reports a delete)."""
        shown = self.model_dump(mode="json", exclude_none=True, exclude=_NOT_A_CHANGE)
        before = {name: value for name, value in shown.items() if value not in ([], {})}
        before.update((f"custom_fields.{key}", value) for key, value in self.custom_fields.items())
        changes = changes_between(before, {})
        changes += [
            FieldChange(field="methods", old=m.model_dump(mode="json", exclude_none=True, exclude={"raw_value"}))
            for m in self.methods
        ]
        changes += [
            FieldChange(field="identities", old=i.model_dump(mode="json", exclude_none=True, exclude={"created_at"}))
            for i in self.identities
        ]
        return changes


# Bookkeeping, or reported entry by entry (`Contact.removed`).
_NOT_A_CHANGE = {
    "provider", "id", "created_at", "updated_at", "truncated", "custom_fields", "methods", "identities",
}  # fmt: skip


class ContactSummary(BaseModel):
    model_config = ConfigDict(defer_build=True)

    id: str
    name: str | None = None
    username: str | None = None
    user_id: str | None = None
    email: str | None = None
    phone: str | None = None


class ContactPage(Result):
    """find_contacts: one page of matches."""

    contacts: list[ContactSummary]
    next_cursor: str | None = None

    def summary(self) -> str:
        more = f"; more with cursor {self.next_cursor}" if self.next_cursor else ""
        return f"Found {len(self.contacts)} contact(s){more}."


class DuplicateEvidence(BaseModel):
    model_config = ConfigDict(defer_build=True)

    kind: EvidenceKind
    value: str
    ids: list[str]


class DuplicateGroup(BaseModel):
    model_config = ConfigDict(defer_build=True)

    score: float
    contacts: list[ContactSummary]
    evidence: list[DuplicateEvidence]


class DuplicatePage(Result):
    """find_duplicates: one page of groups of contacts that are probably one person."""

    groups: list[DuplicateGroup]
    next_cursor: str | None = None

    def summary(self) -> str:
        more = f"; more with cursor {self.next_cursor}" if self.next_cursor else ""
        return f"Found {len(self.groups)} group(s) of probable duplicates{more}."


class MergeConflict(BaseModel):
    model_config = ConfigDict(defer_build=True)

    field: str
    kept: str
    dropped: str
    id: str
    """The duplicate whose value was dropped."""


class MergeResult(WriteResult):
    """merge_contacts: the survivor, what it took from the duplicates, and the values it kept over theirs."""

    outcome: Outcome
    survivor_id: str
    merged_ids: list[str]
    filled: list[str]
    moved_methods: int
    moved_identities: int
    conflicts: list[MergeConflict]

    def summary(self) -> str:
        if not self.merged_ids:
            return f"Nothing to merge into contact {self.survivor_id}."
        kept = f"; {len(self.conflicts)} conflicting value(s) kept from the survivor" if self.conflicts else ""
        return f"Merged {len(self.merged_ids)} contact(s) into {self.survivor_id}{kept}."
