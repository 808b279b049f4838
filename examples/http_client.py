"""Call a running contact-mcp over streamable HTTP: list the tools, then find contacts.

Start a server first, then run the client against it:

    CONTACT_MCP_HTTP_TOKEN=change-me contact-mcp serve --transport http --port 8000
    CONTACT_MCP_HTTP_TOKEN=change-me python examples/http_client.py

CONTACT_MCP_URL overrides the endpoint (default http://127.0.0.1:8000/mcp). When CONTACT_MCP_HTTP_TOKEN is set
it is sent as `Authorization: Bearer ...`. The exit code is 1 if the server cannot be reached or the call fails;
a refused token or an unreachable server is said in one line that names the variable to set.
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
TOKEN = os.environ.get("CONTACT_MCP_HTTP_TOKEN", "").strip()
# The SDK turns an HTTP error into a generic JSON-RPC error inside an exception group; the hook below keeps the
# status the server actually answered, so a failure can be explained.
refused: list[int] = []


async def remember_refusal(response: httpx2.Response) -> None:
    if response.status_code in (401, 403, 421):
        refused.append(response.status_code)


async def main() -> int:
    headers = {"Authorization": f"Bearer {TOKEN}"} if TOKEN else {}
    async with (
        httpx2.AsyncClient(
            headers=headers, timeout=httpx2.Timeout(30, read=300), event_hooks={"response": [remember_refusal]}
        ) as http,
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


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups: the SDK raises its errors wrapped in task-group groups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def explain(exc: Exception) -> str:
    if 401 in refused:
        if TOKEN:
            return "the server refused the token (401): set CONTACT_MCP_HTTP_TOKEN to the token the server runs with"
        return "the server requires a token (401): set CONTACT_MCP_HTTP_TOKEN to the token the server runs with"
    if refused:
        return (
            f"the server refused the request ({refused[0]}): its DNS-rebinding protection does not accept this host; "
            "add it to CONTACT_MCP_ALLOWED_HOSTS where the server runs"
        )
    errors = leaves(exc)
    if any(isinstance(error, httpx2.ConnectError) for error in errors):
        return (
            "nothing answers there: start a server (contact-mcp serve --transport http --port 8000) "
            "or set CONTACT_MCP_URL to where it listens"
        )
    return "; ".join(f"{type(error).__name__}: {error}" for error in errors)


def run() -> int:
    try:
        return anyio.run(main)
    except Exception as exc:
        print(f"http_client: could not talk to {URL}: {explain(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run())
