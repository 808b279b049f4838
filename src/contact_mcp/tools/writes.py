"""The write tools: one async function each, whose signature is the tool's contract.

Each is thin: Pydantic has validated the arguments against the signature and the dispatch step has applied the
rules every call shares (`null` is "not given", no control characters); the tool normalises the values
(`normalize`), hands a typed input to the provider the plan chose for its operation, and renders the canonical
result. Docstrings are sent to the model as descriptions, so they say only what a model needs to call the tool
right.
"""

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from contact_mcp.errors import InvalidArgument
from contact_mcp.limits import MAX_COMPANIES, MAX_CUSTOM_FIELD_KEYS, MAX_ROLE_LENGTH, MAX_ROLES, MAX_TEXT_LENGTHS
from contact_mcp.models import (
    AttachContactInput,
    AttachedContact,
    AttachedIdentity,
    AttachIdentityInput,
    ChannelType,
    Company,
    Contact,
    CreateContactInput,
    CreatedContact,
    CustomValue,
    DeleteContactInput,
    DeletedContact,
    DetachContactInput,
    DetachedContact,
    DetachedIdentity,
    DetachIdentityInput,
    MergeContactsInput,
    MergeResult,
    MethodType,
    Operation,
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
    opt,
)
from contact_mcp.store import rules
from contact_mcp.tools.arguments import DryRun, url
from contact_mcp.tools.confirm import (
    Arguments,
    ConfirmArgument,
    contact_label,
    held_by,
    holdings,
    read_contact,
    target,
)
from contact_mcp.tools.render import success
from contact_mcp.tools.state import AppState, app_state, provider_for


async def attach_contact(
    end_user_id: Annotated[str, Field(max_length=64, description="Contact UUID")],
    channel: Annotated[
        str,
        Field(
            max_length=MAX_TEXT_LENGTHS["channel"],
            description="email, phone, sms, voice, whatsapp, slack, twitter, instagram, facebook or other",
        ),
    ],
    value: Annotated[str, Field(max_length=MAX_TEXT_LENGTHS["value"], description="Email, +E.164 phone or handle")],
    ctx: Context[AppState],
    dry_run: DryRun = False,
) -> Annotated[CallToolResult, AttachedContact]:
    """Attach a verified email, phone or handle to an end user."""
    state = app_state(ctx)
    channel_name = normalize_channel(channel, field="channel")
    kind, normalized = normalize_channel_value(channel_name, value, field="value", default_region=state.default_region)
    call = AttachContactInput(
        end_user_id=normalize_uuid(end_user_id, field="end_user_id"),
        channel=channel_name,
        raw_value=value.strip(),
        type=kind,
        normalized_value=normalized,
        dry_run=dry_run,
    )
    return success(await provider_for(ctx, Operation.ATTACH_CONTACT).attach_contact(call))


async def attach_identity(
    contact_id: Annotated[str, Field(max_length=64, description="Contact id")],
    identifier: Annotated[str, Field(max_length=MAX_TEXT_LENGTHS["identifier"], description="+E.164 phone or email")],
    ctx: Context[AppState],
    channel_type: Annotated[ChannelType | None, Field(description="Channel")] = None,
    channel_id: Annotated[
        str | None, Field(max_length=MAX_TEXT_LENGTHS["channel_id"], description="Required for amb")
    ] = None,
    dry_run: DryRun = False,
) -> Annotated[CallToolResult, AttachedIdentity]:
    """Attach a phone/email messaging identity to a contact."""
    state = app_state(ctx)
    if channel_type == "amb" and not opt(channel_id):
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
        channel_id=opt(channel_id),
        dry_run=dry_run,
    )
    return success(await provider_for(ctx, Operation.ATTACH_IDENTITY).attach_identity(call))


async def set_verification(
    contact_id: Annotated[str, Field(max_length=64, description="Contact id")],
    type: Annotated[MethodType, Field(description="Method kind")],
    value: Annotated[str, Field(max_length=MAX_TEXT_LENGTHS["value"], description="The phone or email")],
    verified: Annotated[bool, Field(description="false clears")],
    ctx: Context[AppState],
    verification_source: Annotated[
        str | None, Field(max_length=MAX_TEXT_LENGTHS["verification_source"], description="e.g. admin-manual")
    ] = None,
    verified_at: Annotated[str | None, Field(max_length=40, description="ISO 8601, default now")] = None,
    dry_run: DryRun = False,
    confirm: ConfirmArgument = False,
) -> Annotated[CallToolResult, VerificationResult]:
    """Set or clear verification of a phone or email the contact has."""
    call = _verification(
        app_state(ctx),
        contact_id=contact_id,
        type=type,
        value=value,
        verified=verified,
        verification_source=verification_source,
        verified_at=verified_at,
        dry_run=dry_run,
    )
    return success(await provider_for(ctx, Operation.SET_VERIFICATION).set_verification(call))


def _verification(
    state: AppState,
    *,
    contact_id: str,
    type: MethodType,
    value: str,
    verified: bool,
    verification_source: str | None,
    verified_at: str | None,
    dry_run: bool,
) -> SetVerificationInput:
    if type == "phone":
        normalized = normalize_phone(value, field="value", default_region=state.default_region)
    else:
        normalized = normalize_email(value, field="value")
    if not verified and opt(verified_at) is not None:
        raise InvalidArgument(
            "verified_at was given with verified=false", field="verified_at", hint="Omit verified_at when clearing"
        )
    when = None
    if verified:
        given = opt(verified_at)
        when = rules.parse_instant(given, field="verified_at") if given else rules.now()
    return SetVerificationInput(
        contact_id=contact_id.strip(),
        type=type,
        value=normalized,
        verified=verified,
        verified_at=when,
        verification_source=opt(verification_source) if verified else None,
        dry_run=dry_run,
    )


def clears_verification(arguments: Arguments) -> bool:
    """set_verification needs confirmation when it clears: the verification's date and source are lost."""
    return arguments["verified"] is False


async def describe_clearing(ctx: Context[AppState], arguments: Arguments) -> str | None:
    """What clearing will erase, checked as the tool checks its arguments; None when the method is already
    unverified (clearing it again changes nothing)."""
    call = _verification(
        app_state(ctx),
        contact_id=arguments["contact_id"],
        type=arguments["type"],
        value=arguments["value"],
        verified=False,
        verification_source=arguments["verification_source"],
        verified_at=arguments["verified_at"],
        dry_run=False,
    )
    provider = target(ctx, Operation.SET_VERIFICATION, arguments)
    contact = await read_contact(provider, call.contact_id)
    if contact is not None:
        held = [m for m in contact.methods if m.value == call.value and rules.kind(m.channel, m.type) == call.type]
        if held and all(method.verified is False for method in held):
            return None
    return (
        f"Clear the verification of {call.type} {call.value} on {contact_label(contact, call.contact_id)}"
        f"{held_by(provider)}: its verification date and source are erased. This cannot be undone."
    )


async def upsert_contact(
    ctx: Context[AppState],
    email: Annotated[str | None, Field(max_length=MAX_TEXT_LENGTHS["email"], description="Email")] = None,
    user_id: Annotated[str | None, Field(max_length=MAX_TEXT_LENGTHS["user_id"], description="Matched first")] = None,
    name: Annotated[str | None, Field(max_length=MAX_TEXT_LENGTHS["name"], description="Name")] = None,
    phone: Annotated[str | None, Field(max_length=MAX_TEXT_LENGTHS["phone"], description="+E.164 phone")] = None,
    locale: Annotated[str | None, Field(max_length=MAX_TEXT_LENGTHS["locale"], description="Locale, e.g. en")] = None,
    profile_picture: Annotated[
        str | None, Field(max_length=MAX_TEXT_LENGTHS["profile_picture"], description="Avatar URL")
    ] = None,
    companies: Annotated[list[Company] | None, Field(max_length=MAX_COMPANIES, description="Companies")] = None,
    custom_fields: Annotated[
        dict[str, CustomValue] | None,
        Field(max_length=MAX_CUSTOM_FIELD_KEYS, description="Values: string/number/bool/null"),
    ] = None,
    roles: Annotated[
        list[Annotated[str, Field(max_length=MAX_ROLE_LENGTH)]] | None,
        Field(max_length=MAX_ROLES, description="Role ids"),
    ] = None,
    subscribed_to_changelog: Annotated[bool | None, Field(description="Changelog opt-in")] = None,
    dry_run: DryRun = False,
) -> Annotated[CallToolResult, UpsertResult]:
    """Create or update a contact by user_id or email (one is required)."""
    state = app_state(ctx)
    email_value = opt(email)
    user = opt(user_id)
    if email_value is None and user is None:
        raise InvalidArgument(
            "email or user_id is required", field="email", hint="Pass email, user_id or both to identify the contact"
        )
    if custom_fields:
        rules.check_custom_values(custom_fields)
    phone_value = opt(phone)
    call = UpsertContactInput(
        email=normalize_email(email_value, field="email") if email_value else None,
        user_id=user,
        name=opt(name),
        phone=normalize_phone(phone_value, field="phone", default_region=state.default_region) if phone_value else None,
        locale=opt(locale),
        profile_picture=url(profile_picture, field="profile_picture"),
        companies=tuple(companies) if companies is not None else None,
        custom_fields=custom_fields,
        roles=tuple(roles) if roles is not None else None,
        subscribed_to_changelog=subscribed_to_changelog,
        dry_run=dry_run,
    )
    return success(await provider_for(ctx, Operation.UPSERT_CONTACT).upsert_contact(call))


async def create_contact(
    username: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_LENGTHS["username"], description="Unique")],
    phone_number: Annotated[str, Field(max_length=50, description="+E.164 phone")],
    ctx: Context[AppState],
    display_name: Annotated[
        str | None, Field(max_length=MAX_TEXT_LENGTHS["display_name"], description="Default username")
    ] = None,
    avatar_url: Annotated[
        str | None, Field(max_length=MAX_TEXT_LENGTHS["profile_picture"], description="Image URL")
    ] = None,
    dry_run: DryRun = False,
) -> Annotated[CallToolResult, CreatedContact]:
    """Create a contact from a username and phone number."""
    state = app_state(ctx)
    name = username.strip()
    if not name:
        raise InvalidArgument("username is empty", field="username", hint="Pass the contact's Protocol username")
    call = CreateContactInput(
        username=name,
        phone_number=normalize_phone(phone_number, field="phone_number", default_region=state.default_region),
        display_name=opt(display_name),
        avatar_url=url(avatar_url, field="avatar_url"),
        dry_run=dry_run,
    )
    return success(await provider_for(ctx, Operation.CREATE_CONTACT).create_contact(call))


async def merge_contacts(
    survivor_id: Annotated[str, Field(max_length=64, description="Contact kept")],
    duplicate_ids: Annotated[
        list[Annotated[str, Field(max_length=64)]], Field(min_length=1, max_length=20, description="Merged into it")
    ],
    ctx: Context[AppState],
    dry_run: DryRun = False,
    confirm: ConfirmArgument = False,
) -> Annotated[CallToolResult, MergeResult]:
    """Merge duplicates into the survivor: methods and identities move, empty fields fill, conflicts keep the
    survivor's value."""
    # `confirm` is the confirmation step's argument (merging always asks), not the tool's: the tool never reads it.
    call = MergeContactsInput(
        survivor_id=survivor_id.strip(),
        duplicate_ids=tuple(duplicate.strip() for duplicate in duplicate_ids),
        dry_run=dry_run,
    )
    return success(await provider_for(ctx, Operation.MERGE_CONTACTS).merge_contacts(call))


async def describe_merge(ctx: Context[AppState], arguments: Arguments) -> str | None:
    """Who is merged into whom and what moves. None when the merge would change nothing (every duplicate was merged
    into the survivor before, or is the survivor) or is refused whatever the user says (a party already merged
    elsewhere): the call then goes on to its own result or error, asking no one in vain."""
    provider = target(ctx, Operation.MERGE_CONTACTS, arguments)
    survivor_id = str(arguments["survivor_id"]).strip()
    survivor = await read_contact(provider, survivor_id, field="survivor_id")
    if survivor is not None and survivor.merged_into is not None:
        return None
    into = survivor.id if survivor is not None else survivor_id
    pending: list[tuple[str, Contact | None]] = []
    for duplicate_id in dict.fromkeys(str(duplicate).strip() for duplicate in arguments["duplicate_ids"]):
        duplicate = await read_contact(provider, duplicate_id, field="duplicate_ids")
        if duplicate is None:
            pending.append((duplicate_id, duplicate))
        elif duplicate.merged_into not in (None, into):
            return None
        elif duplicate.id != into and duplicate.merged_into is None:
            pending.append((duplicate_id, duplicate))
    if not pending:
        return None
    known = [contact for _, contact in pending if contact is not None]
    taken = f", which takes over {holdings(*known)}" if known else ""
    names = ", ".join(contact_label(contact, duplicate_id) for duplicate_id, contact in pending)
    then = "it then only points" if len(pending) == 1 else "they then only point"
    return (
        f"Merge {names} into {contact_label(survivor, survivor_id)}{held_by(provider)}{taken}; empty fields are "
        f"filled from the merged, and {then} to the survivor (merged_into). This cannot be undone."
    )


# ---------- erasure: undoing attaches, deleting contacts ----------


async def delete_contact(
    contact_id: Annotated[str, Field(max_length=64, description="Contact id")],
    ctx: Context[AppState],
    dry_run: DryRun = False,
    confirm: ConfirmArgument = False,
    provider: str | None = None,
) -> Annotated[CallToolResult, DeletedContact]:
    """Delete a contact, its methods and identities."""
    # `confirm` is the confirmation step's argument (deleting always asks), not the tool's: the tool never reads it.
    call = DeleteContactInput(contact_id=contact_id.strip(), dry_run=dry_run)
    return success(await provider_for(ctx, Operation.DELETE_CONTACT, provider).delete_contact(call))


async def describe_deletion(ctx: Context[AppState], arguments: Arguments) -> str:
    """What deleting the contact erases, read from the provider it is deleted from; an unknown or malformed id
    fails here, before anyone is asked."""
    contact_id = str(arguments["contact_id"]).strip()
    provider = target(ctx, Operation.DELETE_CONTACT, arguments)
    contact = await read_contact(provider, contact_id)
    held = f": {holdings(contact)}" if contact is not None else ""
    return f"Delete {contact_label(contact, contact_id)}{held_by(provider)}{held}. This cannot be undone."


async def detach_identity(
    contact_id: Annotated[str, Field(max_length=64, description="Contact id")],
    identifier: Annotated[str, Field(max_length=MAX_TEXT_LENGTHS["identifier"], description="+E.164 phone or email")],
    ctx: Context[AppState],
    channel_type: Annotated[str | None, Field(max_length=40, description="Default any")] = None,
    channel_id: Annotated[
        str | None, Field(max_length=MAX_TEXT_LENGTHS["channel_id"], description="Default any")
    ] = None,
    dry_run: DryRun = False,
) -> Annotated[CallToolResult, DetachedIdentity]:
    """Detach an identity from a contact."""
    state = app_state(ctx)
    _, normalized = normalize_identifier(identifier, field="identifier", default_region=state.default_region)
    call = DetachIdentityInput(
        contact_id=contact_id.strip(),
        identifier=normalized,
        channel_type=opt(channel_type),
        channel_id=opt(channel_id),
        dry_run=dry_run,
    )
    return success(await provider_for(ctx, Operation.DETACH_IDENTITY).detach_identity(call))


async def detach_contact(
    contact_id: Annotated[str, Field(max_length=64, description="Contact id")],
    channel: Annotated[str, Field(max_length=MAX_TEXT_LENGTHS["channel"], description="As attached")],
    value: Annotated[str, Field(max_length=MAX_TEXT_LENGTHS["value"], description="Email, +E.164 phone or handle")],
    ctx: Context[AppState],
    dry_run: DryRun = False,
) -> Annotated[CallToolResult, DetachedContact]:
    """Remove an email, phone or handle from a contact."""
    state = app_state(ctx)
    channel_name = normalize_channel(channel, field="channel")
    _, normalized = normalize_channel_value(channel_name, value, field="value", default_region=state.default_region)
    call = DetachContactInput(
        contact_id=contact_id.strip(), channel=channel_name, normalized_value=normalized, dry_run=dry_run
    )
    return success(await provider_for(ctx, Operation.DETACH_CONTACT).detach_contact(call))
