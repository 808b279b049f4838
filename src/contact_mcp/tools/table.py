"""The tool table: the only list of tools, with each one's title, annotations and function.

Everything that enumerates tools reads this table: the plan (which provider serves which tool, after selection),
the server build, `doctor` and the manifests. A tool's result model is read off its function's return annotation
(`-> Annotated[CallToolResult, SomeResult]`), so nothing restates it.
"""

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

from mcp.types import CallToolResult, ToolAnnotations

from contact_mcp.models import Operation, Result
from contact_mcp.tools import reads, writes
from contact_mcp.tools.confirm import Confirmation, always

ToolFunction = Callable[..., Awaitable[CallToolResult]]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    operation: Operation
    fn: ToolFunction
    title: str
    annotations: ToolAnnotations
    every_provider: bool = False
    """Served by every enabled provider that can (the reads, and delete_contact: a contact lives in each provider
    apart); with several, the tool takes a `provider` argument. Otherwise one provider serves it: the one HTTP
    provider that can, else the local store (so an undo goes where its attach went)."""
    confirmation: Confirmation | None = None
    """When a call cannot be undone: the rule on its arguments and what to tell the user (`tools.confirm`)."""

    @property
    def name(self) -> str:
        return self.operation.value

    @property
    def read_only(self) -> bool:
        return bool(self.annotations.read_only_hint)


def _hints(*, read_only: bool, destructive: bool, idempotent: bool) -> ToolAnnotations:
    if read_only:
        # The spec gives destructive/idempotent meaning only when readOnlyHint is false; sending them costs tokens.
        return ToolAnnotations(read_only_hint=True)
    return ToolAnnotations(read_only_hint=False, destructive_hint=destructive, idempotent_hint=idempotent)


# openWorldHint is decided by the plan (the local store is a closed world, every provider API an open one).
TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        Operation.ATTACH_CONTACT,
        writes.attach_contact,
        "Attach contact",
        _hints(read_only=False, destructive=False, idempotent=True),
    ),
    ToolSpec(
        Operation.ATTACH_IDENTITY,
        writes.attach_identity,
        "Attach identity",
        _hints(read_only=False, destructive=False, idempotent=True),
    ),
    ToolSpec(
        Operation.SET_VERIFICATION,
        writes.set_verification,
        "Set verification",
        _hints(read_only=False, destructive=True, idempotent=True),
        confirmation=Confirmation(needed=writes.clears_verification, describe=writes.describe_clearing),
    ),
    ToolSpec(
        Operation.UPSERT_CONTACT,
        writes.upsert_contact,
        "Upsert contact",
        _hints(read_only=False, destructive=True, idempotent=True),
    ),
    ToolSpec(
        Operation.CREATE_CONTACT,
        writes.create_contact,
        "Create contact",
        _hints(read_only=False, destructive=False, idempotent=False),
    ),
    ToolSpec(
        Operation.DELETE_CONTACT,
        writes.delete_contact,
        "Delete contact",
        _hints(read_only=False, destructive=True, idempotent=True),
        every_provider=True,
        confirmation=Confirmation(needed=always, describe=writes.describe_deletion),
    ),
    ToolSpec(
        Operation.DETACH_IDENTITY,
        writes.detach_identity,
        "Detach identity",
        _hints(read_only=False, destructive=True, idempotent=True),
    ),
    ToolSpec(
        Operation.DETACH_CONTACT,
        writes.detach_contact,
        "Detach contact",
        _hints(read_only=False, destructive=True, idempotent=True),
    ),
    ToolSpec(
        Operation.GET_CONTACT,
        reads.get_contact,
        "Get contact",
        _hints(read_only=True, destructive=False, idempotent=True),
        every_provider=True,
    ),
    ToolSpec(
        Operation.FIND_CONTACTS,
        reads.find_contacts,
        "Find contacts",
        _hints(read_only=True, destructive=False, idempotent=True),
        every_provider=True,
    ),
    ToolSpec(
        Operation.FIND_DUPLICATES,
        reads.find_duplicates,
        "Find duplicates",
        _hints(read_only=True, destructive=False, idempotent=True),
    ),
    ToolSpec(
        Operation.MERGE_CONTACTS,
        writes.merge_contacts,
        "Merge contacts",
        _hints(read_only=False, destructive=True, idempotent=True),
        confirmation=Confirmation(needed=always, describe=writes.describe_merge),
    ),
)

TOOL_NAMES: tuple[str, ...] = tuple(spec.name for spec in TOOLS)


def result_model(fn: Callable[..., Any]) -> type[Result]:
    """The result a tool declares: `-> Annotated[CallToolResult, SomeResult]`."""
    declared = inspect.signature(fn).return_annotation
    args = get_args(declared)
    model = args[1] if get_origin(declared) is Annotated and len(args) == 2 else None
    if not (isinstance(model, type) and issubclass(model, Result)):
        raise TypeError(f"{fn.__name__} must return Annotated[CallToolResult, <a Result model>]")
    return model
