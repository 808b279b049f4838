"""Reading `CallToolResult`s in tests: the summary line, the JSON text block, and the structured error."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from mcp.types import CallToolResult, TextContent


def _texts(result: CallToolResult) -> list[str]:
    blocks = [block for block in result.content if isinstance(block, TextContent)]
    assert len(blocks) == len(result.content), "every content block is text"
    return [block.text for block in blocks]


def text(result: CallToolResult) -> str:
    """The first text block: a success's one-line summary, or the whole text of an error."""
    return _texts(result)[0]


def json_text(result: CallToolResult) -> dict[str, Any]:
    """A success's structured result as its text says it: the summary line, then the compact JSON in its own block,
    equal to `structuredContent` (what a client that hands its model only text shows the model)."""
    assert result.is_error is not True
    summary, data = _texts(result)
    assert "\n" not in summary
    assert "\n" not in data and not data.startswith("{ "), "compact JSON"
    parsed: dict[str, Any] = json.loads(data)
    assert parsed == result.structured_content
    return parsed


def error_of(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error is True
    assert result.structured_content is not None
    error: dict[str, Any] = result.structured_content["error"]
    return error


def assert_described(data: Any, schema: dict[str, Any], path: str = "$") -> None:
    """`data` is valid against the published output `schema`, and the schema describes every key it holds, at any
    depth (a result carrying a field its schema does not list fails: the schema is meant to be complete)."""
    if path == "$":
        jsonschema.validate(data, schema)
    if isinstance(data, dict) and "properties" in schema:
        for key, value in data.items():
            assert key in schema["properties"], f"{path}.{key} is not in the output schema"
            assert_described(value, schema["properties"][key], f"{path}.{key}")
    elif isinstance(data, list) and "items" in schema:
        for index, item in enumerate(data):
            assert_described(item, schema["items"], f"{path}[{index}]")
