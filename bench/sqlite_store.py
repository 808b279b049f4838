"""What the benchmark reads and writes in a SQLite store directly: its size, its contacts, and `executemany`.

`insert_contacts` writes normalised rows as the store writes new contacts (`store.rules` for ids, timestamps and the
search text) with one plain `executemany` per table in one transaction, into tables the store migrated itself:
the import's floor on SQLite.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from bench.importing import ContactRow
from contact_mcp.store import rules


def file_mib(location: str) -> float:
    """A SQLite store's size on disk (its file; the WAL is checkpointed when the store closes)."""
    return Path(location).stat().st_size / 2**20


def count_contacts(location: str) -> int:
    with closing(sqlite3.connect(location)) as db:
        (count,) = db.execute("SELECT count(*) FROM contacts").fetchone()
    return int(count)


def insert_contacts(location: str, rows: list[ContactRow]) -> list[str]:
    """Contacts, then their email and phone as primary methods, as the store writes a new contact (`rules`)."""
    stamp = rules.now()
    ids = [rules.new_id() for _ in rows]
    with closing(sqlite3.connect(location)) as db, db:
        db.executemany(
            "INSERT INTO contacts (seq, id, user_id, name, search_text, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (seq, contact_id, user_id, name, rules.search_text(name), stamp, stamp)
                for seq, (contact_id, (_, _, name, user_id)) in enumerate(zip(ids, rows, strict=True), start=1)
            ),
        )
        db.executemany(
            "INSERT INTO methods (id, contact_seq, channel, type, kind, raw_value, value, is_primary, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)",
            (
                (rules.new_id(), seq, channel, channel, channel, value, value, stamp)
                for seq, (email, phone, _, _) in enumerate(rows, start=1)
                for channel, value in (("email", email), ("phone", phone))
                if value is not None
            ),
        )
    return ids
