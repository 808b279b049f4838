"""`build_server(settings)`: the plan rendered into an MCP server.

One loop turns each route of the plan (`tools.plan`) into an SDK tool: the function's signature is its input
schema, made portable; its return annotation `Annotated[CallToolResult, SomeResult]` publishes the result model's
complete, portable schema (the model renders it, see `Result`) and has the SDK check every result against the
model. A tool served by several providers (a read, delete_contact) gets a required `provider` argument, an enum
of exactly those.
The lifespan opens each provider of the plan once and closes it on shutdown.

SDK surface used: `Tool.from_function` and `MCPServer(tools=..., middleware=...)`. The SDK has no public way to
give a tool an input schema other than the one it derives (`add_tool` takes none in 2.3), so the portable schema
is set on a copy of the SDK's `Tool` (`model_copy(update={"parameters": ...})`); that field is the one thing we
rely on beyond the public API.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Literal

import httpx2
from mcp.server.mcpserver import MCPServer, RequestStateSecurity
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from contact_mcp import providers
from contact_mcp.models import Operation
from contact_mcp.schemas import portable_input_schema
from contact_mcp.server.dispatch import ContactServer
from contact_mcp.settings import Settings, load_settings
from contact_mcp.tools.confirm import confirming
from contact_mcp.tools.plan import Plan, Route, make_plan
from contact_mcp.tools.reads import PROVIDER_ARGUMENT
from contact_mcp.tools.state import AppState
from contact_mcp.tools.table import ToolFunction

INSTRUCTIONS = (
    "Contact tools. Phones are E.164 (+country code). Failed calls return structuredContent.error "
    "{code, message, field, hint, retryable}: fix the named field, or retry only when retryable."
)


def _version() -> str:
    try:
        return version("contact-mcp")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0.0.0"


def _choosing_provider(fn: ToolFunction, route: Route) -> ToolFunction:
    """`fn` with its `provider` parameter as the route needs it: gone when one provider serves the tool, else
    required and limited to the route's providers. A new function object per server, so servers built in one
    process never share a signature."""
    signature = inspect.signature(fn)
    kept = [
        param.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for param in signature.parameters.values()
        if param.name != PROVIDER_ARGUMENT
    ]
    if route.takes_provider:
        names = Literal[route.providers]  # pyright: ignore[reportInvalidTypeArguments]
        choice = inspect.Parameter(
            PROVIDER_ARGUMENT,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[names, Field(description="Provider to use")],
        )
        kept.insert(0, choice)

    @functools.wraps(fn)
    async def tool(**arguments: Any) -> CallToolResult:
        return await fn(**arguments)

    tool.__signature__ = signature.replace(parameters=kept)  # pyright: ignore[reportAttributeAccessIssue]
    return tool


def _annotations(base: ToolAnnotations, route: Route) -> ToolAnnotations:
    """The local store touches nothing outside the process; every provider API is an open world."""
    return base.model_copy(update={"open_world_hint": any(name != "local" for name in route.providers)})


def _tool(route: Route, settings: Settings) -> Tool:
    spec = route.spec
    shown = ", ".join(providers.provider_class(name).display_name for name in route.providers)
    doc = " ".join((spec.fn.__doc__ or "").split())
    fn = _choosing_provider(spec.fn, route) if spec.every_provider else spec.fn
    if spec.confirmation is not None and settings.confirm == "destructive":
        fn = confirming(fn, spec.confirmation)
    tool = Tool.from_function(
        fn,
        name=spec.name,
        title=spec.title,
        description=f"{doc} Provider: {shown}.",
        annotations=_annotations(spec.annotations, route),
    )
    return tool.model_copy(update={"parameters": portable_input_schema(tool.parameters)})


def build_server(
    settings: Settings | None = None,
    *,
    transports: Mapping[str, httpx2.AsyncBaseTransport] | None = None,
    plan: Plan | None = None,
) -> ContactServer:
    """Build the server; raises `ConfigError` for a configuration that cannot work (checked before serving)."""
    settings = settings or load_settings()
    plan = plan or make_plan(settings)
    tools = [_tool(route, settings) for route in plan.routes]
    enabled = plan.enabled
    for name in enabled:
        providers.provider_class(name).preflight(settings)
    transport_for = dict(transports or {})

    @asynccontextmanager
    async def lifespan(server: MCPServer[AppState]) -> AsyncGenerator[AppState]:
        async with AsyncExitStack() as stack:
            opened: dict[str, providers.Provider] = {}
            for name in enabled:
                provider = providers.build_provider(name, settings, transport=transport_for.get(name))
                stack.push_async_callback(provider.aclose)
                opened[name] = provider
            if isinstance(server, ContactServer):
                server.opened = tuple(opened.values())
                stack.callback(setattr, server, "opened", ())
            serving: dict[Operation, dict[str, providers.Provider]] = {
                route.spec.operation: {name: opened[name] for name in route.providers} for route in plan.routes
            }
            yield AppState(serving=serving, default_region=settings.default_region)

    return ContactServer(
        tools=tools,
        routing={route.spec.name: route.providers for route in plan.routes},
        name=settings.server_name,
        version=_version(),
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level,  # type: ignore[arg-type]
        request_state_security=_request_state_security(settings),
    )


def _request_state_security(settings: Settings) -> RequestStateSecurity | None:
    """The key ring sealing a call's state between the rounds of asking the user (protocol 2026-07-28), when the
    replicas share one; None leaves the SDK's key made at start-up, which only this process can open."""
    keys = settings.request_state_keys()
    return RequestStateSecurity(keys=keys) if keys else None
