"""What a tool call reads from the running server: the providers the plan opened, and the default phone region.

The lifespan (`server.build`) opens each provider of the plan once and hands this state to every call; a tool
finds the provider serving its operation here and nowhere else.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from mcp.server.mcpserver import Context

from contact_mcp.history import HistoryLog
from contact_mcp.models import Operation
from contact_mcp.providers.base import Provider


@dataclass(frozen=True, slots=True)
class AppState:
    """What the lifespan opens once and every tool call reads."""

    serving: Mapping[Operation, Mapping[str, Provider]]
    """Per operation, the providers serving it by name: one for a write, one or more for a read."""
    default_region: str | None
    history: HistoryLog | None = None
    """The history of writes (in CONTACT_MCP_DB), when this server keeps or shows one (`history.needs_store`)."""


def app_state(ctx: Context[AppState]) -> AppState:
    return ctx.request_context.lifespan_context


def provider_for(ctx: Context[AppState], operation: Operation, name: str | None = None) -> Provider:
    """The provider serving `operation`: the named one when the tool takes a `provider` argument, else its only one."""
    served = ctx.request_context.lifespan_context.serving[operation]
    if name is None:
        return next(iter(served.values()))
    return served[name]
