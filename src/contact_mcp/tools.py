"""The tools: one async function each, whose signature is the tool's contract, and the table that lists them.

Each tool is thin: Pydantic has validated the arguments against the signature; the tool normalises them
(`normalize`), hands a typed input to the provider serving its operation, and returns the canonical result.
Docstrings are sent to the model as descriptions, so they say only what a model needs to call the tool right.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlparse

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from contact_mcp.errors import InvalidArgument
from contact_mcp.models import (
    AttachContactInput,
    AttachedContact,
    AttachedIdentity,
    AttachIdentityInput,
    ChannelType,
    Company,
    Contact,
    ContactPage,
    CreateContactInput,
    CreatedContact,
    CustomValue,
    FindContactsInput,
    MethodType,
    Operation,
    Result,
    SetVerificationInput,
    UpsertContactInput,
    UpsertResult,
    VerificationResult,
)
from contact_mcp.normalize import (
    normalize_channel,
    normalize_channel_value,
    normalize_email,
    normalize_identifier,
    normalize_phone,
    normalize_uuid,
)
from contact_mcp.providers.base import Provider


@dataclass(frozen=True, slots=True)
class AppState:
    """What the lifespan opens once and every tool call reads."""

    providers: dict[Operation, Provider]
    default_region: str | None


def _state(ctx: Context[AppState]) -> AppState:
    return ctx.request_context.lifespan_context


def _provider(ctx: Context[AppState], operation: Operation) -> Provider:
    return _state(ctx).providers[operation]


def _ok(result: Result) -> CallToolResult:
    """Structured content for programs, one line of text for the model."""
    return CallToolResult(
        content=[TextContent(type="text", text=result.summary())], structured_content=result.structured()
    )


def _opt(value: str | None) -> str | None:
    """Optional strings: blank means not given."""
    if value is None:
        return None
    text = value.strip()
    return text or None


def _url(value: str | None, *, field: str) -> str | None:
    text = _opt(value)
    if text is None:
        return None
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidArgument(f"{field} must be an http(s) URL", field=field, hint="e.g. https://example.com/a.png")
    return text


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_instant(value: str, *, field: str) -> str:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidArgument(
            f"{field} is not an ISO 8601 date-time", field=field, hint="e.g. 2026-05-20T15:04:01Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _iso_utc(moment)


# ---------- the tools ----------


async def attach_contact(
    end_user_id: Annotated[str, Field(max_length=64, description="Contact UUID")],
    channel: Annotated[
        str,
        Field(
            max_length=40,
            description="email, phone, sms, voice, whatsapp, slack, twitter, instagram, facebook or other",
        ),
    ],
    value: Annotated[str, Field(max_length=500, description="Email, +E.164 phone or handle")],
    ctx: Context[AppState],
) -> Annotated[CallToolResult, AttachedContact]:
    """Attach a verified email, phone or handle to an end user."""
    state = _state(ctx)
    channel_name = normalize_channel(channel, field="channel")
    kind, normalized = normalize_channel_value(channel_name, value, field="value", default_region=state.default_region)
    call = AttachContactInput(
        end_user_id=normalize_uuid(end_user_id, field="end_user_id"),
        channel=channel_name,
        raw_value=value.strip(),
        type=kind,
        normalized_value=normalized,
    )
    return _ok(await _provider(ctx, Operation.ATTACH_CONTACT).attach_contact(call))


async def attach_identity(
    contact_id: Annotated[str, Field(max_length=64, description="Contact id")],
    identifier: Annotated[str, Field(max_length=320, description="+E.164 phone or email")],
    ctx: Context[AppState],
    channel_type: Annotated[ChannelType | None, Field(description="Channel")] = None,
    channel_id: Annotated[str | None, Field(max_length=100, description="Required for amb")] = None,
) -> Annotated[CallToolResult, AttachedIdentity]:
    """Attach a phone/email messaging identity to a contact."""
    state = _state(ctx)
    if channel_type == "amb" and not _opt(channel_id):
        raise InvalidArgument(
            "channel_id is required when channel_type is amb",
            field="channel_id",
            hint="Pass the AMB channel's id (ch_...) as channel_id, or use another channel_type",
        )
    _, normalized = normalize_identifier(identifier, field="identifier", default_region=state.default_region)
    call = AttachIdentityInput(
        contact_id=contact_id.strip(),
        identifier=normalized,
        channel_type=channel_type,
        channel_id=_opt(channel_id),
    )
    return _ok(await _provider(ctx, Operation.ATTACH_IDENTITY).attach_identity(call))


async def set_verification(
    contact_id: Annotated[str, Field(max_length=64, description="Contact id")],
    type: Annotated[MethodType, Field(description="Method kind")],
    value: Annotated[str, Field(max_length=500, description="The phone or email")],
    verified: Annotated[bool, Field(description="false clears")],
    ctx: Context[AppState],
    verification_source: Annotated[str | None, Field(max_length=100, description="e.g. admin-manual")] = None,
    verified_at: Annotated[str | None, Field(max_length=40, description="ISO 8601, default now")] = None,
) -> Annotated[CallToolResult, VerificationResult]:
    """Set or clear verification of a phone or email the contact has."""
    state = _state(ctx)
    if type == "phone":
        normalized = normalize_phone(value, field="value", default_region=state.default_region)
    else:
        normalized = normalize_email(value, field="value")
    if not verified and _opt(verified_at) is not None:
        raise InvalidArgument(
            "verified_at was given with verified=false", field="verified_at", hint="Omit verified_at when clearing"
        )
    when = None
    if verified:
        given = _opt(verified_at)
        when = _parse_instant(given, field="verified_at") if given else _iso_utc(datetime.now(UTC))
    call = SetVerificationInput(
        contact_id=contact_id.strip(),
        type=type,
        value=normalized,
        verified=verified,
        verified_at=when,
        verification_source=_opt(verification_source) if verified else None,
    )
    return _ok(await _provider(ctx, Operation.SET_VERIFICATION).set_verification(call))


async def upsert_contact(
    ctx: Context[AppState],
    email: Annotated[str | None, Field(max_length=500, description="Email")] = None,
    user_id: Annotated[str | None, Field(max_length=500, description="Matched first")] = None,
    name: Annotated[str | None, Field(max_length=500, description="Name")] = None,
    phone: Annotated[str | None, Field(max_length=500, description="+E.164 phone")] = None,
    locale: Annotated[str | None, Field(max_length=10, description="Locale, e.g. en")] = None,
    profile_picture: Annotated[str | None, Field(max_length=500, description="Avatar URL")] = None,
    companies: Annotated[list[Company] | None, Field(max_length=50, description="Companies")] = None,
    custom_fields: Annotated[
        dict[str, CustomValue] | None, Field(max_length=100, description="Values: string/number/bool/null")
    ] = None,
    roles: Annotated[list[Annotated[str, Field(max_length=500)]] | None, Field(description="Role ids")] = None,
    subscribed_to_changelog: Annotated[bool | None, Field(description="Changelog opt-in")] = None,
) -> Annotated[CallToolResult, UpsertResult]:
    """Create or update a contact by user_id or email (one is required)."""
    state = _state(ctx)
    email_value = _opt(email)
    user = _opt(user_id)
    if email_value is None and user is None:
        raise InvalidArgument(
            "email or user_id is required", field="email", hint="Pass email, user_id or both to identify the contact"
        )
    phone_value = _opt(phone)
    call = UpsertContactInput(
        email=normalize_email(email_value, field="email") if email_value else None,
        user_id=user,
        name=_opt(name),
        phone=normalize_phone(phone_value, field="phone", default_region=state.default_region) if phone_value else None,
        locale=_opt(locale),
        profile_picture=_url(profile_picture, field="profile_picture"),
        companies=tuple(companies) if companies is not None else None,
        custom_fields=custom_fields,
        roles=tuple(roles) if roles is not None else None,
        subscribed_to_changelog=subscribed_to_changelog,
    )
    return _ok(await _provider(ctx, Operation.UPSERT_CONTACT).upsert_contact(call))


async def create_contact(
    username: Annotated[str, Field(min_length=1, max_length=100, description="Unique")],
    phone_number: Annotated[str, Field(max_length=50, description="+E.164 phone")],
    ctx: Context[AppState],
    display_name: Annotated[str | None, Field(max_length=200, description="Default username")] = None,
    avatar_url: Annotated[str | None, Field(max_length=500, description="Image URL")] = None,
) -> Annotated[CallToolResult, CreatedContact]:
    """Create a contact from a username and phone number."""
    state = _state(ctx)
    name = username.strip()
    if not name:
        raise InvalidArgument("username is empty", field="username", hint="Pass the contact's Protocol username")
    call = CreateContactInput(
        username=name,
        phone_number=normalize_phone(phone_number, field="phone_number", default_region=state.default_region),
        display_name=_opt(display_name),
        avatar_url=_url(avatar_url, field="avatar_url"),
    )
    return _ok(await _provider(ctx, Operation.CREATE_CONTACT).create_contact(call))


async def get_contact(
    contact_id: Annotated[str, Field(max_length=64, description="Contact id")],
    ctx: Context[AppState],
) -> Annotated[CallToolResult, Contact]:
    """Get a contact with its methods and identities."""
    # Each provider checks its own id format (the local store a UUID, Blooio a ct_ id, ...).
    return _ok(await _provider(ctx, Operation.GET_CONTACT).get_contact(contact_id.strip()))


async def find_contacts(
    ctx: Context[AppState],
    email: Annotated[str | None, Field(max_length=500, description="Exact email")] = None,
    phone: Annotated[str | None, Field(max_length=50, description="Exact phone")] = None,
    username: Annotated[str | None, Field(max_length=100, description="Exact username")] = None,
    user_id: Annotated[str | None, Field(max_length=500, description="Exact user id")] = None,
    query: Annotated[str | None, Field(max_length=200, description="Name substring")] = None,
    limit: Annotated[int, Field(ge=1, le=50, description="Page size")] = 20,
    cursor: Annotated[str | None, Field(max_length=200, description="From next_cursor")] = None,
) -> Annotated[CallToolResult, ContactPage]:
    """Find contacts matching all given filters."""
    state = _state(ctx)
    email_value = _opt(email)
    phone_value = _opt(phone)
    call = FindContactsInput(
        email=normalize_email(email_value, field="email") if email_value else None,
        phone=normalize_phone(phone_value, field="phone", default_region=state.default_region) if phone_value else None,
        username=_opt(username),
        user_id=_opt(user_id),
        query=_opt(query),
        limit=limit,
        cursor=_opt(cursor),
    )
    return _ok(await _provider(ctx, Operation.FIND_CONTACTS).find_contacts(call))


# ---------- the table ----------


@dataclass(frozen=True, slots=True)
class ToolSpec:
    operation: Operation
    fn: Any
    title: str
    annotations: ToolAnnotations


def _hints(*, read_only: bool, destructive: bool, idempotent: bool, open_world: bool) -> ToolAnnotations:
    if read_only:
        # The spec gives destructive/idempotent meaning only when readOnlyHint is false; sending them costs tokens.
        return ToolAnnotations(read_only_hint=True, open_world_hint=open_world)
    return ToolAnnotations(
        read_only_hint=read_only, destructive_hint=destructive, idempotent_hint=idempotent, open_world_hint=open_world
    )


# open_world is decided per provider at build time (the local store is a closed world), see `annotations_for`.
TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        Operation.ATTACH_CONTACT,
        attach_contact,
        "Attach contact",
        _hints(read_only=False, destructive=False, idempotent=True, open_world=True),
    ),
    ToolSpec(
        Operation.ATTACH_IDENTITY,
        attach_identity,
        "Attach identity",
        _hints(read_only=False, destructive=False, idempotent=True, open_world=True),
    ),
    ToolSpec(
        Operation.SET_VERIFICATION,
        set_verification,
        "Set verification",
        _hints(read_only=False, destructive=True, idempotent=True, open_world=True),
    ),
    ToolSpec(
        Operation.UPSERT_CONTACT,
        upsert_contact,
        "Upsert contact",
        _hints(read_only=False, destructive=True, idempotent=True, open_world=True),
    ),
    ToolSpec(
        Operation.CREATE_CONTACT,
        create_contact,
        "Create contact",
        _hints(read_only=False, destructive=False, idempotent=False, open_world=True),
    ),
    ToolSpec(
        Operation.GET_CONTACT,
        get_contact,
        "Get contact",
        _hints(read_only=True, destructive=False, idempotent=True, open_world=False),
    ),
    ToolSpec(
        Operation.FIND_CONTACTS,
        find_contacts,
        "Find contacts",
        _hints(read_only=True, destructive=False, idempotent=True, open_world=False),
    ),
)


def annotations_for(spec: ToolSpec, provider: str) -> ToolAnnotations:
    """The local store touches nothing outside the process; every provider API is an open world."""
    return spec.annotations.model_copy(update={"open_world_hint": provider != "local"})
