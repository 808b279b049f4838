"""The read tools: one async function each, whose signature is the tool's contract.

A read is served by every enabled provider that can serve it. Each function takes `provider`, the name of the
provider to read from; the server publishes it as a required argument (an enum of exactly those providers) when
the plan has several, and leaves it out of the schema when it has one (see `server.build`). An id is passed on
stripped: each provider checks its own id format (the local store a UUID, Blooio a `ct_` id, ...).
"""

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from contact_mcp.models import Contact, ContactPage, DuplicatePage, FindContactsInput, FindDuplicatesInput, Operation
from contact_mcp.normalize import normalize_email, normalize_phone
from contact_mcp.tools.arguments import opt
from contact_mcp.tools.render import success
from contact_mcp.tools.state import AppState, app_state, provider_for

PROVIDER_ARGUMENT = "provider"
"""The argument naming the provider to read from, when several serve a read."""


async def get_contact(
    contact_id: Annotated[str, Field(max_length=64, description="Contact id")],
    ctx: Context[AppState],
    provider: str | None = None,
) -> Annotated[CallToolResult, Contact]:
    """Get a contact with its methods and identities."""
    return success(await provider_for(ctx, Operation.GET_CONTACT, provider).get_contact(contact_id.strip()))


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
    min_score: Annotated[float, Field(ge=0.5, le=1, description="Lowest score")] = 0.8,
) -> Annotated[CallToolResult, DuplicatePage]:
    """Groups of contacts that are probably one person, with evidence and a score."""
    call = FindDuplicatesInput(limit=limit, cursor=opt(cursor), min_score=min_score)
    return success(await provider_for(ctx, Operation.FIND_DUPLICATES).find_duplicates(call))
