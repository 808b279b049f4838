"""The history table's rules, shared by both backends: what a query asks, how a row reads and writes, what
scrubbing leaves.

A row is one write through a tool (`models.HistoryEntry`): `fields` is stored as JSON, a list of
`{"field", "old", "new"}` with values already masked by the recorder (`server/recording.py`). Pages run in `seq`
order, oldest first or newest first, and a cursor is the last row's `seq` (`rules.encode_cursor`). Scrubbing a
contact's rows (when it is deleted) keeps each row and its field names and drops every value.

A store write through a tool appends its own row in its own transaction (`InTransaction`): one commit per write,
not one for the write and another for its history. The dispatch step hands the store what to record (`recording`),
the recorder still decides what an entry holds, and the store takes it when its write commits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final, Literal, LiteralString, cast

from contact_mcp.models import FieldChange, HistoryEntry
from contact_mcp.store import rules

MAX_PAGE: Final = 500
"""The most rows one page returns, whatever is asked."""


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """Which rows: all filters AND together; `since` is an instant in the store's format (`rules.now()`)."""

    contact_id: str | None = None
    provider: str | None = None
    since: str | None = None
    cursor: str | None = None
    limit: int = 20
    newest_first: bool = False

    @property
    def after(self) -> int | None:
        """The seq the cursor carries (rows beyond it in the page's direction), or None from the start."""
        return rules.decode_cursor(self.cursor) if self.cursor is not None else None

    @property
    def size(self) -> int:
        return max(1, min(self.limit, MAX_PAGE))


@dataclass(frozen=True, slots=True)
class HistoryPage:
    entries: list[HistoryEntry]
    next_cursor: str | None = None
    cursors: list[str] = field(default_factory=list[str])
    """The cursor continuing after each entry (a reader that shows fewer entries than the page continues there)."""


@dataclass(slots=True)
class InTransaction:
    """The history entry of the tool call under way, for the store to append inside the call's write transaction.

    `entry` builds it from the write's result as the client will see it (`structured()`). The store's first write
    of the call that commits takes it (`state`): `recorded`, or `refused` when the row could not be written (the
    write committed without it, as a separate append would have failed after it; `error` names the failure's
    type). `pending` after the call (no store write committed: a failure, a dry run, another provider) means the
    dispatch step records the call itself, as before."""

    entry: Callable[[Mapping[str, Any]], HistoryEntry]
    state: Literal["pending", "recorded", "refused"] = "pending"
    error: str | None = None

    def done(self, error: str | None) -> None:
        """The store's write committed, with its entry (`error` None) or without it."""
        self.state = "recorded" if error is None else "refused"
        self.error = error


_UNDER_WAY: ContextVar[InTransaction | None] = ContextVar("contact_mcp_history_entry", default=None)


@contextmanager
def recording(pending: InTransaction | None) -> Generator[None]:
    """Run the body (one tool call) with `pending` as the entry its store write records (None: none)."""
    token = _UNDER_WAY.set(pending)
    try:
        yield
    finally:
        _UNDER_WAY.reset(token)


def to_record(*, dry_run: bool) -> InTransaction | None:
    """What the store write about to start records in its transaction: None for a dry run, outside a tool call,
    or when an earlier write of the same call already took it. Read on the event loop's thread (the context)."""
    pending = _UNDER_WAY.get()
    return pending if pending is not None and not dry_run and pending.state == "pending" else None


def fields_json(fields: Sequence[FieldChange]) -> str:
    rows = [field.model_dump(mode="json", exclude_none=True) for field in fields]
    return json.dumps(rows, separators=(",", ":"), ensure_ascii=False)


def entry_values(entry: HistoryEntry) -> tuple[object, ...]:
    """The columns `at, tool, provider, contact_id, outcome, fields, client, transport`, in that order."""
    return (
        entry.at,
        entry.tool,
        entry.provider,
        entry.contact_id,
        entry.outcome,
        fields_json(entry.fields),
        entry.client,
        entry.transport,
    )


COLUMNS: Final = "seq, at, tool, provider, contact_id, outcome, fields, client, transport"
INSERT_COLUMNS: Final = "at, tool, provider, contact_id, outcome, fields, client, transport"


def entry_from(row: Sequence[Any]) -> HistoryEntry:
    """A row read with `COLUMNS`; `fields` may arrive as JSON text (SQLite) or decoded (PostgreSQL's jsonb)."""
    return HistoryEntry(
        at=str(row[1]),
        tool=str(row[2]),
        provider=str(row[3]),
        contact_id=None if row[4] is None else str(row[4]),
        outcome=str(row[5]),
        fields=[FieldChange.model_validate(item) for item in _items(row[6])],
        client=None if row[7] is None else str(row[7]),
        transport=None if row[8] is None else str(row[8]),
    )


def select(query: HistoryQuery, mark: LiteralString) -> tuple[LiteralString, list[object]]:
    """The page's statement and parameters, with `mark` as the backend's placeholder (`?` or `%s`)."""
    where: list[LiteralString] = []
    params: list[object] = []
    if query.contact_id is not None:
        where.append("contact_id = " + mark)
        params.append(query.contact_id)
    if query.provider is not None:
        where.append("provider = " + mark)
        params.append(query.provider)
    if query.since is not None:
        where.append("at >= " + mark)
        params.append(query.since)
    after = query.after
    if after is not None:
        where.append(("seq < " if query.newest_first else "seq > ") + mark)
        params.append(after)
    clause: LiteralString = (" WHERE " + " AND ".join(where)) if where else ""
    order: LiteralString = "DESC" if query.newest_first else "ASC"
    params.append(query.size + 1)
    return f"SELECT {COLUMNS} FROM history{clause} ORDER BY seq {order} LIMIT {mark}", params


def page_from(rows: Sequence[Sequence[Any]], query: HistoryQuery) -> HistoryPage:
    """A page from up to `size + 1` rows (one beyond the page says whether more exist)."""
    page = rows[: query.size]
    more = len(rows) > query.size
    return HistoryPage(
        entries=[entry_from(row) for row in page],
        next_cursor=rules.encode_cursor(int(page[-1][0])) if more and page else None,
        cursors=[rules.encode_cursor(int(row[0])) for row in page],
    )


def _items(raw: object) -> list[dict[str, Any]]:
    """A row's `fields`: JSON text (SQLite) or already decoded (PostgreSQL's jsonb)."""
    fields: object = json.loads(raw) if isinstance(raw, str | bytes) else raw
    if not isinstance(fields, list):
        return []
    return [cast(dict[str, Any], item) for item in cast(list[object], fields) if isinstance(item, dict)]


def scrubbed(raw: object) -> str:
    """A row's `fields` with every value removed (names kept): what deleting a contact leaves in its history."""
    kept: list[FieldChange] = []
    for item in _items(raw):
        whose = item.get("contact_id")
        kept.append(FieldChange(field=str(item.get("field", "")), contact_id=whose if isinstance(whose, str) else None))
    return fields_json(kept)
