"""What an MCP client sees in `tools/list`: names, titles, annotations, portable schemas, the token budget."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import pytest
from mcp import Client
from mcp.types import Tool

from contact_mcp.tools.table import TOOLS

pytestmark = pytest.mark.anyio

# tool: (title, readOnlyHint, destructiveHint, idempotentHint); openWorldHint is False on the local store.
ANNOTATIONS: dict[str, tuple[str, bool, bool | None, bool | None]] = {
    "attach_contact": ("Attach contact", False, False, True),
    "attach_identity": ("Attach identity", False, False, True),
    "set_verification": ("Set verification", False, True, True),
    "upsert_contact": ("Upsert contact", False, True, True),
    "create_contact": ("Create contact", False, False, False),
    "delete_contact": ("Delete contact", False, True, True),
    "detach_identity": ("Detach identity", False, True, True),
    "detach_contact": ("Detach contact", False, True, True),
    "get_contact": ("Get contact", True, None, None),
    "find_contacts": ("Find contacts", True, None, None),
    "find_duplicates": ("Find duplicates", True, None, None),
    "merge_contacts": ("Merge contacts", False, True, True),
}
REQUIRED: dict[str, set[str]] = {
    "attach_contact": {"end_user_id", "channel", "value"},
    "attach_identity": {"contact_id", "identifier"},
    "set_verification": {"contact_id", "type", "value", "verified"},
    "upsert_contact": set(),
    "create_contact": {"username", "phone_number"},
    "delete_contact": {"contact_id"},
    "detach_identity": {"contact_id", "identifier"},
    "detach_contact": {"contact_id", "channel", "value"},
    "get_contact": {"contact_id"},
    "find_contacts": set(),
    "find_duplicates": set(),
    "merge_contacts": {"survivor_id", "duplicate_ids"},
}
PROPERTIES: dict[str, set[str]] = {
    "attach_contact": {"end_user_id", "channel", "value", "dry_run"},
    "attach_identity": {"contact_id", "identifier", "channel_type", "channel_id", "dry_run"},
    "set_verification": {
        "contact_id",
        "type",
        "value",
        "verified",
        "verification_source",
        "verified_at",
        "dry_run",
        "confirm",
    },
    "upsert_contact": {
        "email",
        "user_id",
        "name",
        "phone",
        "locale",
        "profile_picture",
        "companies",
        "custom_fields",
        "roles",
        "subscribed_to_changelog",
        "dry_run",
    },
    "create_contact": {"username", "phone_number", "display_name", "avatar_url", "dry_run"},
    "delete_contact": {"contact_id", "dry_run", "confirm"},
    "detach_identity": {"contact_id", "identifier", "channel_type", "channel_id", "dry_run"},
    "detach_contact": {"contact_id", "channel", "value", "dry_run"},
    "get_contact": {"contact_id"},
    "find_contacts": {"email", "phone", "username", "user_id", "query", "limit", "cursor"},
    "find_duplicates": {"limit", "cursor", "min_score"},
    "merge_contacts": {"survivor_id", "duplicate_ids", "dry_run", "confirm"},
}
TOKEN_BUDGET = 2000
"""Everything the default configuration lists (every tool on the local store)."""
FIRST_SEVEN = frozenset(
    {"attach_contact", "attach_identity", "set_verification", "upsert_contact", "create_contact"}
    | {"get_contact", "find_contacts"}
)
FIRST_SEVEN_BUDGET = 1500
"""The tools of before issue 12 keep within what they fitted then."""
SHARES = {("find_duplicates", "merge_contacts"): 260}
"""Issue 12's shares of the budget, per group of tools."""
DRY_RUN_CHARACTERS = 53
"""What `dry_run` adds to a write tool's model-visible JSON: `,"dry_run":{"type":"boolean","description":"Preview"}`
(about 13 tokens at 4 characters a token; a described boolean property cannot cost less than 12)."""
ERASURE = ("delete_contact", "detach_identity", "detach_contact")
ERASURE_BUDGET = 330
"""Issue 12's share for the erasure tools; their `dry_run` and `confirm` arguments count in those shares."""


async def _tools(client: Client) -> dict[str, Tool]:
    return {tool.name: tool for tool in (await client.list_tools()).tools}


async def test_local_store_offers_every_tool_in_table_order(client: Client) -> None:
    names = [tool.name for tool in (await client.list_tools()).tools]
    assert names == [spec.operation.value for spec in TOOLS]
    assert set(names) == set(ANNOTATIONS)


@pytest.mark.parametrize("name", list(ANNOTATIONS))
async def test_title_and_annotations_match_the_table(client: Client, name: str) -> None:
    tool = (await _tools(client))[name]
    title, read_only, destructive, idempotent = ANNOTATIONS[name]
    hints = tool.annotations
    assert hints is not None
    assert tool.title == title
    assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint) == (read_only, destructive, idempotent)
    assert hints.open_world_hint is False


@pytest.mark.parametrize("name", list(ANNOTATIONS))
async def test_description_names_the_provider(client: Client, name: str) -> None:
    tool = (await _tools(client))[name]
    assert tool.description is not None
    assert tool.description.endswith("Provider: local.")


@pytest.mark.parametrize("name", list(ANNOTATIONS))
async def test_arguments_are_the_public_contract(client: Client, name: str) -> None:
    schema = (await _tools(client))[name].input_schema
    assert set(schema["properties"]) == PROPERTIES[name]
    assert set(schema.get("required", [])) == REQUIRED[name]


def _walk(node: Any, path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    """Every schema object below `node`, with its JSON path."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        mapping = cast(dict[str, Any], node)
        found.append((path, mapping))
        for name, sub in cast(dict[str, Any], mapping.get("properties", {})).items():
            found.extend(_walk(sub, f"{path}.{name}"))
        if "items" in mapping:
            found.extend(_walk(mapping["items"], f"{path}[]"))
    return found


@pytest.mark.parametrize("name", list(ANNOTATIONS))
async def test_input_schema_is_portable(client: Client, name: str) -> None:
    schema = (await _tools(client))[name].input_schema
    text = json.dumps(schema)
    assert schema["type"] == "object"
    for banned in ("$ref", "$defs", "anyOf", "oneOf", "allOf", '"title"'):
        assert banned not in text, f"{name} input schema contains {banned}"
    for path, node in _walk(schema):
        assert not isinstance(node.get("type"), list), f"type array at {path}"
        if path != "$":
            assert node.get("description") or path.endswith("[]"), f"{name}: {path} is not described"
        if node.get("type") == "object" and path != "$" and "properties" not in node:
            assert "description" in node, f"free-form object at {path} must say what it holds"


def _model_shown(tool: Tool) -> str:
    """What a model is shown of a tool: its name, description and input schema, as compact JSON."""
    shown = {"name": tool.name, "description": tool.description, "inputSchema": tool.input_schema}
    return json.dumps(shown, separators=(",", ":"), ensure_ascii=False)


async def test_what_a_model_is_shown_fits_the_token_budget(
    client: Client, record_property: Callable[[str, object], None]
) -> None:
    """Agents pay on every turn for each tool's name, description and input schema: compact JSON / 4, summed over
    the default configuration's tools, stays within the budget. The whole tools/list answer is reported beside it."""
    result = await client.list_tools()
    shown = sum(len(_model_shown(tool)) for tool in result.tools) / 4
    wire = result.model_dump_json(by_alias=True, exclude_none=True)
    # shown in the run's summary (conftest), which test workers cannot print to directly
    record_property(
        "figure",
        f"model-visible tools for {len(result.tools)} tools ~ {shown:.0f} tokens (budget {TOKEN_BUDGET}); "
        f"whole tools/list: {len(wire)} JSON characters ~ {len(wire) / 4:.0f} tokens",
    )
    assert shown <= TOKEN_BUDGET
    first_seven = sum(len(_model_shown(tool)) for tool in result.tools if tool.name in FIRST_SEVEN) / 4
    assert first_seven <= FIRST_SEVEN_BUDGET
    tools = {tool.name: tool for tool in result.tools}
    for names, share in SHARES.items():
        assert sum(len(_model_shown(tools[name])) for name in names) / 4 <= share, names


async def test_every_write_tool_takes_dry_run_at_its_token_cost(client: Client) -> None:
    """Every tool that writes takes `dry_run`, an undefaulted boolean that costs each the same few characters."""
    tools = (await client.list_tools()).tools
    writers = [tool for tool in tools if not (tool.annotations and tool.annotations.read_only_hint)]
    assert len(writers) >= 5
    for tool in writers:
        schema = tool.input_schema
        assert schema["properties"]["dry_run"] == {"type": "boolean", "description": "Preview"}, tool.name
        assert "dry_run" not in schema.get("required", []), tool.name
        without = {**schema, "properties": {k: v for k, v in schema["properties"].items() if k != "dry_run"}}
        cost = len(_model_shown(tool)) - len(_model_shown(tool.model_copy(update={"input_schema": without})))
        assert cost <= DRY_RUN_CHARACTERS, tool.name


async def test_the_erasure_tools_fit_their_share_of_the_budget(
    client: Client, record_property: Callable[[str, object], None]
) -> None:
    """delete_contact, detach_identity and detach_contact together, as a model sees them, less the `dry_run` and
    `confirm` arguments (budgeted per tool in their own shares)."""
    shown = 0.0
    for tool in (await client.list_tools()).tools:
        if tool.name not in ERASURE:
            continue
        schema = dict(tool.input_schema)
        schema["properties"] = {k: v for k, v in schema["properties"].items() if k not in ("dry_run", "confirm")}
        shown += len(_model_shown(tool.model_copy(update={"input_schema": schema}))) / 4
    record_property("figure", f"erasure tools ~ {shown:.0f} tokens (share {ERASURE_BUDGET})")
    assert 0 < shown <= ERASURE_BUDGET
