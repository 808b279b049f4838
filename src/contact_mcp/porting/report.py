"""What an import tells its user: the progress bar, the rejected-rows file and the closing summary.

The progress bar (`rich`) is drawn on stderr only when stderr is a terminal, so a pipe or a log file never fills
with redraws. The rejected-rows file is JSONL, one rejection per line — `{"line", "reason", "field"?, "hint"?,
"row"}` with `row` the cells by column (CSV) or the text (vCard, JSONL) — written as rejections happen and flushed,
so an interrupted import still leaves the rejections it met; it is created only when a row is rejected, and one an
earlier import left is emptied as the import begins, so it holds this import's rejected rows and no others.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from contact_mcp.models import Outcome
from contact_mcp.porting.rows import RejectedRow

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


@dataclass(slots=True)
class Summary:
    """Rows by what became of them."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0

    def count(self, outcome: Outcome) -> None:
        if outcome == "created":
            self.created += 1
        elif outcome == "updated":
            self.updated += 1
        else:
            self.unchanged += 1

    def line(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, {self.rejected} rejected"


class RejectedFile:
    """The rejected rows of one import, opened on the first rejection. A file an earlier import left at the path is
    emptied at once (not removed: it may be watched, or linked): left as it was, its rows would pass for this
    import's, even if this import is killed before it rejects a row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: TextIO | None = None
        # None there: none is created until a row is rejected. Not a regular file (`--rejected /dev/null`, a pipe):
        # nothing to empty, and truncating one fails.
        if path.is_file():
            os.truncate(path, 0)

    def write(self, row: RejectedRow) -> None:
        if self._handle is None:
            self._handle = self.path.open("w", encoding="utf-8")
        entry: dict[str, object] = {"line": row.line, "reason": row.reason}
        if row.field is not None:
            entry["field"] = row.field
        if row.hint is not None:
            entry["hint"] = row.hint
        entry["row"] = row.source
        self._handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


class Ticker(Protocol):
    """Told once per row handled."""

    def advance(self) -> None: ...


class _Silent:
    def advance(self) -> None:
        pass


class _Bar:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def advance(self) -> None:
        self._progress.advance(self._task)


@contextmanager
def progress_bar(description: str, total: int | None, *, stream: TextIO | None = None) -> Generator[Ticker]:
    """A bar on `stream` (default stderr) when it is a terminal; otherwise nothing is drawn."""
    out = stream if stream is not None else sys.stderr
    if not out.isatty():
        yield _Silent()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(file=out), transient=False) as progress:
        yield _Bar(progress, progress.add_task(description, total=total))
