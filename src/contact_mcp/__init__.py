"""contact-mcp: an MCP server that gives LLM agents contact-management tools.

The public names load on first use (PEP 562), so importing the package costs nothing: `python -m contact_mcp` and
the `contact-mcp` script get to switch the garbage collector off before the SDK and our models are imported
(see `contact_mcp.__main__`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contact_mcp.errors import ConfigError, ContactError, ErrorCode
    from contact_mcp.server.build import build_server
    from contact_mcp.settings import Settings, load_settings

__all__ = ["ConfigError", "ContactError", "ErrorCode", "Settings", "build_server", "load_settings"]

_HOMES = {
    "ConfigError": "contact_mcp.errors",
    "ContactError": "contact_mcp.errors",
    "ErrorCode": "contact_mcp.errors",
    "build_server": "contact_mcp.server.build",
    "Settings": "contact_mcp.settings",
    "load_settings": "contact_mcp.settings",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'contact_mcp' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
