"""Scenario 9: `contact-mcp import` throughput for a CSV of new contacts into PostgreSQL, against its floor.

The CSV has a header row and one contact a row (email, phone in an international format that needs normalising,
name, user_id), as an address book or a CRM export would. The import runs as the command a user runs
(`python -m contact_mcp import FILE`, timed from spawn to exit) into an empty database.

The floor is the least any import of these rows must do: read the same file, normalise every email and phone with
the same functions (`contact_mcp.normalize`, so the same libraries), and write the rows with one plain `COPY` per
table into the same, freshly migrated, tables (their indexes included), with no matching and no checks. The
target compares contacts/s: the import at half its floor or better, and 100,000 rows in under a minute.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import ROOT, clean_env
from bench.workloads import BenchError

CSV_HEADER = ("email", "phone", "name", "user_id")


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


@dataclass(frozen=True)
class ImportResult:
    rows: int
    import_s: float
    normalise_s: float
    copy_s: float
    stored: int  # contacts in the database after the import

    @property
    def floor_s(self) -> float:
        return self.normalise_s + self.copy_s

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
            "rows": self.rows,
            "import_s": self.import_s,
            "normalise_s": self.normalise_s,
            "copy_s": self.copy_s,
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
    import_db: str,
    floor_db: str,
    rows: int,
    workdir: Path,
    log: Callable[[str], None],
    floor: Callable[[str, Path], Awaitable[tuple[float, float]]],
    count: Callable[[str], int],
) -> ImportResult:
    """Import `rows` CSV rows into the empty `import_db`; the floor writes them into the empty `floor_db`.

    `floor(db, csv)` returns (normalise seconds, copy seconds); `count(db)` the contacts stored.
    """
    csv_path = write_csv(workdir / f"import-{rows}.csv", rows)
    normalise_s, copy_s = await floor(floor_db, csv_path)
    log(f"  floor: normalise {normalise_s:.1f} s + COPY {copy_s:.1f} s for {rows:,} rows")
    import_s = timed_import(import_db, csv_path)
    stored = count(import_db)
    log(f"  import: {rows:,} rows in {import_s:.1f} s ({rows / import_s:,.0f} contacts/s), {stored:,} stored")
    if stored != rows:
        raise BenchError(f"the import stored {stored} contacts from {rows} rows")
    return ImportResult(rows, import_s, normalise_s, copy_s, stored)
