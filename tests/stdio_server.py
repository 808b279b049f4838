"""How tests start the real server as a subprocess over stdio, the way a desktop MCP host does."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from mcp import StdioServerParameters


def server_params(env: Mapping[str, str], *args: str) -> StdioServerParameters:
    """`python -m contact_mcp serve` with only `env` (plus quiet logs) in its environment."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "contact_mcp", "serve", *args],
        env={"CONTACT_MCP_LOG_LEVEL": "WARNING", **env},
    )
