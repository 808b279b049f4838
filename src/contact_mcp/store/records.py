"""A contact as the store holds it, whole: what export writes (one JSON object per line) and restore reads back.

Unlike `models.Contact` (what an agent reads), a record keeps everything needed to put a contact back exactly:
every id and timestamp, each method's own `created_at`, verification as stored. Records are backend-neutral, so
an export from SQLite restores into PostgreSQL. `check_record` is the rule a record must meet before any backend
writes it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from contact_mcp.errors import InvalidArgument
from contact_mcp.models import Company, CustomValue
from contact_mcp.store import rules


class MethodRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    channel_type: str | None = None
    identifier: str
    channel_id: str | None = None
    created_at: str


class ContactRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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
    created_at: str
    updated_at: str
    methods: list[MethodRecord] = Field(default_factory=list[MethodRecord])
    identities: list[IdentityRecord] = Field(default_factory=list[IdentityRecord])


class RecordPage(BaseModel):
    """One batch of an export, in the store's order; `after` continues it (None: that was the last batch)."""

    model_config = ConfigDict(frozen=True)

    records: list[ContactRecord]
    after: str | None = None


def check_record(record: ContactRecord) -> ContactRecord:
    """A record any backend can write as it stands: a UUID contact id (returned canonical), at most one primary
    per kind, no method twice on one channel, no identity twice. `InvalidArgument` naming the problem otherwise."""
    canonical = rules.canonical_id(record.id)
    if canonical is None:
        raise InvalidArgument(f"contact id {record.id!r} is not a UUID", field="id")
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
    return record if canonical == record.id else record.model_copy(update={"id": canonical})
