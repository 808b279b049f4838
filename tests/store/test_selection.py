"""Which backend CONTACT_MCP_DB selects: a path is SQLite, a postgresql:// or postgres:// URL is PostgreSQL."""

from __future__ import annotations

import pytest

from contact_mcp.store import backend_name


@pytest.mark.parametrize(
    ("db", "expected"),
    [
        ("/var/lib/contact-mcp/contacts.db", "sqlite"),
        ("contacts.db", "sqlite"),
        ("~/postgresql/contacts.db", "sqlite"),
        ("postgres.db", "sqlite"),
        ("postgresql://contacts@db.internal:5432/contacts", "postgres"),
        ("postgres://contacts:secret@db.internal/contacts", "postgres"),
        ("PostgreSQL://db.internal/contacts", "postgres"),
    ],
    ids=["absolute-path", "relative-path", "folder-named-postgresql", "file-named-postgres", "postgresql-url",
         "postgres-url", "scheme-any-case"],
)  # fmt: skip
def test_backend_is_chosen_by_the_value_of_contact_mcp_db(db: str, expected: str) -> None:
    assert backend_name(db) == expected
