"""Reading `CallToolResult`s in tests: the summary line, the JSON text block, and the structured error."""

from __future__ import annotations

import json
from typing import Any

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
