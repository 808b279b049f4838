"""Scenario 9: `contact-mcp import` throughput for a CSV of new contacts, against its floor, per backend.

The CSV has a header row and one contact a row (email, phone in an international format that needs normalising,
name, user_id), as an address book or a CRM export would. The import runs as the command a user runs
(`python -m contact_mcp import FILE`, timed from spawn to exit) into an empty database.

The floor is the least any import of these rows must do: read the same file, normalise every email and phone with
the same functions (`contact_mcp.normalize`, so the same libraries), and write the rows in one transaction with
plain bulk statements (PostgreSQL: one `COPY` per table; SQLite: `executemany`) into the same, freshly migrated,
tables (their indexes included), with no matching and no checks. The target compares contacts/s: the import at
half its floor or better, and 100,000 rows in under a minute.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import ROOT, clean_env
from bench.workloads import BenchError
from contact_mcp.normalize import normalize_email, normalize_phone
from contact_mcp.store import LocalStore

CSV_HEADER = ("email", "phone", "name", "user_id")
ContactRow = tuple[str | None, str | None, str | None, str | None]
"""(email, phone, name, user_id), normalised; None where the contact has none (the duplicates scenario's)."""
Writer = Callable[[str, list[ContactRow]], list[str]]
"""Writes normalised rows into the migrated, empty store at a location in one transaction; their ids in order."""


def row(i: int) -> tuple[str, str, str, str]:
    return (
        f"person{i}@example.com",
        f"+1 415-{200 + i // 10_000:03d}-{i % 10_000:04d}",
        f"Person {i}",
        f"user-{i}",
    )


def write_csv(path: Path, rows: int) -> Path:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_HEADER)
        writer.writerows(row(i) for i in range(rows))
    return path


def normalised_rows(csv_path: Path) -> list[ContactRow]:
    """(email, phone, name, user_id) of every CSV row, email and phone normalised as the store does."""
    with csv_path.open(newline="") as source:
        return [
            (
                normalize_email(record["email"], field="email"),
                normalize_phone(record["phone"], field="phone"),
                record["name"],
                record["user_id"],
            )
            for record in csv.DictReader(source)
        ]


async def migrate(db: str) -> None:
    """Let the store create its tables (what opening it and asking for its state does on first use)."""
    store = LocalStore.open(db)
    try:
        await store.probe()
    finally:
        await store.aclose()


async def floor(db: str, csv_path: Path, write: Writer) -> tuple[float, float]:
    """(seconds normalising, seconds writing) the rows of `csv_path` into the empty store at `db`, which the store
    migrates first (untimed), so the floor writes into the same tables and indexes."""
    await migrate(db)
    started = time.perf_counter()
    rows = normalised_rows(csv_path)
    normalise_s = time.perf_counter() - started
    started = time.perf_counter()
    write(db, rows)
    return normalise_s, time.perf_counter() - started


@dataclass(frozen=True)
class ImportResult:
    backend: str
    writer: str  # how the floor writes: "COPY", "executemany"
    rows: int
    import_s: float
    normalise_s: float
    write_s: float
    stored: int  # contacts in the database after the import

    @property
    def floor_s(self) -> float:
        return self.normalise_s + self.write_s

    @property
    def contacts_per_s(self) -> float:
        return self.rows / self.import_s

    @property
    def floor_per_s(self) -> float:
        return self.rows / self.floor_s

    @property
    def ratio(self) -> float:
        """The import's contacts/s over its floor's."""
        return self.contacts_per_s / self.floor_per_s

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "writer": self.writer,
            "rows": self.rows,
            "import_s": self.import_s,
            "normalise_s": self.normalise_s,
            "write_s": self.write_s,
            "stored": self.stored,
            "contacts_per_s": self.contacts_per_s,
            "floor_per_s": self.floor_per_s,
            "ratio": self.ratio,
        }


def timed_import(db: str, csv_path: Path) -> float:
    """`python -m contact_mcp import FILE` into `db`; seconds from spawn to exit."""
    argv = [sys.executable, "-m", "contact_mcp", "import", str(csv_path)]
    env = clean_env({"CONTACT_MCP_DB": db, "CONTACT_MCP_LOG_LEVEL": "WARNING"})
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"contact-mcp import failed ({done.returncode}): {done.stderr.strip()[-1000:]}")
    return elapsed


async def import_throughput(
    backend: str,
    import_db: str,
    floor_db: str,
    csv_path: Path,
    log: Callable[[str], None],
    write: tuple[str, Writer],
    count: Callable[[str], int],
) -> ImportResult:
    """Import the CSV into the empty `import_db`; the floor writes its rows into the empty `floor_db` with
    `write` (its name, the writer); `count(db)` says how many contacts a store holds."""
    rows = sum(1 for _ in csv_path.open()) - 1
    writer_name, writer = write
    normalise_s, write_s = await floor(floor_db, csv_path, writer)
    log(f"  {backend} floor: normalise {normalise_s:.1f} s + {writer_name} {write_s:.1f} s for {rows:,} rows")
    import_s = timed_import(import_db, csv_path)
    stored = count(import_db)
    log(f"  {backend} import: {rows:,} rows in {import_s:.1f} s ({rows / import_s:,.0f} contacts/s), {stored:,} stored")
    if stored != rows:
        raise BenchError(f"the import stored {stored} contacts from {rows} rows")
    return ImportResult(backend, writer_name, rows, import_s, normalise_s, write_s, stored)
