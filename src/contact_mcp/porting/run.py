"""Export every contact as JSONL, and import a file into the store in batches of rows.

Each batch is one store transaction and each row in it its own savepoint: a row is imported whole or not at all,
and an import stopped at any moment (Ctrl-C, a killed process, the database going away) leaves no half-written
contact. Every row is idempotent — a restore of a contact already as exported is `unchanged`, a row of new data
matches the contact it created before — so running the same import again finishes the job and changes nothing
already done.

A row the store refuses for what it holds (`invalid_argument`, `conflict`, `not_found`: a user_id that belongs to
another contact, say) is rejected with the reason and the import goes on; any other failure (the database is
unavailable) stops the import, saying at which line.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Generator, Iterable, Iterator, Sequence
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol, TextIO

import anyio

from contact_mcp.errors import ContactError
from contact_mcp.models import Outcome
from contact_mcp.porting.normalising import WORKER_FROM_ROWS, Ready, normalised_rows
from contact_mcp.porting.readers import Format, count_rows, detect_format, read_rows
from contact_mcp.porting.report import RejectedFile, Summary, Ticker, progress_bar
from contact_mcp.porting.rows import (
    FileKeys,
    RejectedRow,
    RestoreRow,
    Row,
    rejection,
    source_of,
)
from contact_mcp.store.records import ContactRecord
from contact_mcp.store.rules import ImportContactInput, RowError

BATCH_ROWS: Final = 200
"""Rows per store transaction. One transaction per row spent most of an import's time handing rows to the store
(~10× slower); a batch of whole rows is still whole or absent after an interruption, and each row keeps its own
savepoint, so a refused row is rolled back alone."""


class Exporter(Protocol):
    def iter_records(self) -> AsyncIterator[list[ContactRecord]]: ...


class Importer(Protocol):
    async def import_batch(self, items: Sequence[ContactRecord | ImportContactInput]) -> list[Outcome | RowError]: ...


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
    """Export into `path`: a file appears only once complete (an interrupted export leaves no truncated file); what
    is not a regular file is written as the export goes (`export_target`)."""
    target = export_target(path)
    if target is None:
        with path.open("w", encoding="utf-8") as out:
            return await export_contacts(store, out)
    path = target
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            count = await export_contacts(store, out)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return count


def export_target(path: Path) -> Path | None:
    """The file an export into `path` is written beside and renamed over: the regular file `path` names through any
    link (the file is replaced, not the link), or a new one. None for what is not a regular file (`/dev/null`, a
    named pipe), written as the export goes, as a shell's `>` would: renamed over, it was replaced by a regular file
    (`/dev/null` itself, for root)."""
    if path.exists() and not path.is_file():
        return None
    return path.resolve()


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
    batch_rows: int = BATCH_ROWS,
    in_worker: bool = False,
) -> None:
    """Import `rows` in order, `batch_rows` to a store transaction, counting each in `done` once its batch is
    committed (so a caller interrupted mid-way can say where); rejected rows go to `rejected`, in line order.
    `in_worker`: normalise in a worker process (`normalising`).

    The next batch is normalised while the previous one is written (normalising is most of an import's work, and
    the database's part runs in another process or thread); a batch's rows are checked against the file's earlier
    rows only once the batch before it is written, so a row the store refused frees its keys for later rows."""
    seen = FileKeys()
    writing: list[asyncio.Future[None]] = []  # the batch being written, if any (an asyncio task)
    pending: list[RejectedRow | Ready] = []
    ready = 0

    async def written() -> None:
        """Wait for the batch being written, its error raised. Not `await task`: cancelled there (Ctrl-C), the
        waiter cancelled the task with it, after its commit and before it was counted, and dropped it from
        `writing`, so the stop said fewer rows than were imported."""
        while writing:
            await asyncio.wait([writing[0]])
            writing.pop(0).result()

    async def write(batch: list[RejectedRow | Ready]) -> None:
        await written()
        claimed = [_claim(item, seen=seen) for item in batch]
        flush = _flush(store, claimed, seen=seen, rejected=rejected, done=done, ticker=ticker)
        writing.append(asyncio.ensure_future(flush))

    try:
        async with aclosing(normalised_rows(rows, default_region=default_region, in_worker=in_worker)) as items:
            async for item in items:
                pending.append(item)
                ready += not isinstance(item, RejectedRow)
                if ready >= batch_rows:
                    await write(pending)
                    pending, ready = [], 0
        await write(pending)
        await written()
    finally:
        # Stopped mid-way (Ctrl-C, a file that cannot be read on): the batch already handed to the store (one batch,
        # short) is written and counted, so what the import says it did is what it did.
        for task in writing:
            with anyio.CancelScope(shield=True):
                await asyncio.wait([task])
            if not task.cancelled():
                task.exception()  # looked at: the error that stopped the import is the one raised


def _claim(item: RejectedRow | Ready, *, seen: FileKeys) -> RejectedRow | Ready:
    """The row, or rejected as a second row for a contact an earlier row of the file imports (its keys are claimed
    here, so a duplicate in one batch is seen)."""
    if isinstance(item, RejectedRow):
        return item
    duplicate = seen.earlier(item)
    if duplicate is not None:
        return duplicate
    seen.claim(item)
    return item


async def _flush(
    store: Importer,
    pending: list[RejectedRow | Ready],
    *,
    seen: FileKeys,
    rejected: RejectedFile,
    done: Progress,
    ticker: Ticker | None,
) -> None:
    ready = [item for item in pending if not isinstance(item, RejectedRow)]
    answers = iter(
        await store.import_batch([item.record if isinstance(item, RestoreRow) else item.contact for item in ready])
        if ready
        else []
    )
    for item in pending:
        if isinstance(item, RejectedRow):
            refusal: RejectedRow | None = item
        else:
            answer = next(answers)
            if isinstance(answer, ContactError):
                seen.release(item)  # refused by the store: a later row for the same contact may still be imported
                refusal = rejection(item.line, source_of(item), answer)
            else:
                refusal = None
                done.summary.count(answer)
        if refusal is not None:
            rejected.write(refusal)
            done.summary.rejected += 1
        done.line = item.line
        if ticker is not None:
            ticker.advance()


def default_rejected_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejected.jsonl")


@dataclass(frozen=True, slots=True)
class ImportSource:
    """An import file read through and found importable: its format, how many rows it has, and its rows."""

    path: Path
    fmt: Format
    total: int
    rows: Iterator[Row]


@contextmanager
def read_through(path: Path, fmt: Format | None) -> Generator[ImportSource]:
    """The file (format by `fmt`, else detected), once read through: it decodes, each CSV record reads and the CSV
    header names contact fields. Every refusal of a file as a whole (`ImportFileError`) is raised here, so a caller
    that opens the store only inside this leaves no database behind for a refused file (on first use, opening the
    store creates it)."""
    chosen = fmt or detect_format(path)
    total = count_rows(path, chosen)
    rows = read_rows(path, chosen)
    try:
        first = next(rows, None)  # reading the first row checks a CSV header
        yield ImportSource(path, chosen, total, iter(()) if first is None else _chain(first, rows))
    finally:
        rows.close()


async def import_file(
    store: Importer,
    source: ImportSource,
    *,
    rejected_path: Path,
    default_region: str | None,
    done: Progress,
    progress_stream: TextIO | None = None,
) -> None:
    """Import the file `read_through` read."""
    rejected = RejectedFile(rejected_path)
    try:
        with progress_bar(f"Importing {source.path.name}", source.total, stream=progress_stream) as ticker:
            await import_rows(
                store,
                source.rows,
                default_region=default_region,
                rejected=rejected,
                done=done,
                ticker=ticker,
                in_worker=source.fmt != "jsonl" and source.total >= WORKER_FROM_ROWS,
            )
    finally:
        rejected.close()


def _chain(first: Row, rest: Iterable[Row]) -> Iterator[Row]:
    yield first
    yield from rest


def report(done: Progress, rejected_path: Path, *, out: TextIO | None = None) -> None:
    """The closing summary, on stdout."""
    stream = out if out is not None else sys.stdout
    where = ""
    if done.summary.rejected:
        where = f"; rejected rows with line numbers and reasons in {rejected_path}"
    elif rejected_path.is_file():  # none is created for no rejected row: one there was left earlier, and emptied
        where = f"; no row rejected, so {rejected_path} is now empty"
    print(f"import: {done.summary.line()}{where}", file=stream)


def stopped(done: Progress, error: BaseException) -> str:
    """One line for an import that did not finish."""
    why = error.message if isinstance(error, ContactError) else "interrupted"
    then = "run the same import again to finish"
    if isinstance(error, ContactError) and not error.retryable:  # run again as it is, it would stop here again
        then = f"{error.hint.rstrip('.') if error.hint else 'that must be fixed'}, then run the same import again"
    return (
        f"import stopped after line {done.line} ({why}); so far {done.summary.line()}. The rows up to that line "
        f"are imported, each whole: {then}"
    )
