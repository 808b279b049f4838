"""Export every contact as JSONL, and import a file into the store row by row.

Each row is one store call, so one transaction: a row is imported whole or not at all, and an import stopped at any
moment (Ctrl-C, a killed process, the database going away) leaves no half-written contact. Every store call is
idempotent — a restore of a contact already as exported is `unchanged`, a row of new data matches the contact it
created before — so running the same import again finishes the job and changes nothing already done.

A row the store refuses for what it holds (`invalid_argument`, `conflict`, `not_found`: a user_id that belongs to
another contact, say) is rejected with the reason and the import goes on; any other failure (the database is
unavailable) stops the import, saying at which line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

from contact_mcp.errors import Conflict, ContactError, InvalidArgument, NotFound
from contact_mcp.models import Outcome
from contact_mcp.porting.readers import Format, count_rows, detect_format, read_rows
from contact_mcp.porting.report import RejectedFile, Summary, Ticker, progress_bar
from contact_mcp.porting.rows import FileKeys, RejectedRow, RestoreRow, Row, normalise, rejection, source_of
from contact_mcp.store.records import ContactRecord
from contact_mcp.store.rules import ImportContactInput

_ROW_ERRORS = (InvalidArgument, Conflict, NotFound)
"""What the store raises about a row's content: that row is rejected and the import goes on."""


class Exporter(Protocol):
    def iter_records(self) -> AsyncIterator[list[ContactRecord]]: ...


class Importer(Protocol):
    async def restore(self, record: ContactRecord) -> Outcome: ...

    async def import_contact(self, call: ImportContactInput) -> Outcome: ...


# ---------- export ----------


async def export_contacts(store: Exporter, out: TextIO) -> int:
    """Write every contact to `out`, one JSON object per line, oldest first; return how many."""
    count = 0
    async for batch in store.iter_records():
        out.write("".join(map(_line, batch)))
        count += len(batch)
    return count


def _line(record: ContactRecord) -> str:
    # Custom fields in key order: PostgreSQL's jsonb keeps keys in an order of its own, and an export should read
    # the same whichever backend holds the contacts.
    canonical = record.model_copy(update={"custom_fields": dict(sorted(record.custom_fields.items()))})
    return canonical.model_dump_json(exclude_none=True) + "\n"


async def export_to_file(store: Exporter, path: Path) -> int:
    """Export into `path`, which appears only once complete (an interrupted export leaves no truncated file)."""
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            count = await export_contacts(store, out)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return count


# ---------- import ----------


@dataclass(slots=True)
class Progress:
    """How far an import got: the summary so far and the line of the last row handled."""

    summary: Summary
    line: int = 0


async def import_rows(
    store: Importer,
    rows: Iterable[Row],
    *,
    default_region: str | None,
    rejected: RejectedFile,
    done: Progress,
    ticker: Ticker | None = None,
) -> None:
    """Import `rows` in order, counting each in `done` as it completes (so a caller interrupted mid-way can say
    where); rejected rows go to `rejected`."""
    seen = FileKeys()
    for row in rows:
        outcome = await _import_row(store, row, default_region=default_region, seen=seen)
        if isinstance(outcome, RejectedRow):
            rejected.write(outcome)
            done.summary.rejected += 1
        else:
            done.summary.count(outcome)
        done.line = row.line
        if ticker is not None:
            ticker.advance()


async def _import_row(
    store: Importer, row: Row, *, default_region: str | None, seen: FileKeys
) -> Outcome | RejectedRow:
    if isinstance(row, RejectedRow):
        return row
    ready = row if isinstance(row, RestoreRow) else normalise(row, default_region=default_region)
    if isinstance(ready, RejectedRow):
        return ready
    duplicate = seen.earlier(ready)
    if duplicate is not None:
        return duplicate
    try:
        if isinstance(ready, RestoreRow):
            outcome = await store.restore(ready.record)
        else:
            outcome = await store.import_contact(ready.contact)
    except _ROW_ERRORS as exc:
        return rejection(ready.line, source_of(ready), exc)
    seen.claim(ready)
    return outcome


def default_rejected_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejected.jsonl")


async def import_file(
    store: Importer,
    path: Path,
    *,
    fmt: Format | None,
    rejected_path: Path,
    default_region: str | None,
    done: Progress,
    progress_stream: TextIO | None = None,
) -> Format:
    """Import the file (format by `fmt`, else detected); return the format read. The file is read through once
    before any row is imported, so an unreadable file (not UTF-8, a CSV header of unknown columns) writes nothing."""
    chosen = fmt or detect_format(path)
    total = count_rows(path, chosen)
    rows = read_rows(path, chosen)
    first = next(rows, None)  # reading the first row checks a CSV header before anything is written
    rejected = RejectedFile(rejected_path)
    try:
        with progress_bar(f"Importing {path.name}", total, stream=progress_stream) as ticker:
            if first is not None:
                await import_rows(
                    store,
                    _chain(first, rows),
                    default_region=default_region,
                    rejected=rejected,
                    done=done,
                    ticker=ticker,
                )
    finally:
        rejected.close()
    return chosen


def _chain(first: Row, rest: Iterable[Row]) -> Iterable[Row]:
    yield first
    yield from rest


def report(done: Progress, rejected_path: Path, *, out: TextIO | None = None) -> None:
    """The closing summary, on stdout."""
    stream = out if out is not None else sys.stdout
    where = f"; rejected rows with line numbers and reasons in {rejected_path}" if done.summary.rejected else ""
    print(f"import: {done.summary.line()}{where}", file=stream)


def stopped(done: Progress, error: BaseException) -> str:
    """One line for an import that did not finish."""
    why = error.message if isinstance(error, ContactError) else "interrupted"
    return (
        f"import stopped after line {done.line} ({why}); so far {done.summary.line()}. Every row before it is "
        "imported whole: run the same import again to finish"
    )
