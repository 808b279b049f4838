"""Masking the values a record of changes keeps: enough to recognise a value, never enough to contact anyone.

- **Emails** keep the first character of the local part and the whole domain: `ada.lovelace@example.com` →
  `a***@example.com` (the domain tells an operator which organisation, the first letter tells two addresses apart).
- **Phones** keep `+`, the country calling code and the last four digits, every other digit a `*`:
  `+14155550132` → `+1******0132` (the country says where, the last four are what people quote on the phone).
- **Custom-field values** are free-form (a note, an account number, a birthday), so each becomes `***`; `null`
  stays `null`, so "set" and "cleared" remain visible.
- Any other string in a field that holds contact values (`value`, `identifier`, `raw_value`, ...) that is neither
  an email nor a phone (a handle, a number written as the user typed it) becomes `***`.

A value is masked by its shape wherever it appears (an email inside a list of methods is still an email), and by
its field's name. Imports nothing of ours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, cast

MASK: Final = "***"
CUSTOM_FIELDS: Final = "custom_fields"
# Fields whose string values are contact values whatever their shape (handles, numbers as typed).
IDENTIFYING_FIELDS: Final = frozenset(
    {"email", "phone", "phone_number", "value", "raw_value", "normalized_value", "identifier", "handle"}
)
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+$")
# A phone as people write one: an optional +, digits, and the usual separators; 7 to 15 digits in all.
_PHONE_CHARS: Final = re.compile(r"^\+?[\d\s().\-/]+$")
_KEPT_DIGITS: Final = 4


def mask_email(value: str) -> str:
    local, _, domain = value.rpartition("@")
    return f"{local[:1]}{MASK}@{domain}"


def _calling_code(digits: str) -> str:
    """The country calling code an E.164 number starts with (1 to 3 digits), or "" when unknown."""
    import phonenumbers

    for length in (1, 2, 3):
        if phonenumbers.region_code_for_country_code(int(digits[:length])) != phonenumbers.UNKNOWN_REGION:
            return digits[:length]
    return ""


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    international = value.strip().startswith("+")
    code = _calling_code(digits) if international else ""
    rest = digits[len(code) :]
    hidden = max(len(rest) - _KEPT_DIGITS, 0)
    kept = rest[hidden:] if len(rest) > _KEPT_DIGITS else ""
    return ("+" if international else "") + code + "*" * (len(rest) - len(kept)) + kept


def _is_phone(value: str) -> bool:
    return _PHONE_CHARS.match(value) is not None and 7 <= sum(ch.isdigit() for ch in value) <= 15


def mask_text(value: str, *, identifying: bool) -> str:
    """A string masked by its shape; any other string masked whole when `identifying`, else kept."""
    text = value.strip()
    if _EMAIL.match(text):
        return mask_email(text)
    if _is_phone(text):
        return mask_phone(text)
    return MASK if identifying and text else value


def mask_value(field: str, value: object) -> object:
    """`value` of `field` as a record of changes may keep it (see the module docstring)."""
    name = field.rsplit(".", 1)[-1]
    if field == CUSTOM_FIELDS or field.startswith(CUSTOM_FIELDS + "."):
        return _mask_custom(value)
    if isinstance(value, str):
        return mask_text(value, identifying=name in IDENTIFYING_FIELDS)
    if isinstance(value, Mapping):
        return {str(key): mask_value(str(key), item) for key, item in cast(Mapping[object, object], value).items()}
    if isinstance(value, list | tuple):
        return [mask_value(field, item) for item in cast(list[object], value)]
    return value


def _mask_custom(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {str(key): _mask_custom(item) for key, item in cast(Mapping[object, object], value).items()}
    return MASK
