"""The body of `contact-mcp history`: the history of writes in CONTACT_MCP_DB, oldest first, for people (one line
per write) or for programs (`--json`: one JSON object per line, as `get_contact` shows an entry).

`--contact ID` keeps one contact's entries (with `--provider`, of that provider only); `--since` takes an ISO 8601
date or instant (UTC unless it says otherwise) or a span back from now (`30m`, `12h`, `7d`). The database is only
read: the command opens it read-only, and one page at a time. Exit codes: 0 done, 1 the database failed, 2 a bad
argument or configuration.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Final, cast

from contact_mcp.errors import ContactError
from contact_mcp.logs import escape_controls
from contact_mcp.models import FieldChange, HistoryEntry
from contact_mcp.settings import Settings
from contact_mcp.store import LocalStore
from contact_mcp.store.history import MAX_PAGE, HistoryQuery
from contact_mcp.store.rules import instant

_SPAN: Final = re.compile(r"^(?P<count>\d{1,6})(?P<unit>[mhd])$")
_UNITS: Final = {"m": "minutes", "h": "hours", "d": "days"}


def since(text: str, *, now: datetime | None = None) -> str:
    """`--since` as an instant in the store's format; `argparse.ArgumentTypeError` for anything else."""
    value = text.strip()
    span = _SPAN.match(value)
    if span is not None:
        back = timedelta(**{_UNITS[span["unit"]]: int(span["count"])})
        return instant((now or datetime.now(UTC)) - back)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither an ISO 8601 date or time (2026-05-20, 2026-05-20T15:04Z) nor a span (30m, 12h, 7d)"
        ) from None
    return instant(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))


def _value(value: object) -> str:
    """A value for people: a method or identity as its channel and (masked) value, anything else as JSON."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        item = cast(dict[str, object], value)
        shown = item.get("value", item.get("identifier"))
        if isinstance(shown, str):
            kind = item.get("channel", item.get("channel_type"))
            return f"{kind} {shown}" if isinstance(kind, str) else shown
    return json.dumps(value, ensure_ascii=False)


def _field(field: FieldChange) -> str:
    if field.old is None and field.new is None:
        return field.field
    return f"{field.field} {_value(field.old)} -> {_value(field.new)}"


def describe(entry: HistoryEntry) -> str:
    """One line for people: when, what, where, to whom, how it ended, which fields, who called and how."""
    fields = "; ".join(_field(field) for field in entry.fields) or "-"
    who = entry.client or "unnamed client"
    via = f" over {entry.transport}" if entry.transport else ""
    line = (
        f"{entry.at}  {entry.tool}  {entry.provider}  {entry.contact_id or '-'}  {entry.outcome}  "
        f"[{fields}]  by {who}{via}"
    )
    # Values come from agents and clients: one entry stays one line, whatever they hold.
    return escape_controls(line)


async def print_history(
    settings: Settings, *, contact: str | None, provider: str | None, after: str | None, as_json: bool
) -> int:
    read_only = settings.model_copy(update={"read_only": True})
    LocalStore.preflight(read_only)
    store = LocalStore.from_settings(read_only)
    query = HistoryQuery(contact_id=contact, provider=provider, since=after, limit=MAX_PAGE)
    shown = 0
    try:
        while True:
            page = await store.backend.history_page(query)
            for entry in page.entries:
                print(entry.model_dump_json(exclude_none=True) if as_json else describe(entry))
            shown += len(page.entries)
            if page.next_cursor is None:
                break
            query = HistoryQuery(
                contact_id=contact, provider=provider, since=after, limit=MAX_PAGE, cursor=page.next_cursor
            )
    except ContactError as exc:
        print(f"contact-mcp: history: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await store.aclose()
    if not as_json:
        print(f"history: {shown} write(s)", file=sys.stderr)
    return 0
