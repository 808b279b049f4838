"""Reading `CallToolResult`s in tests: the one text block a tool answers with, and the structured error."""

from __future__ import annotations

from typing import Any

from mcp.types import CallToolResult, TextContent


def text(result: CallToolResult) -> str:
    (block,) = result.content
    assert isinstance(block, TextContent)
    return block.text


def error_of(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error is True
    assert result.structured_content is not None
    error: dict[str, Any] = result.structured_content["error"]
    return error
