"""Call contact-mcp the way a desktop host does: spawn `python -m contact_mcp serve` and talk MCP over stdio.

Run from a checkout with the package installed (`pip install -e .`):

    CONTACT_MCP_DB=/tmp/contacts.db python examples/stdio_client.py

The server inherits this process's environment, so every CONTACT_MCP_* variable (and provider key) applies.
It upserts a contact, finds it again and prints both results; the exit code is 1 if either call fails.
"""

from __future__ import annotations

import json
import os
import sys

import anyio
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult, TextContent


def show(tool: str, result: CallToolResult) -> None:
    text = " ".join(block.text for block in result.content if isinstance(block, TextContent))
    print(f"{tool}: {'error' if result.is_error else 'ok'}: {text}")
    print(f"  {json.dumps(result.structured_content)}")


async def main() -> int:
    params = StdioServerParameters(command=sys.executable, args=["-m", "contact_mcp", "serve"], env=dict(os.environ))
    async with Client(params) as client:
        upserted = await client.call_tool(
            "upsert_contact", {"email": "grace@example.com", "user_id": "grace-1906", "name": "Grace Hopper"}
        )
        show("upsert_contact", upserted)
        found = await client.call_tool("find_contacts", {"email": "grace@example.com"})
        show("find_contacts", found)
    return 1 if upserted.is_error or found.is_error else 0


def run() -> int:
    try:
        return anyio.run(main)
    except Exception as exc:  # the server failed to start or died: the SDK raises an exception group
        print(f"stdio_client: could not talk to the server: {exc!r}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run())
