"""Call a running contact-mcp over streamable HTTP: list the tools, then find contacts.

Start a server first, then run the client against it:

    CONTACT_MCP_HTTP_TOKEN=change-me contact-mcp serve --transport http --port 8000
    CONTACT_MCP_HTTP_TOKEN=change-me python examples/http_client.py

CONTACT_MCP_URL overrides the endpoint (default http://127.0.0.1:8000/mcp). When CONTACT_MCP_HTTP_TOKEN is set
it is sent as `Authorization: Bearer ...`. The exit code is 1 if the server cannot be reached or the call fails.
"""

from __future__ import annotations

import json
import os
import sys

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent

URL = os.environ.get("CONTACT_MCP_URL", "http://127.0.0.1:8000/mcp")


async def main() -> int:
    token = os.environ.get("CONTACT_MCP_HTTP_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http,
        Client(streamable_http_client(URL, http_client=http)) as client,
    ):
        tools = await client.list_tools()
        print(f"{len(tools.tools)} tools at {URL}:")
        for tool in tools.tools:
            print(f"  {tool.name}: {tool.description}")
        result = await client.call_tool("find_contacts", {"limit": 5})
    text = " ".join(block.text for block in result.content if isinstance(block, TextContent))
    print(f"find_contacts: {'error' if result.is_error else 'ok'}: {text}")
    print(f"  {json.dumps(result.structured_content)}")
    return 1 if result.is_error else 0


def run() -> int:
    try:
        return anyio.run(main)
    except Exception as exc:  # a refused token or nothing listening arrives as an exception group
        print(f"http_client: could not talk to {URL}: {exc!r}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run())
