"""The read tools: one async function each, whose signature is the tool's contract.

A read is served by every enabled provider that can serve it. Each function takes `provider`, the name of the
provider to read from; the server publishes it as a required argument (an enum of exactly those providers) when
the plan has several, and leaves it out of the schema when it has one (see `server.build`). An id is passed on
stripped: each provider checks its own id format (the local store a UUID, Blooio a `ct_` id, ...).
"""

from typing import Annotated, Final

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from contact_mcp.errors import InvalidArgument
from contact_mcp.models import (
    DEFAULT_MIN_SCORE,
    Contact,
    ContactPage,
    DuplicatePage,
    FindContactsInput,
    FindDuplicatesInput,
    Operation,
)
from contact_mcp.normalize import normalize_email, normalize_phone, opt
from contact_mcp.store import rules
from contact_mcp.store.history import HistoryQuery
from contact_mcp.tools.render import success
from contact_mcp.tools.state import AppState, app_state, provider_for

PROVIDER_ARGUMENT = "provider"
"""The argument naming the provider to read from, when several serve a read."""
HISTORY_PAGE: Final = 10
"""History entries get_contact returns at most per call."""
HISTORY_BYTES: Final = 30_000
"""About how much of a result one page of history may take (a result stays under `limits.MAX_RESULT_BYTES`)."""


async def get_contact(
    contact_id: Annotated[str, Field(max_length=64, description="Contact id")],
    ctx: Context[AppState],
    provider: str | None = None,
    include_history: Annotated[bool, Field(description="Add write history")] = False,
    history_cursor: Annotated[str | None, Field(max_length=200, description="Next history page")] = None,
) -> Annotated[CallToolResult, Contact]:
    """Get a contact with its methods and identities."""
    contact = await provider_for(ctx, Operation.GET_CONTACT, provider).get_contact(contact_id.strip())
    cursor = opt(history_cursor)
    if include_history or cursor is not None:
        contact = await with_history(app_state(ctx), contact, cursor)
    return success(contact)


async def with_history(state: AppState, contact: Contact, cursor: str | None) -> Contact:
    """The contact with one page of its history, newest first: at most `HISTORY_PAGE` entries and about
    `HISTORY_BYTES` of them (at least one), `history_cursor` continuing where the page stops."""
    if state.history is None:
        raise InvalidArgument(
            "this server keeps no history of writes (it serves no tool that writes and no CONTACT_MCP_DB)",
            field="include_history",
            hint="Call again without include_history",
        )
    if cursor is not None:
        try:
            rules.decode_cursor(cursor)
        except InvalidArgument as exc:
            hint = "Pass the history_cursor a previous get_contact returned"
            raise exc.evolve(field="history_cursor", hint=hint) from None
    query = HistoryQuery(
        contact_id=contact.id, provider=contact.provider, cursor=cursor, limit=HISTORY_PAGE, newest_first=True
    )
    page = await state.history.page(query)
    kept, size = 0, 0
    for entry in page.entries:
        size += len(entry.model_dump_json(exclude_none=True))
        if kept and size > HISTORY_BYTES:
            break
        kept += 1
    next_cursor = page.next_cursor if kept == len(page.entries) else page.cursors[kept - 1]
    return contact.model_copy(update={"history": page.entries[:kept], "history_cursor": next_cursor})


async def find_contacts(
    ctx: Context[AppState],
    email: Annotated[str | None, Field(max_length=500, description="Exact email")] = None,
    phone: Annotated[str | None, Field(max_length=50, description="Exact phone")] = None,
    username: Annotated[str | None, Field(max_length=100, description="Exact username")] = None,
    user_id: Annotated[str | None, Field(max_length=500, description="Exact user id")] = None,
    query: Annotated[str | None, Field(max_length=200, description="Name substring")] = None,
    limit: Annotated[int, Field(ge=1, le=50, description="Page size")] = 20,
    cursor: Annotated[str | None, Field(max_length=200, description="From next_cursor")] = None,
    provider: str | None = None,
) -> Annotated[CallToolResult, ContactPage]:
    """Find contacts matching all given filters."""
    state = app_state(ctx)
    email_value = opt(email)
    phone_value = opt(phone)
    call = FindContactsInput(
        email=normalize_email(email_value, field="email") if email_value else None,
        phone=normalize_phone(phone_value, field="phone", default_region=state.default_region) if phone_value else None,
        username=opt(username),
        user_id=opt(user_id),
        query=opt(query),
        limit=limit,
        cursor=opt(cursor),
    )
    return success(await provider_for(ctx, Operation.FIND_CONTACTS, provider).find_contacts(call))


async def find_duplicates(
    ctx: Context[AppState],
    limit: Annotated[int, Field(ge=1, le=50, description="Groups per page")] = 20,
    cursor: Annotated[str | None, Field(max_length=200, description="From next_cursor")] = None,
    min_score: Annotated[float, Field(ge=0.5, le=1, description="Lowest score")] = DEFAULT_MIN_SCORE,
) -> Annotated[CallToolResult, DuplicatePage]:
    """Groups of contacts that are probably one person, with evidence and a score."""
    call = FindDuplicatesInput(limit=limit, cursor=opt(cursor), min_score=min_score)
    return success(await provider_for(ctx, Operation.FIND_DUPLICATES).find_duplicates(call))
