"""What the benchmark reads and writes in a PostgreSQL store directly: its size, its contacts, and `COPY`.

`copy_contacts` writes normalised rows as the store writes new contacts (`store.rules` for ids, timestamps and the
search text), with one plain `COPY` per table into tables the store migrated itself: the import's floor, and how
the scale scenario fills 100,000 contacts.
"""

from __future__ import annotations

import anyio
import psycopg

from bench.importing import ContactRow, migrate
from contact_mcp.store import rules


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


async def bulk_contacts(url: str, rows: list[ContactRow]) -> list[str]:
    """Fill the empty store at `url` with `rows` by `COPY` (then `ANALYZE`, as autovacuum would); their ids."""
    await migrate(url)
    ids = await anyio.to_thread.run_sync(copy_contacts, url, rows)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return ids


def copy_contacts(url: str, rows: list[ContactRow]) -> list[str]:
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
                for kind, value in (("email", email), ("phone", phone)):
                    if value is not None:
                        copy.write_row((rules.new_id(), seq, kind, kind, kind, value, value, True, stamp))
    return ids
