"""A contact as the store holds it, whole: what export writes (one JSON object per line) and restore reads back.

Unlike `models.Contact` (what an agent reads), a record keeps everything needed to put a contact back exactly:
every id and timestamp, each method's own `created_at`, verification as stored. Records are backend-neutral, so
an export from SQLite restores into PostgreSQL. `check_record` is the rule a record must meet before any backend
writes it; `stored_fields` reads a backend's named columns, which `record_from` and `contact_from` (what
get_contact shows) validate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field

from contact_mcp.errors import InvalidArgument
from contact_mcp.limits import MAX_TEXT_LENGTHS
from contact_mcp.models import ChannelType, Company, Contact, CustomValue
from contact_mcp.normalize import (
    CHANNEL_KINDS,
    identifier_kind,
    in_normal_form,
    method_type,
    normalize_channel,
    normalize_channel_value,
    normalize_identifier,
    opt,
)
from contact_mcp.store import rules


class MethodRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    id: str
    channel: str
    type: str | None = None
    raw_value: str
    value: str
    primary: bool = False
    verified_at: str | None = None
    verification_source: str | None = None
    verification_method: str | None = None
    created_at: str


class IdentityRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    id: str
    channel_type: str | None = None
    identifier: str
    channel_id: str | None = None
    created_at: str


class ContactRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

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
    merged_into: str | None = None
    created_at: str
    updated_at: str
    methods: list[MethodRecord] = Field(default_factory=list[MethodRecord])
    identities: list[IdentityRecord] = Field(default_factory=list[IdentityRecord])


class RecordPage(BaseModel):
    """One batch of an export, in the store's order; `after` continues it (None: that was the last batch)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    records: list[ContactRecord]
    after: str | None = None


def check_record(record: ContactRecord) -> ContactRecord:
    """A record any backend can write as it stands: a UUID contact id, ISO 8601 timestamps, the values the contact
    is matched on as the tools write them (all three returned in the store's form), nothing longer or more than a
    tool would take (`limits`), at most one primary per kind, no method twice on one channel, no identity twice.
    `InvalidArgument` naming the problem otherwise."""
    canonical = rules.canonical_id(record.id)
    if canonical is None:
        raise InvalidArgument(f"contact id {record.id!r} is not a UUID", field="id")
    record = _in_store_time(record.model_copy(update={"id": canonical}) if canonical != record.id else record)
    _within_limits(record)  # first: a value past them is not worth normalising
    record = _in_store_values(record)
    primaries: set[str] = set()
    channels: set[tuple[str, str]] = set()
    for method in record.methods:
        kind = rules.kind(method.channel, method.type)
        if method.primary:
            if kind in primaries:
                raise InvalidArgument(f"contact {canonical} has two primary {kind} methods", field="methods")
            primaries.add(kind)
        if (method.channel, method.value) in channels:
            raise InvalidArgument(f"contact {canonical} has {method.channel} {method.value} twice", field="methods")
        channels.add((method.channel, method.value))
    keys = {(i.identifier, i.channel_type or "", i.channel_id or "") for i in record.identities}
    if len(keys) != len(record.identities):
        raise InvalidArgument(f"contact {canonical} has one identity twice", field="identities")
    return record


def _in_store_time(record: ContactRecord) -> ContactRecord:
    """The record with its timestamps in the store's form, copied only where one was not (an export's never is).

    The store compares and sorts timestamps as text (history since, export order): a restored "yesterday" or an
    offset other than Z would sort wrong, or fail a read later."""

    at = rules.parse_instant

    def method_at(method: MethodRecord) -> MethodRecord:
        created = at(method.created_at, field="methods.created_at")
        verified = None if method.verified_at is None else at(method.verified_at, field="methods.verified_at")
        if (created, verified) == (method.created_at, method.verified_at):
            return method
        return method.model_copy(update={"created_at": created, "verified_at": verified})

    def identity_at(identity: IdentityRecord) -> IdentityRecord:
        created = at(identity.created_at, field="identities.created_at")
        return identity if created == identity.created_at else identity.model_copy(update={"created_at": created})

    methods = [method_at(method) for method in record.methods]
    identities = [identity_at(identity) for identity in record.identities]
    update = {
        "created_at": at(record.created_at, field="created_at"),
        "updated_at": at(record.updated_at, field="updated_at"),
        "methods": methods,
        "identities": identities,
    }
    unchanged = (
        update["created_at"] == record.created_at
        and update["updated_at"] == record.updated_at
        and all(new is old for new, old in zip(methods, record.methods, strict=True))
        and all(new is old for new, old in zip(identities, record.identities, strict=True))
    )
    return record if unchanged else record.model_copy(update=update)


_CHANNEL_TYPES: frozenset[str | None] = frozenset({*get_args(ChannelType), None})


def _in_store_values(record: ContactRecord) -> ContactRecord:
    """The record with the values it is matched on normalised as the tools normalise them, copied only where one
    was not (an export's never is): a method's channel, type and value, an identity's identifier, the user_id and
    username. A file edited by hand could otherwise put back "Ann@Example.com " or "(415) 555-0123", which no
    upsert, find or attach would ever match again, and a contact made next to it would hold the same address.

    A value already in that form is kept as it is (`normalize.in_normal_form`), even one a later release of the
    libraries would refuse; one that is not is normalised, and one no tool would accept (an email that is not one,
    a phone without its +country code: a restore knows no default region) is the tools' `InvalidArgument`, its
    field named in the record."""

    def method_form(method: MethodRecord) -> MethodRecord:
        channel = normalize_channel(method.channel, field="methods.channel")
        # The type is the channel's (None for a channel the tools do not know), as attach_contact writes it: the
        # store groups primaries by it (`rules.kind`), so a "telegram" typed "email" would pass for an email.
        type_, value = (
            (method_type(channel), method.value)
            if in_normal_form(CHANNEL_KINDS.get(channel), channel, method.value)
            else normalize_channel_value(channel, method.value, field="methods.value")
        )
        if (channel, type_, value) == (method.channel, method.type, method.value):
            return method
        return method.model_copy(update={"channel": channel, "type": type_, "value": value})

    def identity_form(identity: IdentityRecord) -> IdentityRecord:
        if identity.channel_type not in _CHANNEL_TYPES:
            raise InvalidArgument(
                f"identity channel_type {identity.channel_type!r} is not one of "
                + ", ".join(sorted(str(t) for t in _CHANNEL_TYPES if t is not None)),
                field="identities.channel_type",
            )
        identifier = (
            identity.identifier
            if in_normal_form(identifier_kind(identity.identifier), "", identity.identifier)
            else normalize_identifier(identity.identifier, field="identities.identifier")[1]
        )
        return identity if identifier == identity.identifier else identity.model_copy(update={"identifier": identifier})

    methods = [method_form(method) for method in record.methods]
    identities = [identity_form(identity) for identity in record.identities]
    user_id, username = opt(record.user_id), opt(record.username)
    unchanged = (
        (user_id, username) == (record.user_id, record.username)
        and all(new is old for new, old in zip(methods, record.methods, strict=True))
        and all(new is old for new, old in zip(identities, record.identities, strict=True))
    )
    if unchanged:
        return record
    return record.model_copy(
        update={"user_id": user_id, "username": username, "methods": methods, "identities": identities}
    )


def _within_limits(record: ContactRecord) -> None:
    """The tools' limits, on a record: what a restore stores is what an agent could have. Past them a value was
    also more than PostgreSQL indexes (a user_id of 3,000 characters stopped a whole import there, and SQLite
    took it)."""
    # (No bound on companies: a merge lists the union of its contacts'.)
    texts: list[tuple[str, str, str | None]] = [
        (name, name, getattr(record, name))
        for name in ("user_id", "name", "username", "display_name", "locale", "profile_picture")
    ]
    for method in record.methods:
        texts += [
            ("channel", "methods.channel", method.channel),
            ("value", "methods.value", method.value),
            ("value", "methods.raw_value", method.raw_value),
            ("verification_source", "methods.verification_source", method.verification_source),
        ]
    for identity in record.identities:
        texts += [
            ("identifier", "identities.identifier", identity.identifier),
            ("channel_id", "identities.channel_id", identity.channel_id),
        ]
    for limit_of, field, text in texts:
        limit = MAX_TEXT_LENGTHS[limit_of]
        if text is not None and len(text) > limit:
            raise InvalidArgument(f"{field} is {len(text)} characters; the limit is {limit}", field=field)
    rules.check_custom_fields(record.custom_fields)
    rules.check_roles(record.roles)


StoredFields = dict[str, Any]
"""A whole contact as plain values, named as `ContactRecord`'s fields: what a backend reads, before it becomes
a record (export, restore) or the agent's view (get_contact); each is one validation."""


def stored_fields(
    row: Mapping[str, Any], methods: list[dict[str, Any]], identities: list[dict[str, Any]]
) -> StoredFields:
    """From a backend's rows, columns named as the record's fields (the contact row may carry its `seq`; JSON
    columns may be JSON text or already decoded)."""
    fields = {name: value for name, value in row.items() if name != "seq"}
    # Parsed straight from JSON text by pydantic (faster than json.loads, then validating the Python values).
    fields["companies"] = rules.parse_companies(fields["companies"])
    fields["custom_fields"] = rules.parse_custom_fields(fields["custom_fields"])
    fields["roles"] = rules.parse_roles(fields["roles"])
    return {**fields, "methods": methods, "identities": identities}


def record_from(fields: StoredFields) -> ContactRecord:
    return ContactRecord.model_validate(fields)


def contact_from(fields: StoredFields) -> Contact:
    """The contact as get_contact shows it: a method is verified when it has a verification time."""
    methods = [{**m, "verified": m["verified_at"] is not None} for m in fields["methods"]]
    return Contact.model_validate({**fields, "provider": rules.PROVIDER, "methods": methods})
