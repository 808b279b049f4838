"""merge_contacts' rules (pure): what moves from each duplicate to the survivor, what fills, what conflicts.

A backend reads the survivor and each duplicate whole (`ContactRecord`s, rows locked), asks `merge_into` once per
duplicate, in the order given, and writes what it decided, all in one transaction:

- **Methods** move to the survivor. One the survivor already has (same channel and value) is folded into the
  survivor's (the duplicate's row goes); a verified one verifies the survivor's unverified copy. A moved method stays
  primary only where the survivor has no primary of its kind.
- **Identities** move (an identity is unique store-wide, so two contacts never hold the same one).
- **Fields**: an empty field of the survivor takes the duplicate's value (user_id and username are released by the
  duplicate first: they are unique); a field both hold with different values keeps the survivor's and is reported
  as a conflict. Companies and roles are unions (the survivor's entry wins for a company id both hold); custom
  fields merge key by key, a key both hold with different values being a conflict.
- **The duplicate** becomes a stub: `merged_into` names the survivor; it keeps its own fields (nothing is lost, and
  a user_id or username that stayed on it because the survivor has its own still leads there); it holds no methods
  or identities. Contacts merged into it earlier now point at the survivor, so `merged_into` is always one hop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Final

from contact_mcp.errors import Conflict, InvalidArgument, NotFound
from contact_mcp.models import Company, MergeConflict, MergeResult
from contact_mcp.store import rules
from contact_mcp.store.records import ContactRecord, MethodRecord

MAX_DUPLICATES: Final = 20
"""Duplicates one merge takes (a group find_duplicates reports is rarely larger)."""
SCALARS: Final = (
    "user_id", "username", "name", "display_name", "locale", "profile_picture", "subscribed_to_changelog",
)  # fmt: skip
RELEASED: Final = frozenset({"user_id", "username"})
"""Unique columns: the duplicate lets go of the value before the survivor takes it."""
MERGE_HINT: Final = "List the contacts with find_duplicates, then merge into a contact that is not merged"


@dataclass(frozen=True, slots=True)
class MethodFold:
    """A duplicate's method the survivor already has: the duplicate's row goes; `verify` (verified_at, source,
    method) is the verification the survivor's row (`into`) takes, when it gains one."""

    method_id: str
    into: str
    verify: tuple[str | None, str | None, str | None] | None


@dataclass(slots=True)
class MergePlan:
    """What merging one duplicate writes."""

    moved: list[tuple[str, bool]] = field(default_factory=list[tuple[str, bool]])
    """(method id, primary on the survivor)."""
    folded: list[MethodFold] = field(default_factory=list[MethodFold])
    identities: list[str] = field(default_factory=list[str])
    released: list[str] = field(default_factory=list[str])
    """Unique columns the duplicate gives up (set to NULL on it before the survivor's row is updated)."""


def check_ids(survivor_id: str, duplicate_ids: tuple[str, ...]) -> tuple[str, list[str]]:
    """Canonical ids, or `NotFound`/`InvalidArgument`: UUIDs, the survivor not among the duplicates, each once."""
    survivor = rules.canonical_id(survivor_id)
    if survivor is None:
        raise rules.contact_not_found(survivor_id, field="survivor_id")
    if not duplicate_ids:
        raise InvalidArgument("duplicate_ids is empty", field="duplicate_ids", hint="Pass the ids to merge away")
    if len(duplicate_ids) > MAX_DUPLICATES:
        raise InvalidArgument(
            f"{len(duplicate_ids)} duplicate ids given; a merge takes at most {MAX_DUPLICATES}",
            field="duplicate_ids",
            hint="Merge in several calls",
        )
    duplicates: list[str] = []
    for raw in duplicate_ids:
        canonical = rules.canonical_id(raw)
        if canonical is None:
            raise rules.contact_not_found(raw, field="duplicate_ids")
        if canonical == survivor:
            raise InvalidArgument(
                "the survivor is among the duplicates", field="duplicate_ids", hint="Leave survivor_id out of it"
            )
        if canonical not in duplicates:
            duplicates.append(canonical)
    return survivor, duplicates


def survivor_merged(survivor_id: str, into: str) -> Conflict:
    return Conflict(
        f"contact {survivor_id} was merged into {into}",
        field="survivor_id",
        existing_id=into,
        hint=f"Merge into {into} instead",
    )


def duplicate_merged(duplicate_id: str, into: str) -> Conflict:
    return Conflict(
        f"contact {duplicate_id} was already merged into {into}",
        field="duplicate_ids",
        existing_id=into,
        hint=MERGE_HINT,
    )


def duplicate_not_found(duplicate_id: str) -> NotFound:
    return rules.contact_not_found(duplicate_id, field="duplicate_ids", hint=rules.GET_HINT)


def _shown(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def merge_into(
    survivor: ContactRecord, duplicate: ContactRecord
) -> tuple[ContactRecord, MergePlan, list[MergeConflict]]:
    """The survivor after taking `duplicate` in, what to write for it, and the conflicts (survivor's value kept)."""
    plan = MergePlan()
    conflicts: list[MergeConflict] = []
    update: dict[str, object] = {}
    for name in SCALARS:
        ours, theirs = getattr(survivor, name), getattr(duplicate, name)
        if theirs is None or ours == theirs:
            continue
        if ours is None:
            update[name] = theirs
            if name in RELEASED:
                plan.released.append(name)
        else:
            conflicts.append(MergeConflict(field=name, kept=_shown(ours), dropped=_shown(theirs), id=duplicate.id))
    held = {c.id for c in survivor.companies}
    companies: list[Company] = [*survivor.companies, *(c for c in duplicate.companies if c.id not in held)]
    if len(companies) != len(survivor.companies):
        update["companies"] = companies
    roles = [*survivor.roles, *(r for r in duplicate.roles if r not in survivor.roles)]
    if len(roles) != len(survivor.roles):
        rules.check_roles(roles)
        update["roles"] = roles
    custom = dict(survivor.custom_fields)
    for key, value in duplicate.custom_fields.items():
        if key not in custom:
            custom[key] = value
        elif custom[key] != value:
            conflicts.append(
                MergeConflict(
                    field=f"custom_fields.{key}", kept=_shown(custom[key]), dropped=_shown(value), id=duplicate.id
                )
            )
    if len(custom) != len(survivor.custom_fields):
        rules.check_custom_fields(custom)
        update["custom_fields"] = custom
    methods = list(survivor.methods)
    primaries = {rules.kind(m.channel, m.type) for m in methods if m.primary}
    for m in duplicate.methods:
        same = next((i for i, s in enumerate(methods) if (s.channel, s.value) == (m.channel, m.value)), None)
        if same is not None:
            mine = methods[same]
            verify = None
            if mine.verified_at is None and m.verified_at is not None:
                verify = (m.verified_at, m.verification_source, m.verification_method)
                methods[same] = mine.model_copy(
                    update={
                        "verified_at": m.verified_at,
                        "verification_source": m.verification_source,
                        "verification_method": m.verification_method,
                    }
                )
            plan.folded.append(MethodFold(method_id=m.id, into=mine.id, verify=verify))
            continue
        kind = rules.kind(m.channel, m.type)
        primary = m.primary and kind not in primaries
        if primary:
            primaries.add(kind)
        plan.moved.append((m.id, primary))
        methods.append(MethodRecord.model_validate({**m.model_dump(), "primary": primary}))
    plan.identities = [i.id for i in duplicate.identities]
    update["methods"] = methods
    update["identities"] = [*survivor.identities, *duplicate.identities]
    return survivor.model_copy(update=update), plan, conflicts


def survivor_columns(before: ContactRecord, after: ContactRecord) -> dict[str, object]:
    """The survivor's contact columns that changed (JSON columns as JSON text), `search_text` and `username_key`
    with them; empty when nothing did."""
    columns: dict[str, object] = {}
    for name in SCALARS:
        if getattr(after, name) != getattr(before, name):
            columns[name] = getattr(after, name)
    if "username" in columns:
        columns["username_key"] = rules.username_key(after.username)
    if columns.keys() & {"name", "display_name", "username"}:
        columns["search_text"] = rules.search_text(after.name, after.display_name, after.username)
    if after.companies != before.companies:
        columns["companies"] = rules.companies_json(after.companies)
    if after.roles != before.roles:
        columns["roles"] = rules.roles_json(after.roles)
    if after.custom_fields != before.custom_fields:
        columns["custom_fields"] = rules.custom_fields_json(after.custom_fields)
    return columns


def merge_result(
    before: ContactRecord,
    after: ContactRecord,
    merged: list[str],
    *,
    moved_methods: int,
    moved_identities: int,
    conflicts: list[MergeConflict],
) -> MergeResult:
    filled = [name for name in survivor_columns(before, after) if name not in ("search_text", "username_key")]
    return MergeResult(
        provider=rules.PROVIDER,
        outcome="updated" if merged else "unchanged",
        survivor_id=before.id,
        merged_ids=merged,
        filled=filled,
        moved_methods=moved_methods,
        moved_identities=moved_identities,
        conflicts=conflicts,
    )
