"""The one step every tool call goes through, where every failure becomes a structured error result.

Before the SDK validates a call: arguments that are not a JSON object, an unknown tool, an argument the tool does
not declare, and a control character in any text are refused as `invalid_argument` results; a `null` argument is
dropped, so it means exactly "not given" (it never clears a stored value). After: a `ContactError` from a tool
and an argument that fails its Pydantic schema become `invalid_argument` (or the error's own code) results whose
payload names the provider the call was routed to. Anything else is a bug and keeps the SDK's sanitised
"Error executing tool" result. So a tool call never ends in a JSON-RPC protocol error, save a request the SDK
cannot read as a tool call at all (no tool name).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, cast

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from contact_mcp import dry_run
from contact_mcp.errors import ContactError, ErrorCode, ErrorInfo, error_result
from contact_mcp.history import HistoryLog
from contact_mcp.providers.base import Provider
from contact_mcp.server.recording import LOCAL, in_store, record_call
from contact_mcp.store import history as store_history
from contact_mcp.tools.arguments import check_text
from contact_mcp.tools.reads import PROVIDER_ARGUMENT
from contact_mcp.tools.state import AppState

log = logging.getLogger("contact_mcp")

_FLAG = TypeAdapter(bool)


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
    if kind == "too_short":
        return f"Send at least {ctx.get('min_length', 1)} item(s) in {field}"
    if kind == "too_long":
        return f"Send at most {ctx.get('max_length')} items in {field}"
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


def _is_dry_run(arguments: Mapping[str, Any]) -> bool:
    """Whether the call asks for a dry run, as the tool's validation will read `dry_run` (a wrong type: no)."""
    try:
        return _FLAG.validate_python(arguments.get("dry_run", False))
    except ValidationError:
        return False


async def arguments_must_be_an_object(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Middleware: a `tools/call` whose `arguments` is not a JSON object (a list, a string) would fail the SDK's
    request validation as JSON-RPC -32602 before any tool code runs; it gets an `invalid_argument` result
    instead, like every other bad argument."""
    params = ctx.params
    if ctx.method == "tools/call" and isinstance(params, Mapping):
        arguments = cast(Mapping[str, object], params).get("arguments")
        if arguments is not None and not isinstance(arguments, Mapping):
            return error_result(
                ErrorInfo(
                    code=ErrorCode.INVALID_ARGUMENT,
                    message=f"arguments must be a JSON object, not {type(arguments).__name__}",
                    field="arguments",
                    hint='Send the arguments as an object of name and value, e.g. {"email": "ann@example.com"}',
                )
            )
    return await call_next(ctx)


def _reads_only(tool: Tool) -> bool:
    return bool(tool.annotations is not None and tool.annotations.read_only_hint)


def _history_of(context: Context[AppState, Any] | None) -> HistoryLog | None:
    """The history the lifespan opened, when the call came through a request (the SDK's own path always does)."""
    if context is None:
        return None
    try:
        state = cast(object, context.request_context.lifespan_context)
    except ValueError:
        return None
    return state.history if isinstance(state, AppState) else None


class ContactServer(MCPServer[AppState]):
    """An `MCPServer` whose tool failures are structured `ContactError` results."""

    def __init__(self, *, tools: list[Tool], routing: Mapping[str, tuple[str, ...]], **kwargs: Any) -> None:
        super().__init__(tools=tools, middleware=[arguments_must_be_an_object], **kwargs)
        self._routing = {name: tuple(names) for name, names in routing.items()}
        """Tool name → the providers serving it (several when the tool takes a `provider` argument)."""
        self._accepted = {tool.name: frozenset(tool.parameters.get("properties", {})) for tool in tools}
        self._writing = frozenset(tool.name for tool in tools if not _reads_only(tool))
        """The tools whose calls the history records (the table's `readOnlyHint`)."""
        self.opened: tuple[Provider, ...] = ()
        """The providers the lifespan opened, while it is open (what readiness asks)."""
        self.history: HistoryLog | None = None
        """The history the lifespan opened, while it is open (what `/healthz` counts)."""
        self.transport = "memory"
        """The transport serving this server, as the history records it: `serve/` sets stdio, sse or http."""

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

    def _provider_of(self, name: str, arguments: Mapping[str, Any]) -> str | None:
        """The provider a call is routed to: the tool's only one, or the valid `provider` argument it names."""
        serving = self._routing.get(name, ())
        if len(serving) == 1:
            return serving[0]
        chosen = arguments.get(PROVIDER_ARGUMENT)
        return chosen if chosen in serving else None

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[AppState, Any] | None = None
    ) -> Any:
        accepted = self._accepted.get(name)
        if accepted is None:
            return error_result(
                ErrorInfo(
                    code=ErrorCode.INVALID_ARGUMENT,
                    message=f"there is no tool named {name!r}",
                    hint="Available tools: " + ", ".join(sorted(self._accepted)),
                )
            )
        provider = self._provider_of(name, arguments)
        # null means "not given": models (OpenAI's in strict mode especially) send null for what they leave out.
        given = {key: value for key, value in arguments.items() if value is not None}
        if name not in self._writing:
            return await self._call(name, arguments, given, accepted, provider, context)
        history = _history_of(context)
        recorded = {key: value for key, value in given.items() if key in accepted}
        # A store write appends its entry in its own transaction; anything else is recorded here once it ended.
        pending = (
            in_store(tool=name, arguments=recorded, context=context, transport=self.transport)
            if history is not None and provider == LOCAL and not _is_dry_run(given)
            else None
        )
        try:
            with store_history.recording(pending):
                result = await self._call(name, arguments, given, accepted, provider, context)
        except Exception:
            if history is not None:
                await record_call(
                    history, tool=name, provider=provider, arguments=recorded, result=None, context=context,
                    transport=self.transport, pending=pending,
                )  # fmt: skip
            raise
        except BaseException:  # ended before it finished: a provider may have done it (the store's own write
            # records itself in its transaction, if it commits)
            if history is not None and pending is None:
                with anyio.CancelScope(shield=True):
                    await record_call(
                        history, tool=name, provider=provider, arguments=recorded, result=None, context=context,
                        transport=self.transport, ended=True,
                    )  # fmt: skip
            raise
        if history is not None and isinstance(result, CallToolResult):  # not a request for input: that call ends later
            await record_call(
                history, tool=name, provider=provider, arguments=recorded, result=result, context=context,
                transport=self.transport, pending=pending,
            )  # fmt: skip
        return result

    async def _call(
        self,
        name: str,
        arguments: dict[str, Any],
        given: dict[str, Any],
        accepted: frozenset[str],
        provider: str | None,
        context: Context[AppState, Any] | None,
    ) -> Any:
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
            check_text(given)
        except ContactError as exc:
            return self._contact_error(name, exc, provider)
        try:
            with dry_run.marked(_is_dry_run(given)):
                return await super().call_tool(name, given, context)
        except ToolError as exc:
            return self._as_result(name, exc, provider)

    def _contact_error(self, name: str, exc: ContactError, provider: str | None) -> CallToolResult:
        info = exc.info(provider=provider)
        # Code and field only: a message may quote the caller's data (an email, a phone), which logs never carry.
        log.info("tool %s failed: %s (field %s)", name, info.code.value, info.field)
        return error_result(info)

    def _as_result(self, name: str, exc: ToolError, provider: str | None) -> CallToolResult:
        cause = exc.__cause__
        if isinstance(cause, ContactError):
            return self._contact_error(name, cause, provider)
        if isinstance(cause, ValidationError) and not isinstance(exc, UnexpectedToolError):
            info = validation_error_info(cause, provider)
            log.info("tool %s rejected arguments: %s", name, info.field)
            return error_result(info)
        raise exc
