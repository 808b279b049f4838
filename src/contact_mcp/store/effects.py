"""What a write's statements do to a whole contact, derived instead of read back.

A write reads each contact it changes whole before changing it (`records.StoredFields`, its rows locked), and
reports what changed as the difference from the contact after (`rules.field_changes`). Reading the contact again
costs a round trip and the database the work of assembling it; these functions give the after-state from the
before-state and the effect of each statement the write sends (one function per effect), so the change report, and
the history entry that carries it, are known before the writes go out. They are pure, and a backend whose reads
give `StoredFields` can use them (PostgreSQL does; SQLite, whose write is one hop to its thread either way, reads
back). The contract suite checks that each derived report equals what a read-back reports
(tests/store/test_changes_derived.py).

Methods and identities are dicts keyed as `records.MethodRecord` / `IdentityRecord`, in the order the store reads
them (oldest first); contact fields as `ContactRecord`'s, JSON columns decoded (`rules.parse_*`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from contact_mcp.store import rules
from contact_mcp.store.records import ContactRecord, StoredFields

Method = dict[str, Any]
Identity = dict[str, Any]

_PARSED: Final = {
    "companies": rules.parse_companies,
    "custom_fields": rules.parse_custom_fields,
    "roles": rules.parse_roles,
}


def method(
    *,
    id: str,
    channel: str,
    type_: str | None,
    raw_value: str,
    value: str,
    primary: bool,
    created_at: str,
    verified_at: str | None = None,
    verification_source: str | None = None,
    verification_method: str | None = None,
) -> Method:
    """A new method as the store reads it back."""
    return {
        "id": id, "channel": channel, "type": type_, "raw_value": raw_value, "value": value, "primary": primary,
        "verified_at": verified_at, "verification_source": verification_source,
        "verification_method": verification_method, "created_at": created_at,
    }  # fmt: skip


def identity(
    *,
    id: str,
    channel_type: str | None,
    identifier: str,
    channel_id: str | None,
    created_at: str,
) -> Identity:
    return {
        "id": id, "channel_type": channel_type, "identifier": identifier, "channel_id": channel_id,
        "created_at": created_at,
    }  # fmt: skip


def kind_of(m: Mapping[str, Any]) -> str:
    return rules.kind(m["channel"], m["type"])


# ---------- reading a whole contact (what the write decides on) ----------


def method_on(whole: StoredFields, channel: str, value: str) -> Method | None:
    """The contact's method on `channel` with `value` (at most one: unique per contact)."""
    return next((m for m in whole["methods"] if m["channel"] == channel and m["value"] == value), None)


def primary_of(whole: StoredFields, kind: str) -> Method | None:
    return next((m for m in whole["methods"] if m["primary"] and kind_of(m) == kind), None)


def values_of_kind(whole: StoredFields, kind: str) -> list[str]:
    """The contact's distinct values of `kind`, oldest first, as many as a hint lists."""
    return list(dict.fromkeys(m["value"] for m in whole["methods"] if kind_of(m) == kind))[: rules.VALUES_IN_HINT]


# ---------- effects ----------


def created(contact_id: str, new: rules.NewContact, now: str, methods: list[Method]) -> StoredFields:
    """A contact the write inserted (`new`), with its methods."""
    return {
        "id": contact_id, "user_id": new.user_id, "username": new.username, "name": new.name,
        "display_name": new.display_name, "locale": new.locale, "profile_picture": new.profile_picture,
        "companies": rules.parse_companies(new.companies),
        "custom_fields": rules.parse_custom_fields(new.custom_fields), "roles": rules.parse_roles(new.roles),
        "subscribed_to_changelog": new.subscribed_to_changelog,
        "merged_into": None, "created_at": now, "updated_at": now, "methods": methods, "identities": [],
    }  # fmt: skip


def updated(whole: StoredFields, columns: Mapping[str, object]) -> StoredFields:
    """The contact's row updated with `columns` as written (JSON columns as JSON text); columns that are no field
    of the contact (`search_text`, `username_key`) change nothing it shows."""
    after = dict(whole)
    for name, value in columns.items():
        if name in _PARSED:
            after[name] = _PARSED[name](value if isinstance(value, str) else str(value))
        elif name in after:
            after[name] = value
    return after


def touched(whole: StoredFields, now: str) -> StoredFields:
    return {**whole, "updated_at": now}


def with_method(whole: StoredFields, new: Method) -> StoredFields:
    return {**whole, "methods": [*whole["methods"], new]}


def with_identity(whole: StoredFields, new: Identity) -> StoredFields:
    return {**whole, "identities": [*whole["identities"], new]}


def _methods_where(whole: StoredFields, match: Callable[[Method], bool], change: Mapping[str, object]) -> StoredFields:
    return {**whole, "methods": [{**m, **change} if match(m) else m for m in whole["methods"]]}


def verification_set(
    whole: StoredFields, kind: str, value: str, state: tuple[str | None, str | None, str | None]
) -> StoredFields:
    """set_verification: every method of `kind` carrying `value` takes the state (verified_at, source, method)."""
    at, source, how = state
    change = {"verified_at": at, "verification_source": source, "verification_method": how}
    return _methods_where(whole, lambda m: m["value"] == value and kind_of(m) == kind, change)


def method_verified(
    whole: StoredFields, channel: str, value: str, *, verified_at: str, verification_method: str
) -> StoredFields:
    """attach_contact on an unverified method: its time and method set (its source kept)."""
    change = {"verified_at": verified_at, "verification_method": verification_method}
    return _methods_where(whole, lambda m: m["channel"] == channel and m["value"] == value, change)


def primary_set(whole: StoredFields, channel: str, value: str, primary: bool) -> StoredFields:
    return _methods_where(whole, lambda m: m["channel"] == channel and m["value"] == value, {"primary": primary})


def method_of_kind(whole: StoredFields, kind: str, value: str) -> Method | None:
    """The method an upsert makes primary when the contact has the value: on the kind's own channel first, else
    the oldest of the kind."""
    matches = [m for m in whole["methods"] if m["value"] == value and kind_of(m) == kind]
    return next((m for m in matches if m["channel"] == kind), matches[0] if matches else None)


def made_primary(
    whole: StoredFields, kind: str, value: str, new: Method
) -> tuple[StoredFields, Method | None, Method | None]:
    """upsert's primary switch to `value`: the current primary of `kind` (returned second) stops being primary,
    and the contact's method with the value (`method_of_kind`, returned third) becomes primary, else `new` (primary)
    is added (None third)."""
    current = primary_of(whole, kind)
    existing = method_of_kind(whole, kind, value)
    after = whole
    if current is not None:
        after = primary_set(after, current["channel"], current["value"], False)
    if existing is not None:
        after = primary_set(after, existing["channel"], existing["value"], True)
    else:
        after = with_method(after, new)
    return after, current, existing


def without_method(whole: StoredFields, channel: str, value: str) -> tuple[StoredFields, Method | None]:
    """detach_contact: the method gone; when it was primary, the oldest other of its kind becomes primary (that
    heir returned, as it was before)."""
    gone = method_on(whole, channel, value)
    kept = [m for m in whole["methods"] if m is not gone]
    heir = None
    if gone is not None and gone["primary"]:
        kind = kind_of(gone)
        heir = next((m for m in kept if kind_of(m) == kind), None)
        kept = [{**m, "primary": True} if m is heir else m for m in kept]
    return {**whole, "methods": kept}, heir


def without_identities(whole: StoredFields, ids: set[str]) -> StoredFields:
    return {**whole, "identities": [i for i in whole["identities"] if i["id"] not in ids]}


def merged_away(whole: StoredFields, survivor_id: str, released: list[str], now: str) -> StoredFields:
    """A duplicate after merge_contacts: a stub naming its survivor, its unique columns given up, no methods or
    identities (moved or folded into the survivor's)."""
    return {
        **whole,
        **dict.fromkeys(released),
        "merged_into": survivor_id,
        "updated_at": now,
        "methods": [],
        "identities": [],
    }


def from_record(record: ContactRecord) -> StoredFields:
    """A record (`merging.merge_into`'s survivor) in the shape a read gives."""
    fields: StoredFields = {name: getattr(record, name) for name in ContactRecord.model_fields}
    fields["methods"] = [m.model_dump() for m in record.methods]
    fields["identities"] = [i.model_dump() for i in record.identities]
    return fields
