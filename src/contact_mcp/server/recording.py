"""What the dispatch step records about a call of a tool that writes: one history entry, built from the call and
its result, never by the tool itself.

- **When, which tool, which provider** (the one the call was routed to), **which contact**: the result's
  `contact_id`, `end_user_id`, `survivor_id` or `id` (in that order), else the argument naming the contact.
- **Outcome**: the result's `outcome` (created, updated, unchanged), else `created` → created / unchanged, else
  what the tool does (create_contact → created, delete_contact → deleted, ...), else its `changes` (none →
  unchanged, some → updated), else `ok`; an error result records its error code; a provider's call ended before
  it finished (its client gone, the server stopping) records `ended`: the provider may have done it.
- **Fields**: the result's `changes` (`{field, old, new}`, as a dry run reports them) when it has them, else the
  names of the arguments given (values left out); emails, phones and custom-field values masked (`masking`).
- **Who**: the client's name, from `initialize`'s `clientInfo` (2025 clients) or the request's
  `_meta["io.modelcontextprotocol/clientInfo"]` (2026-07-28 clients, which have no handshake), and the
  transport the server was serving (`stdio`, `sse`, `http`; `memory` for an in-process client).
- **Not recorded**: dry runs (`dry_run: true` writes nothing, so there is nothing to record; an audit of what
  agents tried would be a different log) and calls of tools that only read.

Where it is written: a call routed to the store hands the store its entry-to-be (`in_store`), which the store's
write appends in its own transaction (`store/history.py InTransaction`: one commit per write); every other call
(a provider's, a failure, a store call that wrote nothing) is recorded here once it has ended (`record_call`).

A successful delete on a provider also scrubs the values from the earlier entries of the contact (and of the
contacts merged into it that went with it, `also_deleted`; `HistoryLog.scrub`) — the store does the same for its
own deletes inside the delete's transaction, so no value outlives it in the file — and the delete's own entry keeps
field names only: an erased person's history keeps what happened and when, and nothing that identifies them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, cast

from mcp.server.mcpserver import Context
from mcp.types import CLIENT_INFO_META_KEY, CallToolResult, Implementation

from contact_mcp.history import HistoryLog
from contact_mcp.masking import mask_value
from contact_mcp.models import FieldChange, HistoryEntry
from contact_mcp.store import rules
from contact_mcp.store.history import InTransaction

MAX_CLIENT_NAME: Final = 100
"""A client names itself; a longer name is cut, since it is stored on every entry."""
_CONTACT_KEYS: Final = ("contact_id", "end_user_id", "survivor_id", "id")
_CONTACT_ARGUMENTS: Final = ("contact_id", "end_user_id", "survivor_id")
# Arguments that say how or where to write, not what: never listed as fields.
_NOT_FIELDS: Final = frozenset({"contact_id", "end_user_id", "survivor_id", "provider", "dry_run", "confirm"})
# What a success of these tools is when its result has no `outcome` or `created` to say so.
_DONE_BY: Final = {
    "create_contact": "created",
    "delete_contact": "deleted",
    "merge_contacts": "merged",
    "detach_identity": "detached",
    "detach_contact": "detached",
}
LOCAL: Final = "local"
ERASING_TOOLS: Final = frozenset({"delete_contact"})
"""Tools whose success erases the contact: its earlier history entries lose their values."""


def client_name(context: Context[Any, Any] | None) -> str | None:
    """The calling client's self-reported name, on either protocol era; None when it gave none."""
    if context is None:
        return None
    try:
        request = context.request_context
    except ValueError:  # a call made outside a request (a test calling the server directly)
        return None
    params = request.session.client_params
    name: object = params.client_info.name if params is not None else None
    if name is None and request.meta is not None:
        info = cast(Mapping[str, Any], request.meta).get(CLIENT_INFO_META_KEY)
        if isinstance(info, Mapping):
            name = cast(Mapping[str, object], info).get("name")
        elif isinstance(info, Implementation):
            name = info.name
    return str(name)[:MAX_CLIENT_NAME] if isinstance(name, str) and name else None


def _contact_id(structured: Mapping[str, Any] | None, arguments: Mapping[str, Any]) -> str | None:
    for key in _CONTACT_KEYS if structured is not None else ():
        value = structured.get(key) if structured is not None else None
        if isinstance(value, str) and value:
            return value
    for key in _CONTACT_ARGUMENTS:
        value = arguments.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _outcome(tool: str, structured: Mapping[str, Any]) -> str:
    outcome = structured.get("outcome")
    if isinstance(outcome, str):
        return outcome
    created = structured.get("created")
    if isinstance(created, bool):
        return "created" if created else "unchanged"
    if tool in _DONE_BY:
        return _DONE_BY[tool]
    changes = structured.get("changes")
    if isinstance(changes, list):
        return "updated" if changes else "unchanged"
    return "ok"


def _fields(structured: Mapping[str, Any] | None, arguments: Mapping[str, Any]) -> list[FieldChange]:
    changes = structured.get("changes") if structured is not None else None
    if isinstance(changes, list):
        fields: list[FieldChange] = []
        for change in cast(list[object], changes):
            if not isinstance(change, Mapping):
                continue
            item = cast(Mapping[str, Any], change)
            name = str(item.get("field", ""))
            whose = item.get("contact_id")
            fields.append(
                FieldChange(
                    field=name,
                    old=cast(Any, mask_value(name, item.get("old"))),
                    new=cast(Any, mask_value(name, item.get("new"))),
                    contact_id=whose if isinstance(whose, str) else None,
                )
            )
        return fields
    return [FieldChange(field=name) for name in sorted(arguments) if name not in _NOT_FIELDS]


def is_dry_run(arguments: Mapping[str, Any], result: CallToolResult | None) -> bool:
    structured = result.structured_content if result is not None else None
    return arguments.get("dry_run") is True or (structured is not None and structured.get("dry_run") is True)


def entry_for(
    *,
    tool: str,
    provider: str | None,
    arguments: Mapping[str, Any],
    result: CallToolResult | None,
    client: str | None,
    transport: str | None,
    ended: bool = False,
) -> HistoryEntry:
    """The entry for one call of a writing tool; `result` None when the call raised (a bug: `internal_error`) or,
    `ended`, was ended before it finished (its client gone, the server stopping: `ended`, its effect unknown)."""
    structured = result.structured_content if result is not None else None
    if result is not None and not result.is_error and structured is not None:
        return _success_entry(tool, provider, arguments, structured, client, transport)
    error = structured.get("error") if structured is not None and result is not None and result.is_error else None
    if result is None:
        outcome = "ended" if ended else "internal_error"
    elif isinstance(error, Mapping):
        outcome = str(cast(Mapping[str, object], error).get("code", "error"))
    else:
        outcome = "error" if result.is_error else "ok"
    return HistoryEntry(
        at=rules.now(),
        tool=tool,
        provider=provider or "unknown",
        contact_id=_contact_id(None, arguments),
        outcome=outcome,
        fields=_fields(None, arguments),
        client=client,
        transport=transport,
    )


def _success_entry(
    tool: str,
    provider: str | None,
    arguments: Mapping[str, Any],
    structured: Mapping[str, Any],
    client: str | None,
    transport: str | None,
) -> HistoryEntry:
    fields = _fields(structured, arguments)
    if tool in ERASING_TOOLS:
        # The delete's own entry keeps what went (field names), not the values that identified the person.
        fields = [FieldChange(field=f.field, contact_id=f.contact_id) for f in fields]
    return HistoryEntry(
        at=rules.now(),
        tool=tool,
        provider=provider or "unknown",
        contact_id=_contact_id(structured, arguments),
        outcome=_outcome(tool, structured),
        fields=fields,
        client=client,
        transport=transport,
    )


def in_store(
    *,
    tool: str,
    arguments: Mapping[str, Any],
    context: Context[Any, Any] | None,
    transport: str | None,
) -> InTransaction:
    """The entry of a call routed to the store, for the store to append in the write's own transaction: the
    entry `entry_for` gives the successful result the tool will return (built from the operation's result)."""
    client = client_name(context)

    def entry(structured: Mapping[str, Any]) -> HistoryEntry:
        return _success_entry(tool, LOCAL, arguments, structured, client, transport)

    return InTransaction(entry=entry)


async def record_call(
    history: HistoryLog,
    *,
    tool: str,
    provider: str | None,
    arguments: Mapping[str, Any],
    result: CallToolResult | None,
    context: Context[Any, Any] | None,
    transport: str | None,
    pending: InTransaction | None = None,
    ended: bool = False,
) -> None:
    """Record one call of a writing tool (unless a dry run, or the store's write recorded it: `pending`); scrub a
    deleted contact's earlier entries first. `ended`: see `entry_for`."""
    if pending is not None and pending.state != "pending":
        await history.taken(pending, tool)
        return
    if is_dry_run(arguments, result):
        return
    entry = entry_for(
        tool=tool,
        provider=provider,
        arguments=arguments,
        result=result,
        client=client_name(context),
        transport=transport,
        ended=ended,
    )
    structured = result.structured_content if result is not None and not result.is_error else None
    if tool in ERASING_TOOLS and structured is not None and entry.provider != LOCAL:
        # The store scrubs its own in the delete's transaction (before its checkpoint).
        for erased in _erased(entry.contact_id, structured):
            await history.scrub(erased, entry.provider)
    await history.record(entry)


def _erased(contact_id: str | None, structured: Mapping[str, Any]) -> list[str]:
    """The contacts a successful delete erased: its own, and those merged into it that went with it."""
    also = structured.get("also_deleted")
    extra = [item for item in cast(list[object], also) if isinstance(item, str)] if isinstance(also, list) else []
    return ([contact_id] if contact_id is not None else []) + extra
