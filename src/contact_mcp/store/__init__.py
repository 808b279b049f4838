"""The contact store: the `local` provider, serving every tool from a database it owns, whichever backend.

`CONTACT_MCP_DB` chooses the backend: a file path is SQLite (`store/sqlite.py`, the default), a `postgresql://` or
`postgres://` URL is PostgreSQL (`store/postgres.py`). The contact rules are written once (`store/rules.py`); each
backend implements the interface in `store/backend.py` by reading, asking the rules, and writing, one transaction
per call; schemas are versioned per backend (`store/migrations/`). A contact has one UUID4 id and carries contact
*methods* (emails, phones, handles; Feather/TetherAI style, with verification) and messaging *identities*
(Blooio style), so every tool works on the same contacts.

How each backend guarantees that two concurrent upserts of one email or one user id never make two contacts
(the guarantee is about what upsert matches on; an email may still sit on two contacts where attach_contact put
it there):

- **SQLite**: one writer at a time. Every write call is one `BEGIN IMMEDIATE ... COMMIT` transaction, which takes
  the database's write lock before its first read, so the read-decide-write of an upsert is never interleaved with
  another writer's, in this process or another process on the same file (a writer waits up to the busy timeout,
  then gets a retryable `provider_unavailable`). Unique indexes on `contacts.id`, `contacts.user_id`,
  `contacts.username_key` and on identities' keys are the last line: a bug that slipped past the rules would fail
  its transaction rather than store a duplicate.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, cast

from contact_mcp.errors import ConfigError
from contact_mcp.models import (
    AttachContactInput,
    AttachedContact,
    AttachedIdentity,
    AttachIdentityInput,
    Contact,
    ContactPage,
    CreateContactInput,
    CreatedContact,
    DeleteContactInput,
    DeletedContact,
    DetachContactInput,
    DetachedContact,
    DetachedIdentity,
    DetachIdentityInput,
    DuplicatePage,
    FindContactsInput,
    FindDuplicatesInput,
    MergeContactsInput,
    MergeResult,
    Operation,
    Outcome,
    SetVerificationInput,
    UpsertContactInput,
    UpsertResult,
    VerificationResult,
)
from contact_mcp.normalize import normalize_uuid
from contact_mcp.providers.base import Provider
from contact_mcp.settings import Settings, load_settings
from contact_mcp.store.backend import Backend, BackendModule
from contact_mcp.store.records import ContactRecord
from contact_mcp.store.rules import ImportContactInput, RowError

if TYPE_CHECKING:
    import httpx2

__all__ = ["Backend", "ContactRecord", "LocalStore", "backend_name"]

BackendName = Literal["sqlite", "postgres"]
_MODULES: Final[dict[BackendName, str]] = {
    "sqlite": "contact_mcp.store.sqlite",
    "postgres": "contact_mcp.store.postgres",
}
_URL_SCHEMES: Final = ("postgresql://", "postgres://")
EXPORT_BATCH: Final = 500
"""Contacts per export page: one read transaction each, so a long export never holds one open."""


def backend_name(db: str) -> BackendName:
    """Which backend a `CONTACT_MCP_DB` value selects."""
    return "postgres" if db.lower().startswith(_URL_SCHEMES) else "sqlite"


def backend_module(settings: Settings) -> BackendModule:
    """The backend's module, imported only when selected (PostgreSQL's driver costs start-up time)."""
    name = backend_name(settings.db)
    module_name = _MODULES[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise ConfigError(
            "CONTACT_MCP_DB is a PostgreSQL URL, but this contact-mcp has no PostgreSQL backend; "
            "set CONTACT_MCP_DB to a file path for the SQLite store"
        ) from None
    return cast(BackendModule, module)


class LocalStore(Provider):
    """The store as a provider: every operation, served by the backend `CONTACT_MCP_DB` selects."""

    name = "local"
    display_name = "local"
    operations = frozenset(Operation)

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @classmethod
    def preflight(cls, settings: Settings) -> None:
        backend_module(settings).preflight(settings)

    @classmethod
    def from_settings(cls, settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None) -> LocalStore:
        return cls(backend_module(settings).open_backend(settings))

    @classmethod
    def open(cls, db: str | Path) -> LocalStore:
        """The store on `db` (a path or a URL) with every other setting at its default."""
        settings = load_settings(db=str(db))
        cls.preflight(settings)
        return cls.from_settings(settings)

    async def aclose(self) -> None:
        await self.backend.aclose()

    async def probe(self) -> str:
        return await self.backend.probe()

    async def ready(self) -> None:
        await self.backend.ready()

    async def attach_contact(self, call: AttachContactInput) -> AttachedContact:
        return await self.backend.attach_contact(call)

    async def attach_identity(self, call: AttachIdentityInput) -> AttachedIdentity:
        return await self.backend.attach_identity(call)

    async def set_verification(self, call: SetVerificationInput) -> VerificationResult:
        return await self.backend.set_verification(call)

    async def upsert_contact(self, call: UpsertContactInput) -> UpsertResult:
        return await self.backend.upsert_contact(call)

    async def create_contact(self, call: CreateContactInput) -> CreatedContact:
        return await self.backend.create_contact(call)

    async def get_contact(self, contact_id: str) -> Contact:
        # The store's ids are UUIDs: anything else is a malformed argument (other providers' ids differ, so the
        # tool leaves this check to whoever serves it).
        return await self.backend.get_contact(normalize_uuid(contact_id, field="contact_id"))

    async def find_contacts(self, call: FindContactsInput) -> ContactPage:
        return await self.backend.find_contacts(call)

    async def find_duplicates(self, call: FindDuplicatesInput) -> DuplicatePage:
        return await self.backend.find_duplicates(call)

    async def merge_contacts(self, call: MergeContactsInput) -> MergeResult:
        return await self.backend.merge_contacts(call)

    # The store's ids are UUIDs: anything else is a malformed argument (as for get_contact).

    async def delete_contact(self, call: DeleteContactInput) -> DeletedContact:
        return await self.backend.delete_contact(
            replace(call, contact_id=normalize_uuid(call.contact_id, field="contact_id"))
        )

    async def detach_identity(self, call: DetachIdentityInput) -> DetachedIdentity:
        return await self.backend.detach_identity(call)

    async def detach_contact(self, call: DetachContactInput) -> DetachedContact:
        return await self.backend.detach_contact(call)

    # ---------- export and restore (the primitives `contact-mcp export` / `import` build on) ----------

    async def iter_records(self, *, batch_size: int = EXPORT_BATCH) -> AsyncIterator[list[ContactRecord]]:
        """Every contact, whole, oldest first, in batches (each batch one read)."""
        after: str | None = None
        while True:
            page = await self.backend.export_page(after=after, limit=batch_size)
            if page.records:
                yield page.records
            if page.after is None:
                return
            after = page.after

    async def restore(self, record: ContactRecord) -> Outcome:
        """Put one exported contact back as it was (idempotent); see `Backend.restore_contact`."""
        return await self.backend.restore_contact(record)

    async def import_contact(self, call: ImportContactInput) -> Outcome:
        """One row of new data, matched and merged like an upsert (idempotent); see `Backend.import_contact`."""
        return await self.backend.import_contact(call)

    async def import_batch(self, items: Sequence[ContactRecord | ImportContactInput]) -> list[Outcome | RowError]:
        """Rows of an import in one transaction, each whole or refused alone; see `Backend.import_batch`."""
        return await self.backend.import_batch(items)
