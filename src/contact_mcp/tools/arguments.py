"""Rules for argument values that every tool shares: blank and `null` mean "not given", text holds no control
characters, URLs and instants are checked, and the size limits of custom fields and roles.

Pydantic has checked each argument's type against the tool's signature before a tool runs; these are the rules a
type cannot say. Each failure is an `InvalidArgument` naming the field and, for a limit, the limit.
"""

import re
from collections.abc import Mapping
from typing import Annotated, cast
from urllib.parse import urlparse

from pydantic import Field

from contact_mcp.errors import InvalidArgument
from contact_mcp.normalize import opt

DryRun = Annotated[bool, Field(description="Preview")]
"""Every write tool's `dry_run` (default false): validate, resolve and report what the call would change, and write
nothing. Its schema costs about 13 model-visible tokens per tool, so it says one word (`default: false` is not
published: leaving a flag out is false)."""

# C0 and C1 controls and DEL; tab and newline are ordinary text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def url(value: str | None, *, field: str) -> str | None:
    text = opt(value)
    if text is None:
        return None
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidArgument(f"{field} must be an http(s) URL", field=field, hint="e.g. https://example.com/a.png")
    return text


def _control_error(field: str, text: str, *, key: bool = False) -> InvalidArgument:
    found = _CONTROL.search(text)
    code = f"U+{ord(found.group()):04X}" if found else "a control character"
    what = "a key of " + field if key else field
    return InvalidArgument(
        f"{what} contains the control character {code}",
        field=field,
        hint="Remove control characters; text may hold tab and newline but no other control character",
    )


def has_control(text: str) -> bool:
    """Whether `text` holds a character `check_text` refuses."""
    return _CONTROL.search(text) is not None


def check_text(arguments: Mapping[str, object]) -> None:
    """One rule for every text a call carries, at any depth (strings, map keys, list items): no control character
    but tab and newline. Run on the raw arguments before validation, so no tool can forget it."""
    for name, value in arguments.items():
        _check(value, name)


def _check(value: object, path: str) -> None:
    if isinstance(value, str):
        if has_control(value):
            raise _control_error(path, value)
    elif isinstance(value, dict):
        for key, item in cast(dict[object, object], value).items():
            if isinstance(key, str) and has_control(key):
                raise _control_error(path, key, key=True)
            _check(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(cast(list[object], value)):
            _check(item, f"{path}[{index}]")
