"""A successful tool result as every client can read it, within the size a model can take.

The structured result is the truth and goes out as `structuredContent`; the same JSON, compact, goes in a text
block (many agent frameworks hand their model only text), after a one-line summary in its own block. The JSON is
serialised once, and that serialisation is what the size limit measures.

No result's JSON exceeds `MAX_RESULT_BYTES`. A contact larger than that comes back shortened: its largest lists and
maps lose entries from the end until it fits, and `truncated` names the fields that were cut (the stored contact
is whole); so does a write's list of `changes` (a contact's worth of custom fields, set at once, is that large).
A page of contacts (or of groups of duplicates) that would not fit is an `invalid_argument` on `limit` whose hint
gives a limit that fits. No
other result can grow that large from valid arguments; one that did would be a `provider_error`.
"""

from typing import Any, cast

from mcp.types import CallToolResult, TextContent
from pydantic_core import to_json

from contact_mcp.errors import InvalidArgument, ProviderError
from contact_mcp.limits import MAX_RESULT_BYTES
from contact_mcp.models import Contact, ContactPage, DuplicatePage, Result, WriteResult

# A contact's collections, in the order they are cut when the whole contact would not fit.
_CUTTABLE = ("custom_fields", "companies", "methods", "identities", "roles", "tags")
_WRITE_CUTTABLE = ("changes",)


def success(result: Result) -> CallToolResult:
    data = result.structured()
    raw = to_json(data)
    if len(raw) > MAX_RESULT_BYTES:
        data, raw = _fit(result, data)
    return CallToolResult(
        content=[TextContent(type="text", text=result.headline()), TextContent(type="text", text=raw.decode())],
        structured_content=data,
    )


def _fit(result: Result, data: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    if isinstance(result, Contact):
        return _shorten(data, _CUTTABLE)
    if isinstance(result, WriteResult):
        return _shorten(data, _WRITE_CUTTABLE)
    if isinstance(result, ContactPage):
        raise _page_too_large(data, "contacts")
    if isinstance(result, DuplicatePage):
        raise _page_too_large(data, "groups")
    raise ProviderError(
        f"the result is larger than {MAX_RESULT_BYTES} bytes",
        provider=result.provider,
        hint="Nothing was changed by the size check; the call itself may have succeeded",
    )


def _shorten(data: dict[str, Any], cuttable: tuple[str, ...]) -> tuple[dict[str, Any], bytes]:
    shortened = dict(data)
    cut: list[str] = []
    raw = to_json(shortened)
    # Reserve room for the `truncated` list itself.
    budget = MAX_RESULT_BYTES - 200
    while len(raw) > budget:
        present = [name for name in cuttable if shortened.get(name)]
        if not present:
            break
        largest = max(present, key=lambda name: len(to_json(shortened[name])))
        shortened[largest] = _without_tail(shortened[largest], len(raw) - budget)
        if largest not in cut:
            cut.append(largest)
        raw = to_json({**shortened, "truncated": cut})
    if len(raw) > MAX_RESULT_BYTES:
        raise ProviderError(
            f"the result's fixed fields alone are larger than {MAX_RESULT_BYTES} bytes", provider=data["provider"]
        )
    shortened["truncated"] = cut
    return shortened, to_json(shortened)


def _without_tail(collection: object, excess: int) -> object:
    """`collection` less enough entries from its end to shed about `excess` bytes (at least one entry)."""
    if isinstance(collection, dict):
        items = list(cast(dict[str, object], collection).items())
        keep = _keep(items, excess)
        return dict(items[:keep])
    entries = cast(list[object], collection)
    return entries[: _keep(entries, excess)]


def _keep(entries: list[Any], excess: int) -> int:
    shed = 0
    keep = len(entries)
    while keep > 0 and shed < excess:
        keep -= 1
        shed += len(to_json(entries[keep])) + 1
    return keep


def _page_too_large(data: dict[str, Any], items: str) -> InvalidArgument:
    sizes = [len(to_json(item)) + 1 for item in cast(list[object], data[items])]
    room = MAX_RESULT_BYTES - len(to_json({**data, items: []}))
    fits = 0
    for size in sizes:
        if size > room:
            break
        room -= size
        fits += 1
    return InvalidArgument(
        f"this page of {items} is larger than {MAX_RESULT_BYTES} bytes",
        field="limit",
        hint=f"Call again with limit={max(fits, 1)} (and the same filters and cursor)",
        provider=cast(str, data["provider"]),
    )
