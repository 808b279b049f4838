"""The MCP server: `build` renders the plan into SDK tools, `dispatch` is the step every call goes through."""

from contact_mcp.server.build import build_server
from contact_mcp.server.dispatch import ContactServer

__all__ = ["ContactServer", "build_server"]
