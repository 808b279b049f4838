"""A third-party agent framework drives our tools: the OpenAI Agents SDK's MCP client (which installs beside
`mcp` 2.x) over stdio, as an agent built on it would. What it hands its model is the tool result's text, so that
text must carry the data itself, not only a summary."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from agents import RunContextWrapper
from agents.mcp import MCPServerStdio, MCPUtil

pytestmark = pytest.mark.anyio


def _model_text(output: Any) -> str:
    """The text the framework gives its model for one tool output (a string, or a list of text items)."""
    if isinstance(output, str):
        return output
    return "\n".join(item["text"] for item in output if item.get("type") == "text")


@pytest.mark.slow
async def test_the_openai_agents_mcp_client_hands_its_model_the_data(tmp_path: Path) -> None:
    params: Any = {
        "command": sys.executable,
        "args": ["-m", "contact_mcp", "serve"],
        "env": {"CONTACT_MCP_DB": str(tmp_path / "contacts.db"), "PATH": os.environ.get("PATH", "")},
    }
    context: RunContextWrapper[None] = RunContextWrapper(context=None)
    with anyio.fail_after(60):
        async with MCPServerStdio(params=params, cache_tools_list=True) as server:
            tools = {tool.name: tool for tool in await server.list_tools()}
            upserted = await MCPUtil.invoke_mcp_tool(
                server, tools["upsert_contact"], context, json.dumps({"email": "lin@example.com", "name": "Lin Wu"})
            )
            found = await MCPUtil.invoke_mcp_tool(
                server, tools["find_contacts"], context, json.dumps({"email": "lin@example.com", "limit": None})
            )
    seen = _model_text(found)
    contact_id = json.loads(_model_text(upserted).splitlines()[-1])["id"]
    assert contact_id in seen
    assert "Lin Wu" in seen and "lin@example.com" in seen
