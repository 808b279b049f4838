"""The PostgreSQL schema's versions, and the step that brings a database up to date at start-up.

The table `contact_mcp_schema` holds one row, the version the database is at; version N is the schema after the
first N entries of `MIGRATIONS` ran. Start-up reads it without locking (the common case: nothing to do). Otherwise
one transaction takes a transaction-scoped advisory lock (`pg_advisory_xact_lock`, released by COMMIT, so it works
behind PgBouncer in transaction mode, where a session lock could outlive the transaction on a pooled server
connection), reads the version again, and applies what is missing; DDL is transactional in PostgreSQL, so a failed
migration leaves the database as it was. N replicas starting together queue on the lock and the first migrates.

The tables mirror SQLite's (see `migrations/sqlite.py`): `seq` is the pagination order and the join key, `id` the
public UUID, a method's `kind` groups the types one primary is chosen among, `search_text` holds name, display
name and username case-folded. JSON-valued columns are `jsonb`; timestamps are the store's ISO text, so a restore
keeps them byte for byte on either backend. Unique indexes are what the database itself guarantees under
concurrent writers: contact id, user_id, username (case-folded), one method per (contact, channel, value), one
primary per (contact, kind), one identity per (identifier, channel type, channel id) with "none" as one value.
"""

from __future__ import annotations

from typing import Final, LiteralString

import psycopg

from contact_mcp.errors import ConfigError
from contact_mcp.store.postgres_reads import functions

MIGRATION_LOCK: Final = (0x636D6370, 1)
"""The advisory lock (two-int key space: "cmcp", 1) that serialises migrations; the store's row-key locks use
the one-bigint key space, which never overlaps it."""

_V1: Final[tuple[LiteralString, ...]] = (
    """CREATE TABLE contacts (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id text NOT NULL,
        user_id text,
        username text,
        username_key text,
        name text,
        display_name text,
        locale text,
        profile_picture text,
        companies jsonb NOT NULL DEFAULT '[]',
        custom_fields jsonb NOT NULL DEFAULT '{}',
        roles jsonb NOT NULL DEFAULT '[]',
        subscribed_to_changelog boolean,
        search_text text NOT NULL DEFAULT '',
        created_at text NOT NULL,
        updated_at text NOT NULL
    )""",
    "CREATE UNIQUE INDEX contacts_id ON contacts (id)",
    "CREATE UNIQUE INDEX contacts_user_id ON contacts (user_id)",
    "CREATE UNIQUE INDEX contacts_username ON contacts (username_key)",
    """CREATE TABLE methods (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id text NOT NULL,
        contact_seq bigint NOT NULL REFERENCES contacts (seq) ON DELETE CASCADE,
        channel text NOT NULL,
        type text,
        kind text NOT NULL,
        raw_value text NOT NULL,
        value text NOT NULL,
        is_primary boolean NOT NULL DEFAULT false,
        verified_at text,
        verification_source text,
        verification_method text,
        created_at text NOT NULL
    )""",
    "CREATE UNIQUE INDEX methods_channel_value ON methods (contact_seq, channel, value)",
    "CREATE UNIQUE INDEX methods_primary ON methods (contact_seq, kind) WHERE is_primary",
    "CREATE INDEX methods_value ON methods (value, kind, contact_seq)",
    """CREATE TABLE identities (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id text NOT NULL,
        contact_seq bigint NOT NULL REFERENCES contacts (seq) ON DELETE CASCADE,
        channel_type text,
        identifier text NOT NULL,
        channel_id text,
        created_at text NOT NULL
    )""",
    # A unique index treats NULLs as distinct; coalesce() makes "no channel type" one value.
    "CREATE UNIQUE INDEX identities_key ON identities "
    "(identifier, coalesce(channel_type, ''), coalesce(channel_id, ''))",
    "CREATE INDEX identities_contact ON identities (contact_seq)",
)

# Version 2 (issue 12), as SQLite's: `merged_into` on contacts, and the history of writes.
_V2: Final[tuple[LiteralString, ...]] = (
    "ALTER TABLE contacts ADD COLUMN merged_into text",
    "CREATE INDEX contacts_merged_into ON contacts (merged_into) WHERE merged_into IS NOT NULL",
    """CREATE TABLE history (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at text NOT NULL,
        tool text NOT NULL,
        provider text NOT NULL,
        contact_id text,
        outcome text NOT NULL,
        fields jsonb NOT NULL DEFAULT '[]',
        client text,
        transport text
    )""",
    "CREATE INDEX history_contact ON history (contact_id, seq)",
    "CREATE INDEX history_at ON history (at)",
)

# Version 3: the server-side functions of the hottest reads (`postgres_reads`; PostgreSQL only, SQLite has no
# planning to save). Their text is rendered from the live SQL: when it changes, append a migration running
# `functions(replace=True)` and record the new digest here (tests/store/postgres/test_functions.py compares it).
FUNCTIONS_DIGEST: Final = "f69ceccd7aa03a14"

MIGRATIONS: Final[tuple[tuple[LiteralString, ...], ...]] = (_V1, _V2, functions())
SCHEMA_VERSION: Final = len(MIGRATIONS)

_VERSION_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS contact_mcp_schema ("
    "one boolean PRIMARY KEY DEFAULT true CHECK (one), version integer NOT NULL)"
)


def schema_version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """The version the database is at: 0 for a database contact-mcp never wrote."""
    (table,) = conn.execute("SELECT to_regclass('contact_mcp_schema') IS NOT NULL").fetchone() or (False,)
    if not table:
        return 0
    row = conn.execute("SELECT version FROM contact_mcp_schema").fetchone()
    return int(str(row[0])) if row is not None else 0


def _too_new(version: int, where: str) -> ConfigError:
    return ConfigError(
        f"CONTACT_MCP_DB={where} has schema version {version}, newer than this contact-mcp understands "
        f"({SCHEMA_VERSION}); upgrade contact-mcp or point CONTACT_MCP_DB at another database"
    )


def migrate(conn: psycopg.Connection[tuple[object, ...]], where: str) -> None:
    """Bring the database to `SCHEMA_VERSION` (`conn` in autocommit mode); `where` is CONTACT_MCP_DB as it may be
    printed. A database newer than the code is a `ConfigError`."""
    version = schema_version(conn)
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise _too_new(version, where)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", MIGRATION_LOCK)
        # Another replica may have migrated while we waited for the lock. Not `to_regclass` here: it takes no lock,
        # so inside a transaction begun before that replica committed it may answer from a stale catalog cache;
        # CREATE TABLE IF NOT EXISTS and the SELECT lock the names they look up, which refreshes it.
        conn.execute(_VERSION_TABLE)
        row = conn.execute("SELECT version FROM contact_mcp_schema").fetchone()
        version = int(str(row[0])) if row is not None else 0
        if version > SCHEMA_VERSION:
            raise _too_new(version, where)
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO contact_mcp_schema (version) VALUES (%s) ON CONFLICT (one) DO UPDATE SET version = %s",
            (SCHEMA_VERSION, SCHEMA_VERSION),
        )
