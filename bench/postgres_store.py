"""What the benchmark reads and writes in a PostgreSQL store directly: its size, its contact count, the import floor.

The floor (`copy_floor`) is the least work an import of a CSV must do: normalise every email and phone with the
store's own functions (`contact_mcp.normalize`), then write the rows with one plain `COPY` per table into tables
the store migrated itself (so with the same indexes and constraints), with no matching and no checks.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import psycopg

from contact_mcp.normalize import normalize_email, normalize_phone


def storage_mib(url: str) -> float:
    """Tables, indexes and TOAST of the database's (schema's) relations, in MiB."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        ).fetchone()
    return float(row[0] if row else 0) / 2**20


def count_contacts(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM contacts").fetchone()
    return int(row[0] if row else 0)


def normalised_rows(csv_path: Path) -> list[tuple[str, str, str, str]]:
    """(email, phone, name, user_id) of every CSV row, email and phone normalised as the store does."""
    rows: list[tuple[str, str, str, str]] = []
    with csv_path.open(newline="") as source:
        for record in csv.DictReader(source):
            rows.append(
                (
                    normalize_email(record["email"], field="email"),
                    normalize_phone(record["phone"], field="phone"),
                    record["name"],
                    record["user_id"],
                )
            )
    return rows


def copy_floor(url: str, csv_path: Path) -> tuple[float, float]:
    """(seconds normalising, seconds writing with COPY) for the rows of `csv_path` into the empty store at `url`."""
    started = time.perf_counter()
    rows = normalised_rows(csv_path)
    normalise_s = time.perf_counter() - started
    started = time.perf_counter()
    _copy(url, rows)
    return normalise_s, time.perf_counter() - started


def _copy(url: str, rows: list[tuple[str, str, str, str]]) -> None:
    raise NotImplementedError("the PostgreSQL store's tables are not known yet")
