"""The SQLite schema's versions, and the step that brings a file up to date (`PRAGMA user_version` holds its
version; version 1 is the schema contact-mcp has always written, so existing files keep working unchanged).

`seq` (the rowid) is the pagination order and the join key; `id` is the public UUID. A method's `kind` groups the
types one primary is chosen among: "email", "phone" (phone/sms/voice/whatsapp), else the channel itself.
`search_text` holds name, display name and username case-folded, for the substring search.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from contact_mcp.errors import ConfigError

_V1: Final = (
    """CREATE TABLE contacts (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        user_id TEXT,
        username TEXT,
        username_key TEXT,
        name TEXT,
        display_name TEXT,
        locale TEXT,
        profile_picture TEXT,
        companies TEXT NOT NULL DEFAULT '[]',
        custom_fields TEXT NOT NULL DEFAULT '{}',
        roles TEXT NOT NULL DEFAULT '[]',
        subscribed_to_changelog INTEGER,
        search_text TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX contacts_id ON contacts(id)",
    "CREATE UNIQUE INDEX contacts_user_id ON contacts(user_id)",
    "CREATE UNIQUE INDEX contacts_username ON contacts(username_key)",
    """CREATE TABLE methods (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        contact_seq INTEGER NOT NULL REFERENCES contacts(seq) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        type TEXT,
        kind TEXT NOT NULL,
        raw_value TEXT NOT NULL,
        value TEXT NOT NULL,
        is_primary INTEGER NOT NULL DEFAULT 0,
        verified_at TEXT,
        verification_source TEXT,
        verification_method TEXT,
        created_at TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX methods_channel_value ON methods(contact_seq, channel, value)",
    "CREATE UNIQUE INDEX methods_primary ON methods(contact_seq, kind) WHERE is_primary",
    "CREATE INDEX methods_value ON methods(value, kind, contact_seq)",
    """CREATE TABLE identities (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        contact_seq INTEGER NOT NULL REFERENCES contacts(seq) ON DELETE CASCADE,
        channel_type TEXT,
        identifier TEXT NOT NULL,
        channel_id TEXT,
        created_at TEXT NOT NULL
    )""",
    # UNIQUE treats NULLs as distinct; ifnull() makes "no channel type" one value, so it cannot be attached twice.
    "CREATE UNIQUE INDEX identities_key ON identities(identifier, ifnull(channel_type, ''), ifnull(channel_id, ''))",
    "CREATE INDEX identities_contact ON identities(contact_seq)",
)

# Version 2 (issue 12): a merged contact points at its survivor; every write through any tool leaves a history row
# (`fields` is a JSON list of {"field", "old", "new"} with emails, phones and custom-field values masked).
_V2: Final = (
    "ALTER TABLE contacts ADD COLUMN merged_into TEXT",
    "CREATE INDEX contacts_merged_into ON contacts(merged_into) WHERE merged_into IS NOT NULL",
    """CREATE TABLE history (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        tool TEXT NOT NULL,
        provider TEXT NOT NULL,
        contact_id TEXT,
        outcome TEXT NOT NULL,
        fields TEXT NOT NULL DEFAULT '[]',
        client TEXT,
        transport TEXT
    )""",
    "CREATE INDEX history_contact ON history(contact_id, seq)",
    "CREATE INDEX history_at ON history(at)",
)

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1, _V2)
SCHEMA_VERSION: Final = len(MIGRATIONS)


def schema_version(db: sqlite3.Connection) -> int:
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(db: sqlite3.Connection, where: str) -> None:
    """Bring the file to `SCHEMA_VERSION` in one transaction (nothing to do when it is there); `where` names the
    file in the error for a newer schema. Two processes starting together migrate once: the second re-reads the
    version after taking the write lock."""
    version = schema_version(db)
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"CONTACT_MCP_DB={where} has schema version {version}, newer than this contact-mcp understands "
            f"({SCHEMA_VERSION}); upgrade contact-mcp or point CONTACT_MCP_DB at another file"
        )
    db.execute("BEGIN IMMEDIATE")
    try:
        version = schema_version(db)
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
