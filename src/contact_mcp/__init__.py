"""contact-mcp: an MCP server that gives LLM agents contact-management tools."""

from contact_mcp.errors import ConfigError, ContactError, ErrorCode
from contact_mcp.server import build_server
from contact_mcp.settings import Settings, load_settings

__all__ = ["ConfigError", "ContactError", "ErrorCode", "Settings", "build_server", "load_settings"]
