"""What the benchmark reads and writes in a PostgreSQL store directly: its size, its contact count, the import floor.

The floor (`copy_floor`) is the least work an import of a CSV must do: normalise every email and phone with the
store's own functions (`contact_mcp.normalize`), then write the rows with one plain `COPY` per table into tables
the store migrated itself (so with the same indexes and constraints), with no matching and no checks.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import anyio
import psycopg

from contact_mcp.normalize import normalize_email, normalize_phone
from contact_mcp.store import LocalStore, rules


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


async def copy_floor(url: str, csv_path: Path) -> tuple[float, float]:
    """(seconds normalising, seconds writing with COPY) for the rows of `csv_path` into the empty store at `url`.

    The store migrates the database first (untimed), so the floor writes into the same tables and indexes.
    """
    await migrate(url)
    started = time.perf_counter()
    rows = normalised_rows(csv_path)
    normalise_s = time.perf_counter() - started
    started = time.perf_counter()
    copy_contacts(url, rows)
    return normalise_s, time.perf_counter() - started


async def bulk_contacts(url: str, rows: list[tuple[str, str, str, str]]) -> list[str]:
    """Fill the empty store at `url` with `rows` by `COPY` (then `ANALYZE`, as autovacuum would); their ids."""
    await migrate(url)
    ids = await anyio.to_thread.run_sync(copy_contacts, url, rows)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return ids


async def migrate(url: str) -> None:
    """Let the store create its tables (what opening it and asking for its state does on first use)."""
    store = LocalStore.open(url)
    try:
        await store.probe()
    finally:
        await store.aclose()


def copy_contacts(url: str, rows: list[tuple[str, str, str, str]]) -> list[str]:
    """Contacts, then their email and phone as primary methods, as the store writes a new contact (`rules`)."""
    stamp = rules.now()
    ids = [rules.new_id() for _ in rows]
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        columns = "id, user_id, name, search_text, created_at, updated_at"
        with cur.copy(f"COPY contacts ({columns}) FROM STDIN") as copy:
            for contact_id, (_, _, name, user_id) in zip(ids, rows, strict=True):
                copy.write_row((contact_id, user_id, name, rules.search_text(name), stamp, stamp))
        seqs = dict(cur.execute("SELECT id, seq FROM contacts").fetchall())
        columns = "id, contact_seq, channel, type, kind, raw_value, value, is_primary, created_at"
        with cur.copy(f"COPY methods ({columns}) FROM STDIN") as copy:
            for contact_id, (email, phone, _, _) in zip(ids, rows, strict=True):
                seq = seqs[contact_id]
                copy.write_row((rules.new_id(), seq, "email", "email", "email", email, email, True, stamp))
                copy.write_row((rules.new_id(), seq, "phone", "phone", "phone", phone, phone, True, stamp))
    return ids
