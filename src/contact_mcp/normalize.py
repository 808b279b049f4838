"""Normalisation of phones, emails and channel handles: the one place values become canonical.

Phones become E.164 (`phonenumbers`), emails the `email-validator` normal form lower-cased (TetherAI and Feather
both compare emails case-insensitively), handles are trimmed. Every failure is an `InvalidArgument` naming the
field and saying how to fix it. Imports nothing of ours but `errors`. The two libraries are imported on first
use: together they cost ~50 ms that a stdio host would otherwise pay on every launch before `tools/list`.

What a phone or an email normalises to (or why it is refused) depends on the text alone (and a phone's default
region), so the last `_REMEMBERED` answers are kept: an agent names the same few people again and again, and each
library call costs ~20 µs on an idle core and several times that on a busy one, a tenth of a write's time in the
server. Only strings and frozen refusals are kept, so no caller can change what the next one gets.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Literal

from contact_mcp.errors import InvalidArgument

ValueKind = Literal["phone", "email", "handle"]

# Feather's typed channels (its AddContactRequest doc plus the newer instagram/facebook) and what each holds.
CHANNEL_KINDS: dict[str, ValueKind] = {
    "email": "email",
    "phone": "phone",
    "sms": "phone",
    "voice": "phone",
    "whatsapp": "phone",
    "slack": "handle",
    "twitter": "handle",
    "instagram": "handle",
    "facebook": "handle",
}
# Handles these networks treat case-insensitively; a leading "@" is decoration.
_CASELESS_HANDLES = frozenset({"twitter", "instagram", "facebook"})


_REMEMBERED = 4096
"""Distinct phones (and, apart, emails) whose normal form is kept: a few hundred KB at most."""


@dataclass(frozen=True, slots=True)
class _Refused:
    """Why a text is not a phone (empty, no_country_code, unparsable, invalid) or an email (the validator's
    words); the caller words the error, with its own field."""

    reason: str


def normalize_phone(raw: str, *, field: str, default_region: str | None = None) -> str:
    """Return `raw` as E.164, or raise `InvalidArgument` saying how to write it."""
    text = raw.strip()
    answer = _e164(text, None if text.startswith("+") else default_region)
    if isinstance(answer, str):
        return answer
    if answer.reason == "empty":
        raise InvalidArgument("phone number is empty", field=field, hint="Give a number like +14155550123")
    if answer.reason == "no_country_code":
        raise InvalidArgument(
            f"phone number {text!r} has no country code",
            field=field,
            hint="Write it in international +<country code> format, e.g. +14155550123"
            + ("" if default_region else " (no CONTACT_MCP_DEFAULT_REGION is set)"),
        )
    if answer.reason == "unparsable":
        raise InvalidArgument(f"{text!r} is not a phone number", field=field, hint="Give a number like +14155550123")
    raise InvalidArgument(
        f"{text!r} is not a valid phone number",
        field=field,
        hint="Check the digits and the +<country code>, e.g. +14155550123",
    )


@functools.lru_cache(maxsize=_REMEMBERED)
def _e164(text: str, region: str | None) -> str | _Refused:
    import phonenumbers

    if not text:
        return _Refused("empty")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            return _Refused("no_country_code")
        return _Refused("unparsable")
    if not phonenumbers.is_valid_number(number):
        return _Refused("invalid")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str, *, field: str) -> str:
    """Return the normalised, lower-cased address, or raise `InvalidArgument` with the validator's reason."""
    text = raw.strip()
    answer = _email_form(text)
    if isinstance(answer, str):
        return answer
    raise InvalidArgument(
        f"{text!r} is not a valid email address: {answer.reason}",
        field=field,
        hint="Give an address like name@example.com",
    )


@functools.lru_cache(maxsize=_REMEMBERED)
def _email_form(text: str) -> str | _Refused:
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        return _Refused(str(exc))
    return result.normalized.lower()


def normalize_handle(channel: str, raw: str, *, field: str) -> str:
    text = raw.strip()
    if channel in _CASELESS_HANDLES:
        text = text.removeprefix("@").lower()
    if not text:
        raise InvalidArgument(f"{channel} handle is empty", field=field, hint=f"Give the {channel} handle or id")
    return text


def identifier_kind(raw: str) -> Literal["email", "phone"]:
    """A messaging identity is an email when it has an "@", else a phone (Blooio's two kinds)."""
    return "email" if "@" in raw else "phone"


def normalize_identifier(raw: str, *, field: str, default_region: str | None = None) -> tuple[ValueKind, str]:
    if identifier_kind(raw) == "email":
        return "email", normalize_email(raw, field=field)
    return "phone", normalize_phone(raw, field=field, default_region=default_region)


def method_type(channel: str) -> str | None:
    """A method's type: its channel when that is one of Feather's typed channels, else None (untyped)."""
    return channel if channel in CHANNEL_KINDS else None


def normalize_channel_value(
    channel: str, raw: str, *, field: str, default_region: str | None = None
) -> tuple[str | None, str]:
    """Return (type, normalised value) for a Feather channel; an unknown channel is untyped and only trimmed."""
    kind = CHANNEL_KINDS.get(channel)
    if kind is None:
        text = raw.strip()
        if not text:
            raise InvalidArgument("value is empty", field=field, hint="Give the address, number or handle")
        return method_type(channel), text
    if kind == "phone":
        return method_type(channel), normalize_phone(raw, field=field, default_region=default_region)
    if kind == "email":
        return method_type(channel), normalize_email(raw, field=field)
    return method_type(channel), normalize_handle(channel, raw, field=field)


def in_normal_form(kind: ValueKind | None, channel: str, value: str) -> bool:
    """Whether `value` already has the form the normalisers give a value of this kind on this channel, judged
    without the libraries: a phone is + and E.164's digits; an email is trimmed, lower-case, NFC, with a local
    part and a domain. A value the store holds keeps its form, and is matched by every value normalising to it, even
    where a later phonenumbers or email-validator would refuse it (their rules change from release to release): so
    an export restores whole, and a value not in this form (edited by hand) is normalised, or refused."""
    if kind == "phone":
        return _E164.fullmatch(value) is not None
    if kind == "email":
        local, at, domain = value.rpartition("@")
        return (
            bool(at and local and domain)
            and value == value.lower()
            and not any(c.isspace() for c in value)
            and unicodedata.is_normalized("NFC", value)
        )
    if kind == "handle":
        return bool(value.strip()) and normalize_handle(channel, value, field="value") == value
    return bool(value) and value == value.strip()


_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def normalize_channel(raw: str, *, field: str) -> str:
    channel = raw.strip().lower()
    if not channel:
        raise InvalidArgument("channel is empty", field=field, hint="Use email, phone, sms, whatsapp, slack, ...")
    return channel


def opt(value: str | None) -> str | None:
    """Optional strings: blank means not given."""
    if value is None:
        return None
    text = value.strip()
    return text or None


def normalize_uuid(raw: str, *, field: str) -> str:
    """Feather end users and local contacts are UUIDs; return the canonical lower-case hyphenated form."""
    try:
        return str(uuid.UUID(raw.strip()))
    except ValueError:
        raise InvalidArgument(
            f"{field} must be a UUID",
            field=field,
            hint="Use the id returned by create/upsert/find, e.g. from find_contacts",
        ) from None
