"""Confirmation of what cannot be undone: which calls need it, how the user is asked, and what a call needs when the
user cannot be asked.

A row of the tool table may carry a `Confirmation`: a rule on the call's arguments (`needed`) and `describe`, which
says in words what the call will do to whom (reading the contact to say it, or answering None when the call would
change nothing that cannot be redone). `confirming(fn, confirmation)` is how the server build puts it on a tool: a
hidden parameter filled by the SDK's resolver (`Resolve`), which runs before the tool body and is never part of
the input schema. The resolver decides:

- no confirmation needed (the rule says so, it is a dry run, or `describe` finds nothing irreversible): the body
  runs;
- the client can be asked (it declared form elicitation and can answer: at protocol 2026-07-28 the question rides
  the result and comes back with the client's retry, which may reach another replica; a 2025 connection needs a
  back-channel): the user is asked, always, whatever `confirm` says. Declined, cancelled or not ticked is a
  `declined` error and nothing is changed;
- the client cannot be asked: `confirm: true` lets the body run; without it the call is a `confirmation_required`
  error that lists what would happen, and nothing is changed.

`CONTACT_MCP_CONFIRM=never` (unattended pipelines) leaves the tools unwrapped: nothing is asked or needed.
"""

import functools
import inspect
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, get_origin

from mcp.server.elicitation import AcceptedElicitation, CancelledElicitation
from mcp.server.mcpserver import Context, Elicit, ElicitationResult, Resolve
from mcp.types import CallToolResult
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

from contact_mcp.errors import ConfirmationRequired, Declined, InvalidArgument, NotFound
from contact_mcp.models import Contact, Operation
from contact_mcp.providers.base import Provider
from contact_mcp.tools.reads import PROVIDER_ARGUMENT
from contact_mcp.tools.state import AppState, provider_for

CONFIRM_ARGUMENT = "confirm"
"""What a model sends, once the user has agreed, where the client cannot ask them."""
DRY_RUN_ARGUMENT = "dry_run"
"""A dry run changes nothing, so it is never asked about."""
ConfirmArgument = Annotated[bool, Field(description="OK")]
"""The `confirm` parameter, as every tool that takes one declares it (`confirm: ConfirmArgument = False`): described
in two characters, because every model pays for it on every turn (12 tokens; like `dry_run`, its default false is
not published); the `confirmation_required` error says when to send it."""
ANSWER_PARAMETER = "confirmation"
"""The hidden parameter the resolver fills; not an argument a client can send (it is not in the schema)."""
# The first revision where a question rides the tool result (InputRequiredResult) instead of a server request.
_QUESTION_IN_RESULT = "2026-07-28"

Arguments = Mapping[str, Any]
Describe = Callable[[Context[AppState], Arguments], Awaitable[str | None]]
ToolFunction = Callable[..., Awaitable[CallToolResult]]


@dataclass(frozen=True, slots=True)
class Confirmation:
    """When a tool's call needs the user's confirmation, and what to tell them."""

    needed: Callable[[Arguments], bool]
    """The rule on the call's validated arguments (never asked for a dry run)."""
    describe: Describe
    """What will happen to whom, in a sentence the user can answer; None when the call, as things stand, would
    change nothing that cannot be redone (then nobody is asked). May raise a `ContactError` (unknown contact)."""


class Answer(BaseModel):
    """The form the user answers: one box to tick."""

    confirm: bool = Field(title="Confirm", description="Yes, do it")


_GO = Answer(confirm=True)


def can_ask(ctx: Context[AppState]) -> bool:
    """Whether the user can be asked on this call: the client declared form elicitation, and the answer can come
    back (in the retry at 2026-07-28; over the connection's back-channel before, which stateless HTTP lacks)."""
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    # A bare `elicitation: {}` (from before modes existed) means form; url-only does not.
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    version = ctx.protocol_version
    if version is not None and is_version_at_least(version, _QUESTION_IN_RESULT):
        return True
    return ctx.session.can_send_request


def _resolver(confirmation: Confirmation, names: list[str]) -> Callable[..., Awaitable[Answer | Elicit[Answer]]]:
    """The resolver for one tool: it takes the tool's arguments by name (the SDK hands them over validated)."""

    async def confirm_call(ctx: Context[AppState], **arguments: Any) -> Answer | Elicit[Answer]:
        if arguments.get(DRY_RUN_ARGUMENT) is True or not confirmation.needed(arguments):
            return _GO
        asks = can_ask(ctx)
        if not asks and arguments.get(CONFIRM_ARGUMENT) is True:
            return _GO  # confirmed, and nobody to show the description to: not read for nothing
        what = await confirmation.describe(ctx, arguments)
        if what is None:
            return _GO
        if asks:
            return Elicit(f"{what} Confirm to go ahead.", Answer)
        raise ConfirmationRequired(
            f"not done: {what} This needs the user's confirmation and this client cannot ask them.",
            field=CONFIRM_ARGUMENT,
            hint="Tell the user what will happen; only if they agree, call again with confirm: true",
        )

    context = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context[AppState])
    by_name = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in names]
    confirm_call.__signature__ = inspect.Signature([context, *by_name])  # pyright: ignore[reportFunctionMemberAccess]
    return confirm_call


def _is_context(annotation: object) -> bool:
    origin = get_origin(annotation) or annotation
    return isinstance(origin, type) and issubclass(origin, Context)


def confirming(fn: ToolFunction, confirmation: Confirmation) -> ToolFunction:
    """`fn` asking for confirmation as its `Confirmation` says, before its body runs. A new function per server."""
    signature = inspect.signature(fn)
    if CONFIRM_ARGUMENT not in signature.parameters:
        raise TypeError(f"{fn.__name__} has a confirmation rule but no {CONFIRM_ARGUMENT} parameter")
    names = [name for name, param in signature.parameters.items() if not _is_context(param.annotation)]
    hidden = Annotated[ElicitationResult[Answer], Resolve(_resolver(confirmation, names))]

    @functools.wraps(fn)
    async def tool(**arguments: Any) -> CallToolResult:
        _check(arguments.pop(ANSWER_PARAMETER), fn.__name__)
        return await fn(**arguments)

    answer = inspect.Parameter(ANSWER_PARAMETER, inspect.Parameter.KEYWORD_ONLY, annotation=hidden)
    tool.__signature__ = signature.replace(  # pyright: ignore[reportAttributeAccessIssue]
        parameters=[param.replace(kind=inspect.Parameter.KEYWORD_ONLY) for param in signature.parameters.values()]
        + [answer]
    )
    # The SDK finds `Resolve` through the type hints, which `wraps` copied from `fn`.
    tool.__annotations__ = {**fn.__annotations__, ANSWER_PARAMETER: hidden}
    return tool


def always(arguments: Arguments) -> bool:
    """The rule of a tool whose every call cannot be undone (delete, merge)."""
    return True


def _check(outcome: ElicitationResult[Answer], tool: str) -> None:
    """Raise `Declined` unless the resolver or the user said go ahead."""
    if isinstance(outcome, AcceptedElicitation) and outcome.data.confirm:
        return
    if isinstance(outcome, AcceptedElicitation):
        said = "did not confirm"
    elif isinstance(outcome, CancelledElicitation):
        said = "cancelled"
    else:
        said = "declined"
    raise Declined(
        f"the user {said} {tool}: nothing was changed",
        hint="Do not call it again unless the user asks for it",
    )


# ---------- describing a call: what happens to whom ----------


def target(ctx: Context[AppState], operation: Operation, arguments: Arguments) -> Provider:
    """The provider the call goes to: the one its `provider` argument names, or the operation's only one."""
    return provider_for(ctx, operation, arguments.get(PROVIDER_ARGUMENT))


async def read_contact(provider: Provider, contact_id: str, *, field: str = "contact_id") -> Contact | None:
    """The contact as the provider holds it; None when the provider has no read. An unknown or malformed id raises
    its error naming `field` (the argument that held the id), before anyone is asked."""
    if Operation.GET_CONTACT not in provider.operations:
        return None
    try:
        return await provider.get_contact(contact_id)
    except (NotFound, InvalidArgument) as exc:
        raise exc.evolve(field=field) from None


def held_by(provider: Provider) -> str:
    """` in Featurebase` for a provider API; nothing for the local store, the default place."""
    return "" if provider.name == "local" else f" in {provider.display_name}"


def contact_label(contact: Contact | None, contact_id: str) -> str:
    """`contact Ada Lovelace (id …)` (a name, else a username, user id, email or phone), or `contact …` when the
    provider cannot tell more."""
    if contact is None:
        return f"contact {contact_id}"
    reachable = next((method.value for method in contact.methods if method.type in ("email", "phone")), None)
    who = contact.name or contact.display_name or contact.username or contact.user_id or reachable
    return f"contact {who} (id {contact.id})" if who else f"contact {contact.id}"


def holdings(*contacts: Contact) -> str:
    """What erasing or merging contacts carries with them: `2 emails, 1 phone, 1 identity`."""
    kinds = Counter(method.type or method.channel for contact in contacts for method in contact.methods)
    parts = [f"{count} {kind}{'' if count == 1 else 's'}" for kind, count in sorted(kinds.items())]
    identities = sum(len(contact.identities) for contact in contacts)
    if identities:
        parts.append(f"{identities} {'identity' if identities == 1 else 'identities'}")
    return ", ".join(parts) or "no emails, phones or identities"
