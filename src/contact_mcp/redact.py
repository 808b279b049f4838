"""Keeping our secrets out of what we show: the `Scrubber` that strips every configured secret from foreign text, and
`display_url`, the one way a configured URL is shown (userinfo and query string masked).

Foreign text is anything a provider or a library wrote: an error body's message ("Invalid API key provided: Bearer
sk_test_…"), an exception's text. It may quote our own credentials back to us, so it passes through a `Scrubber`
before it reaches a tool result or a log line. The scrubber is built once from `Settings` and knows every secret
the process holds: each `<P>_API_KEY`, `FEATUREBASE_IDENTITY_SECRET`, `CONTACT_MCP_HTTP_TOKEN`, each key of
`CONTACT_MCP_REQUEST_STATE_KEY` and the password of a PostgreSQL `CONTACT_MCP_DB`. Imports nothing of ours but
settings' types.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from contact_mcp.settings import Settings

REDACTED = "[redacted]"
# A secret shorter than this is not searched for: replacing every "a" of a message would only destroy the message,
# and a secret that short protects nothing anyway (the HTTP token's own minimum is far longer).
MIN_SECRET_LENGTH = 4
_MASK = "***"
# postgresql://user:password@host/db; a `Path` setting folds "//" into "/", so one or more slashes.
# libpq takes a password's `#` and `?` as they are, unencoded; one with an unencoded `@` or `/` is refused at
# start-up (`misread_userinfo`). Shown, the userinfo runs to the last `@`, so such a password is masked whole.
_PG_URL = re.compile(r"^postgres(?:ql)?(?:\+[a-z0-9]+)?:/+(?P<userinfo>.*)@(?=[^@]*$)", re.IGNORECASE)
_PG_SCHEME_SLASH = re.compile(r"^(postgres(?:ql)?(?:\+[a-z0-9]+)?):/(?!/)", re.IGNORECASE)
_PG_URI_START = re.compile(r"^postgres(?:ql)?://", re.IGNORECASE)
_PG_PASSWORD_PARAM = re.compile(r"[?&]password=(?P<password>[^&#]*)", re.IGNORECASE)


class Scrubber:
    """Replaces each known secret (and its percent-encoded form) in a text with `[redacted]`."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            text = (secret or "").strip()
            if len(text) < MIN_SECRET_LENGTH:
                continue
            forms.update({text, quote(text, safe=""), quote(text)})
        # Longest first, so a secret that contains another is replaced whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    @classmethod
    def from_settings(cls, settings: Settings) -> Scrubber:
        return cls(configured_secrets(settings))

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(REDACTED, text)

    def optional(self, text: str | None) -> str | None:
        return None if text is None else self(text)


def configured_secrets(settings: Settings) -> list[str]:
    """Every secret value the settings hold, in clear."""
    from contact_mcp.settings import HTTP_PROVIDERS

    values: list[str] = []
    for provider in HTTP_PROVIDERS:
        key = settings.api_key(provider)
        if key is not None:
            values.append(key.get_secret_value())
    for secret in (settings.featurebase_identity_secret, settings.http_token):
        if secret is not None:
            values.append(secret.get_secret_value())
    values.extend(settings.request_state_keys())
    values.extend(database_password_forms(str(settings.db)))
    return values


def database_password_forms(target: str) -> tuple[str, ...]:
    """The password of a PostgreSQL URL (`postgresql://user:pw@host/db` or `?password=`) as written in it and
    decoded, longest first; empty for none (a SQLite path). A driver's error may quote the URL as written, so a
    percent-encoded password (`p%40ss`, `%2f` in either case) is masked in that form too, which the encoded forms
    `Scrubber` derives from the decoded one need not match."""
    written = _written_password(target)
    if not written:
        return ()
    return tuple(sorted({written, unquote(written)}, key=len, reverse=True))


def _written_password(target: str) -> str | None:
    text = target.strip()
    match = _PG_URL.match(text)
    if match is not None:
        userinfo = match.group("userinfo")
        if ":" in userinfo and userinfo.split(":", 1)[1]:
            return userinfo.split(":", 1)[1]
    elif not text.lower().startswith("postgres"):
        return None
    param = _PG_PASSWORD_PARAM.search(text)
    return param.group("password") if param and param.group("password") else None


def misread_userinfo(url: str) -> bool:
    """Whether libpq could read part of a `postgresql://` URL's user name or password as something else: unless the
    URL's one `@` comes before any `/`, libpq's userinfo (up to the first `@`, if no `/` comes first) is not the one
    shown and masked (up to the last `@`). `u:p@ss@host` connects to host `ss@host`, `u:pa/ss@host` to host `u`,
    port `pa`, and the errors quote those pieces of the password. An `@` elsewhere (a database name, a query
    value) is refused as well: it cannot be told apart; percent-encoded (`%40`) it can."""
    scheme = _PG_URI_START.match(url)
    if scheme is None:
        return False
    after = url[scheme.end() :]
    at = after.find("@")
    return at != -1 and (after.count("@") > 1 or "/" in after[:at])


def display_url(url: str) -> str:
    """A URL as it may be shown: `https://user:secret@host/p?key=v` becomes `https://***@host/p?***`.

    Userinfo (which may hold a password) and the query string (which may hold a key) are masked; scheme, host,
    port and path stay, since those are what an operator needs to recognise the setting."""
    # A `Path` setting folds postgresql:// into postgresql:/; show it as the URL it was.
    text = _PG_SCHEME_SLASH.sub(r"\1://", url.strip())
    userinfo = _PG_URL.match(text)
    if userinfo is not None:  # masked before parsing: urlsplit would cut a password at its `#`, `?` or `/`
        text = text[: userinfo.start("userinfo")] + _MASK + text[userinfo.end("userinfo") :]
    try:
        parts = urlsplit(text)
    except ValueError:
        return _MASK
    if not parts.scheme or not parts.netloc:
        # Not a URL (a SQLite path, say): nothing in it authenticates anyone.
        return text
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{_MASK}@{netloc.rsplit('@', 1)[1]}"
    query = _MASK if parts.query else ""
    fragment = _MASK if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
