"""SQLite only: a deleted contact's values are gone from the store's files, not only from its tables.

The raw bytes of the database file, its WAL and its shared-memory index are searched while the server that
deleted the contact is still running (the files as another process or a copied volume would see them):
`secure_delete` zeroes what a delete frees, and the WAL, whose old page images still quote the values, is
checkpointed and truncated after the delete commits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from contact_mcp import build_server, load_settings

pytestmark = pytest.mark.anyio

EMAIL = "philippa.zanderquist@example.org"
NAME = "Philippa Zanderquist"
PHONE = "+14155550177"
HANDLE = "pzanderquist_tw"
IDENTITY = "pz.inbox@example.net"
VALUES = (EMAIL, NAME, NAME.casefold(), PHONE, HANDLE, IDENTITY)


def file_bytes(db_path: Path) -> dict[str, bytes]:
    """The database, -wal and -shm files as they are on disk now (absent ones as empty)."""
    return {
        suffix or "db": path.read_bytes() if (path := Path(f"{db_path}{suffix}")).exists() else b""
        for suffix in ("", "-wal", "-shm")
    }


def traces(db_path: Path) -> dict[str, list[str]]:
    """Which values each file still holds (UTF-8, as SQLite stores text)."""
    found = {name: [v for v in VALUES if v.encode() in raw] for name, raw in file_bytes(db_path).items()}
    return {name: values for name, values in found.items() if values}


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def test_a_deleted_contact_leaves_no_value_in_the_db_wal_or_shm_file(db_path: Path) -> None:
    async with Client(build_server(load_settings(db=str(db_path)))) as client:
        contact = await call(client, "upsert_contact", email=EMAIL, name="P. Zanderquist", phone=PHONE)
        contact_id = contact["id"]
        await call(client, "upsert_contact", email=EMAIL, name=NAME)  # a value replaced in place, then deleted
        await call(client, "attach_contact", end_user_id=contact_id, channel="twitter", value=HANDLE)
        await call(client, "attach_identity", contact_id=contact_id, identifier=IDENTITY)
        keep = await call(client, "upsert_contact", email="keeper@example.com", name="Keeper")
        seen = traces(db_path)
        assert {v for values in seen.values() for v in values} == set(VALUES)  # the search sees them while held

        await call(client, "delete_contact", contact_id=contact_id, confirm=True)

        assert traces(db_path) == {}
        assert file_bytes(db_path)["-wal"] == b""  # truncated, not just rewound
        assert (await call(client, "get_contact", contact_id=keep["id"]))["name"] == "Keeper"
    assert traces(db_path) == {}
