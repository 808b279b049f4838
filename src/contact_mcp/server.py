"""`build_server(settings)`: the MCP server with the tools its enabled providers serve.

The lifespan opens each enabled provider once (the SQLite store, one HTTP client per API) and closes it on
shutdown. `ContactServer.call_tool` is the one place where a failed call becomes our structured error result:
a `ContactError` from a tool, an argument that fails its Pydantic schema, an argument the tool does not declare,
an unknown tool. Anything else is a bug and keeps the SDK's sanitised "Error executing tool" result.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, get_args, get_origin

import httpx2
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from contact_mcp import providers
from contact_mcp.errors import ContactError, ErrorCode, ErrorInfo, error_result
from contact_mcp.models import Operation, Result
from contact_mcp.schemas import compact_output_schema, portable_input_schema
from contact_mcp.settings import Settings, load_settings
from contact_mcp.tools import TOOLS, AppState, annotations_for

log = logging.getLogger("contact_mcp")

INSTRUCTIONS = (
    "Contact tools. Phones are E.164 (+country code). Failed calls return structuredContent.error "
    "{code, message, field, hint, retryable}: fix the named field, or retry only when retryable."
)


def _version() -> str:
    try:
        return version("contact-mcp")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0.0.0"


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _hint(err: ErrorDetails, field: str) -> str:
    kind = err["type"]
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    if kind == "missing":
        return f"Add the required argument {field}"
    if kind == "string_too_long":
        return f"Shorten {field} to at most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return f"{field} must not be empty"
    if kind in ("too_long", "too_short"):
        return f"Send between {ctx.get('min_length', 0)} and {ctx.get('max_length', 'any')} items in {field}"
    if kind == "extra_forbidden":
        return f"Remove {field}: it is not an accepted property"
    return f"Correct {field} as the message says and call again"


# Pydantic names the member a union value failed against as a last location part ("str", "int", "list[str]").
_UNION_TAG = re.compile(r"^(str|int|float|bool|none|[a-z-]+\[.*\])$")


def _merge_unions(errors: list[ErrorDetails]) -> list[tuple[str, str, ErrorDetails]]:
    """(field, message, first error) per field, folding a union's per-member failures into one line."""
    grouped: dict[str, list[ErrorDetails]] = {}
    for err in errors:
        loc = err["loc"]
        tagged = len(loc) > 1 and isinstance(loc[-1], str) and _UNION_TAG.match(loc[-1]) is not None
        key = _field_path(loc[:-1] if tagged else loc)
        grouped.setdefault(key, []).append(err)
    merged: list[tuple[str, str, ErrorDetails]] = []
    for field, group in grouped.items():
        if len(group) == 1:
            merged.append((field, group[0]["msg"], group[0]))
        else:
            kinds = [str(err["loc"][-1]) for err in group]
            merged.append((field, "Input should be one of: " + ", ".join(kinds), group[0]))
    return merged


def validation_error_info(exc: ValidationError, provider: str | None) -> ErrorInfo:
    """Pydantic's verdict, restated for a model: field paths and messages, never the rejected input."""
    errors = _merge_unions(exc.errors(include_url=False, include_input=False, include_context=True))
    parts = [f"{field or 'arguments'}: {message}" for field, message, _ in errors[:3]]
    if len(errors) > 3:
        parts.append(f"and {len(errors) - 3} more")
    first_field, _, first = errors[0]
    return ErrorInfo(
        code=ErrorCode.INVALID_ARGUMENT,
        message="invalid arguments: " + "; ".join(parts),
        field=first_field or None,
        hint=_hint(first, first_field),
        provider=provider,
    )


class ContactServer(MCPServer[AppState]):
    """An `MCPServer` whose tool failures are structured `ContactError` results."""

    def __init__(self, *, tools: list[Tool], routing: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(tools=tools, **kwargs)
        self.routing = dict(routing)
        self._accepted = {tool.name: frozenset(tool.parameters.get("properties", {})) for tool in tools}
        self.opened: tuple[providers.Provider, ...] = ()
        """The providers the lifespan opened, while it is open (what readiness asks)."""

    @property
    def lowlevel(self) -> Server[Any]:
        """The SDK's low-level server, for transports that enter the lifespan once and serve every connection on
        it (`serve/`); `MCPServer` hands it only to its own app builders."""
        return self._lowlevel_server

    async def check_ready(self) -> None:
        """Readiness: raise unless the lifespan is open and each open provider's cheap local check passes."""
        if not self.opened:
            raise RuntimeError("the providers are not open (starting or stopping)")
        for provider in self.opened:
            await provider.ready()

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[AppState, Any] | None = None
    ) -> Any:
        provider = self.routing.get(name)
        accepted = self._accepted.get(name)
        if accepted is None:
            return error_result(
                ErrorInfo(
                    code=ErrorCode.INVALID_ARGUMENT,
                    message=f"there is no tool named {name!r}",
                    hint="Available tools: " + ", ".join(sorted(self._accepted)),
                )
            )
        unknown = sorted(set(arguments) - accepted)
        if unknown:
            return error_result(
                ErrorInfo(
                    code=ErrorCode.INVALID_ARGUMENT,
                    message=f"unknown argument(s) {', '.join(unknown)}",
                    field=unknown[0],
                    hint=f"{name} accepts: {', '.join(sorted(accepted))}",
                    provider=provider,
                )
            )
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            return self._as_result(name, exc, provider)

    def _as_result(self, name: str, exc: ToolError, provider: str | None) -> CallToolResult:
        cause = exc.__cause__
        if isinstance(cause, ContactError):
            info = cause.with_provider(provider).info() if provider else cause.info()
            log.info("tool %s failed: %s %s", name, info.code.value, info.message)
            return error_result(info)
        if isinstance(cause, ValidationError) and not isinstance(exc, UnexpectedToolError):
            info = validation_error_info(cause, provider)
            log.info("tool %s rejected arguments: %s", name, info.field)
            return error_result(info)
        raise exc


def _tool(operation: Operation, provider: str) -> Tool:
    spec = next(s for s in TOOLS if s.operation is operation)
    display = providers.provider_class(provider).display_name
    doc = " ".join((spec.fn.__doc__ or "").split())
    # structured_output=False: the SDK would generate the result's full JSON Schema only for us to replace it;
    # the model and the compact schema are set below, and the SDK validates every result against the model.
    tool = Tool.from_function(
        spec.fn,
        name=operation.value,
        title=spec.title,
        description=f"{doc} Provider: {display}.",
        annotations=annotations_for(spec, provider),
        structured_output=False,
    )
    tool.parameters = portable_input_schema(tool.parameters)
    result = result_model(spec.fn)
    tool.fn_metadata.output_model = result
    tool.fn_metadata.output_schema = compact_output_schema(result, result.keys)
    return tool


def result_model(fn: Callable[..., Any]) -> type[Result]:
    """The result a tool declares: `-> Annotated[CallToolResult, SomeResult]`."""
    declared = inspect.signature(fn).return_annotation
    args = get_args(declared)
    model = args[1] if get_origin(declared) is Annotated and len(args) == 2 else None
    if not (isinstance(model, type) and issubclass(model, Result)):
        raise TypeError(f"{fn.__name__} must return Annotated[CallToolResult, <a Result model>]")
    return model


def build_server(
    settings: Settings | None = None,
    *,
    transports: Mapping[str, httpx2.AsyncBaseTransport] | None = None,
) -> ContactServer:
    """Build the server; raises `ConfigError` for a configuration that cannot work (checked before serving)."""
    settings = settings or load_settings()
    routing = providers.select(settings)
    ordered = [spec.operation for spec in TOOLS if spec.operation in routing]
    tools = [_tool(op, routing[op]) for op in ordered]
    enabled = list(dict.fromkeys(routing.values()))
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
            yield AppState(
                providers={op: opened[name] for op, name in routing.items()},
                default_region=settings.default_region,
            )

    return ContactServer(
        tools=tools,
        routing={op.value: name for op, name in routing.items()},
        name="contact-mcp",
        version=_version(),
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level,  # type: ignore[arg-type]
    )
