"""SQLite only: schema versions. Version 1 is the schema contact-mcp 0.1.0 wrote, frozen here as released, so a
file from before the store moved behind its backend interface keeps working, and a fresh file is identical."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from contact_mcp.models import FindContactsInput, UpsertContactInput
from contact_mcp.store import LocalStore
from contact_mcp.store.migrations.sqlite import SCHEMA_VERSION

pytestmark = pytest.mark.anyio

RELEASED_V1 = """
CREATE TABLE contacts (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, user_id TEXT, username TEXT, username_key TEXT,
    name TEXT, display_name TEXT, locale TEXT, profile_picture TEXT, companies TEXT NOT NULL DEFAULT '[]',
    custom_fields TEXT NOT NULL DEFAULT '{}', roles TEXT NOT NULL DEFAULT '[]', subscribed_to_changelog INTEGER,
    search_text TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE UNIQUE INDEX contacts_id ON contacts(id);
CREATE UNIQUE INDEX contacts_user_id ON contacts(user_id);
CREATE UNIQUE INDEX contacts_username ON contacts(username_key);
CREATE TABLE methods (seq INTEGER PRIMARY KEY, id TEXT NOT NULL,
    contact_seq INTEGER NOT NULL REFERENCES contacts(seq) ON DELETE CASCADE, channel TEXT NOT NULL, type TEXT,
    kind TEXT NOT NULL, raw_value TEXT NOT NULL, value TEXT NOT NULL, is_primary INTEGER NOT NULL DEFAULT 0,
    verified_at TEXT, verification_source TEXT, verification_method TEXT, created_at TEXT NOT NULL);
CREATE UNIQUE INDEX methods_channel_value ON methods(contact_seq, channel, value);
CREATE UNIQUE INDEX methods_primary ON methods(contact_seq, kind) WHERE is_primary;
CREATE INDEX methods_value ON methods(value, kind, contact_seq);
CREATE TABLE identities (seq INTEGER PRIMARY KEY, id TEXT NOT NULL,
    contact_seq INTEGER NOT NULL REFERENCES contacts(seq) ON DELETE CASCADE, channel_type TEXT,
    identifier TEXT NOT NULL, channel_id TEXT, created_at TEXT NOT NULL);
CREATE UNIQUE INDEX identities_key ON identities(identifier, ifnull(channel_type, ''), ifnull(channel_id, ''));
CREATE INDEX identities_contact ON identities(contact_seq);
INSERT INTO contacts (id, user_id, name, search_text, created_at, updated_at)
    VALUES ('6f1c2a0e-8a3b-4c5d-9e7f-0a1b2c3d4e5f', 'u1', 'Ann', 'ann', '2026-01-01T00:00:00.000Z',
            '2026-01-01T00:00:00.000Z');
INSERT INTO methods (id, contact_seq, channel, type, kind, raw_value, value, is_primary, created_at)
    VALUES ('m1', 1, 'email', 'email', 'email', 'ann@example.com', 'ann@example.com', 1, '2026-01-01T00:00:00.000Z');
PRAGMA user_version = 1;
"""


def schema(path: Path) -> list[tuple[str, str, str]]:
    """Tables and indexes with their SQL, whitespace folded (how a statement is laid out is not the schema)."""
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    return [(kind, name, re.sub(r"\s+", " ", re.sub(r"\s*([(),])\s*", r"\1", sql))) for kind, name, sql in rows]


async def test_a_released_version_1_file_migrates_to_the_schema_of_a_fresh_file(tmp_path: Path) -> None:
    released, fresh = tmp_path / "released.db", tmp_path / "fresh.db"
    with closing(sqlite3.connect(released)) as db:
        db.executescript(RELEASED_V1)
    v1 = schema(released)

    await LocalStore.open(fresh).aclose()
    await LocalStore.open(released).aclose()

    assert SCHEMA_VERSION == 2
    assert schema(fresh) == schema(released)
    assert {(kind, name) for kind, name, _ in v1} < {(kind, name) for kind, name, _ in schema(fresh)}


async def test_a_version_1_file_keeps_working(tmp_path: Path) -> None:
    path = tmp_path / "contacts.db"
    with closing(sqlite3.connect(path)) as db:
        db.executescript(RELEASED_V1)

    store = LocalStore.open(path)
    try:
        found = await store.find_contacts(FindContactsInput(email="ann@example.com"))
        updated = await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id="u1", name="Ann L"))
    finally:
        await store.aclose()

    assert [c.id for c in found.contacts] == ["6f1c2a0e-8a3b-4c5d-9e7f-0a1b2c3d4e5f"]
    assert (updated.id, updated.outcome) == ("6f1c2a0e-8a3b-4c5d-9e7f-0a1b2c3d4e5f", "updated")
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
