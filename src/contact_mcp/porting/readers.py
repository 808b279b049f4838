"""The import file formats, read into typed rows with the line each row starts on.

- **JSONL** (`contact-mcp export`'s output): one exported contact per line, read as a `RestoreRow`.
- **CSV** with a header row of contact fields (`email`, `phone`, `name`, `user_id`, `username`, `locale`; spelled
  in any case, with spaces or hyphens; `email2`, `phone_2`, ... add further emails and phones). A column that is
  not a contact field refuses the whole file before anything is written: ignoring it would silently drop data. A
  column whose header is blank (the trailing comma spreadsheets write) is no field: a row with a value in it is
  rejected, for the same reason.
  Comma, semicolon and tab delimiters are recognised from the header; a UTF-8 byte order mark (Excel) is skipped.
  A row that cannot be read as CSV (a quote never closed, a cell past csv's field size limit) refuses the file,
  naming its line: the rows after it cannot be told apart.
- **vCard** 3.0/4.0 (`.vcf`): see `porting.vcard`.

A row that cannot be read is a `RejectedRow` with the reason; a file that cannot be read at all is an
`ImportFileError`. Files are read as UTF-8, streaming, so a large file is never held in memory.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, Literal, TextIO

from pydantic import ValidationError

from contact_mcp.errors import ConfigError
from contact_mcp.porting.rows import NewDataRow, RejectedRow, RestoreRow, Row, restorable
from contact_mcp.porting.vcard import count_vcards, read_vcards
from contact_mcp.store.records import ContactRecord

Format = Literal["jsonl", "csv", "vcf"]
_SUFFIXES: Final[dict[str, Format]] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".vcf": "vcf",
    ".vcard": "vcf",
}
_CSV_FIELDS: Final = {
    "email": "email",
    "e_mail": "email",
    "phone": "phone",
    "phone_number": "phone",
    "name": "name",
    "user_id": "user_id",
    "username": "username",
    "locale": "locale",
}
_NUMBERED: Final = re.compile(r"(email|e_mail|phone|phone_number)_?(\d+)")
_SEPARATORS: Final = re.compile(r"[^0-9a-z]+")


class ImportFileError(ConfigError):
    """The file as a whole cannot be imported (unreadable, not UTF-8, a CSV header that is not contact fields)."""


@contextmanager
def _open(path: Path) -> Generator[TextIO]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield handle
    except UnicodeDecodeError:
        offset, line = _first_not_utf8(path)
        raise ImportFileError(
            f"{path} is not UTF-8 text (line {line}, byte {offset}); save or export it as UTF-8 and import it again"
        ) from None
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def _first_not_utf8(path: Path) -> tuple[int, int]:
    """Where the first byte that is not UTF-8 is: its offset in the file and its line. (The text reader's error
    counts from the start of the chunk it was decoding, not of the file.)"""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line = 0, 1
    with path.open("rb") as raw:
        while True:
            chunk = raw.read(_CHUNK_BYTES)
            pending = decoder.getstate()[0]  # the start of a character the last chunk cut (never a newline)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:  # its positions count from the pending bytes' start
                return offset - len(pending) + exc.start, line + (pending + chunk)[: exc.start].count(b"\n")
            if not chunk:
                return offset, line  # decodes whole: not reached for the file that failed
            offset += len(chunk)
            line += chunk.count(b"\n")


_CHUNK_BYTES: Final = 1 << 20


def detect_format(path: Path) -> Format:
    """By the file's suffix, else by its first non-blank line (BEGIN:VCARD, a JSON object, else CSV)."""
    by_suffix = _SUFFIXES.get(path.suffix.lower())
    if by_suffix is not None:
        return by_suffix
    with _open(path) as handle:
        for line in handle:
            text = line.strip()
            if text.upper() == "BEGIN:VCARD":
                return "vcf"
            if text.startswith("{"):
                return "jsonl"
            if text:
                return "csv"
    return "csv"


def read_rows(path: Path, fmt: Format) -> Generator[Row]:
    """Every row of the file, in order."""
    with _open(path) as handle:
        if fmt == "jsonl":
            yield from _jsonl_rows(handle)
        elif fmt == "csv":
            yield from _csv_rows(handle, path)
        else:
            yield from read_vcards(handle)


def count_rows(path: Path, fmt: Format) -> int:
    """How many rows `read_rows` will yield (for the progress bar); reading them also proves the file decodes."""
    with _open(path) as handle:
        if fmt == "jsonl":
            return sum(1 for line in handle if line.strip())
        if fmt == "vcf":
            return count_vcards(handle)
        records = _csv_records(handle, path)
        return max(sum(1 for _, cells in records if any(cell.strip() for cell in cells)) - 1, 0)


# ---------- JSONL ----------


def _jsonl_rows(handle: TextIO) -> Iterator[Row]:
    for number, line in enumerate(handle, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            record = ContactRecord.model_validate_json(text)
        except ValidationError as exc:
            error = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(part) for part in error["loc"])
            reason = f"not an exported contact: {where + ': ' if where else ''}{error['msg']}"
            yield RejectedRow(line=number, reason=reason, source=text, field=where or None)
        else:
            yield restorable(RestoreRow(line=number, record=record), text)


# ---------- CSV ----------


def _delimiter(handle: TextIO) -> str:
    """Comma unless the header line is delimited by semicolons or tabs (spreadsheets in many locales); rewinds."""
    start = handle.tell()
    header = handle.readline()
    handle.seek(start)
    counts = {delimiter: header.count(delimiter) for delimiter in (",", ";", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def _column_field(header: str) -> tuple[str, int] | None:
    """The contact field a column holds, with its number (0 for `email`, 2 for `email2`), or None."""
    key = _SEPARATORS.sub("_", header.strip().lower()).strip("_")
    if key in _CSV_FIELDS:
        return _CSV_FIELDS[key], 0
    numbered = _NUMBERED.fullmatch(key)
    return (_CSV_FIELDS[numbered.group(1)], int(numbered.group(2))) if numbered else None


def _csv_records(handle: TextIO, path: Path) -> Iterator[tuple[int, list[str]]]:
    """Each record's cells with the line it starts on. Strict: read leniently, a quote never closed takes every
    later row into one cell (or runs into csv's field size limit, a crash), and the rows after it are lost in
    silence. Such a record refuses the file, naming its line, as any file that cannot be read through does."""
    reader = csv.reader(handle, delimiter=_delimiter(handle), strict=True)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError(f"{path}: the row on line {start} {_csv_problem(exc)}") from None
        yield start, cells
        start = reader.line_num + 1


def _csv_problem(error: csv.Error) -> str:
    text = str(error)
    if text == "unexpected end of data":
        return "opens a quote that is never closed (the file ends inside it); close it and import the file again"
    if text.startswith("field larger than field limit"):
        return (
            f"has a field longer than {csv.field_size_limit()} characters (a quote never closed?); "
            "shorten it and import the file again"
        )
    if text.endswith("expected after '\"'"):
        return (
            "has text after the closing quote of a field; quote the whole field, doubling each quote inside it "
            '("Bob ""Jr""")'
        )
    return f"is not readable as CSV ({text}); correct it and import the file again"


def _header_fields(header: list[str], path: Path) -> list[tuple[str, int] | None]:
    """Each column's field (`_column_field`), None for a column whose header is blank (the trailing comma
    spreadsheets write): it holds no field, so its cells must be empty. Refuses a header that is not contact fields."""
    fields = [_column_field(column) if column.strip() else None for column in header]
    known = ", ".join(dict.fromkeys(_CSV_FIELDS.values()))
    unknown = [column for column, field in zip(header, fields, strict=True) if column.strip() and field is None]
    if unknown:
        raise ImportFileError(
            f"{path}: the header row has column(s) that are not contact fields: {', '.join(map(repr, unknown))}. "
            f"Columns may be: {known} (email2, phone2, ... for more); rename or remove the others"
        )
    if all(field is None for field in fields):
        raise ImportFileError(
            f"{path}: the header row names no contact field; its first row must name the columns: {known} "
            "(email2, phone2, ... for more)"
        )
    single = [field[0] for field in fields if field is not None and field[0] not in ("email", "phone")]
    if len(single) != len(set(single)):
        raise ImportFileError(f"{path}: the header row names one field twice: {', '.join(header)}")
    return fields


def _csv_rows(handle: TextIO, path: Path) -> Iterator[Row]:
    records = _csv_records(handle, path)
    _, header = next(records, (0, None))
    if header is None:
        return
    fields = _header_fields(header, path)
    named = [field is not None for field in fields]
    # The rejected-rows file shows a nameless column's cell by its place, as two of them would share one name.
    labels = [
        column if is_named else f"(column {n})"
        for n, (column, is_named) in enumerate(zip(header, named, strict=True), 1)
    ]
    for line, cells in records:
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) < len(header) and not any(named[len(cells) :]):
            cells = cells + [""] * (len(header) - len(cells))  # only nameless columns left off the end of the row
        elif len(cells) > len(header) and not any(cell.strip() for cell in cells[len(header) :]):
            cells = cells[: len(header)]  # empty cells past the header's last column: the trailing comma of a row
        source = dict(zip(labels, cells, strict=False))
        if len(cells) != len(header):
            reason = f"the row has {len(cells)} cells; the header has {len(header)}"
            yield RejectedRow(line=line, reason=reason, source=source)
            continue
        stray = [
            label for label, is_named, cell in zip(labels, named, cells, strict=True) if not is_named and cell.strip()
        ]
        if stray:  # imported, the value would be dropped in silence
            yield RejectedRow(
                line=line,
                reason=f"the row has a value in a column the header row leaves unnamed: {', '.join(stray)}",
                source=source,
                hint="Name the column in the header row with a contact field, or empty the cell, then import the "
                "file again",
            )
            continue
        numbered: dict[str, list[tuple[int, str]]] = {}
        for field, cell in zip(fields, cells, strict=True):
            if field is not None:
                numbered.setdefault(field[0], []).append((field[1], cell))
        # `email` before `email2` before `email3`, whatever their order in the header: the first is the primary.
        values = {name: [cell for _, cell in sorted(cells, key=lambda c: c[0])] for name, cells in numbered.items()}
        yield NewDataRow(
            line=line,
            source=source,
            emails=tuple(values.get("email", ())),
            phones=tuple(values.get("phone", ())),
            name=_one(values, "name"),
            user_id=_one(values, "user_id"),
            username=_one(values, "username"),
            locale=_one(values, "locale"),
        )


def _one(values: dict[str, list[str]], field: str) -> str | None:
    cells = values.get(field)
    return cells[0] if cells else None
