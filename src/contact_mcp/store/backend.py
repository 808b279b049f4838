"""The interface every store backend implements (SQLite, PostgreSQL), and what each backend module provides.

A backend speaks its database's dialect and nothing more: each operation is one transaction in which it reads what
`rules` asks for, calls the rule, and writes what the rule decided. Results are built by `rules`, errors are the
`rules` errors, so the agent-facing behaviour is written once (the contract suite in tests/store/ runs on every
backend). A backend never blocks the event loop: its database work runs on a worker thread (SQLite) or an async
driver (PostgreSQL). A database failure a caller can retry (locked, unreachable, read-only) is
`ProviderUnavailable`; a bug is never relabelled.

Every write tool's operation runs through the backend's one write mechanism (`_write`): the operation says which
contacts it changes (`Touched.before(seq)` before its first change to a contact, `Touched.created(seq)` after
inserting one), and the mechanism reads each whole before and again at the end of the transaction (or, where the
operation derives the contact's after-state from what it writes, `store/effects.py`, takes that instead of the
second read: PostgreSQL, to save a round trip), sets the result's `changes` (`rules.field_changes`), appends the
call's history entry when the dispatch step handed one over (`history.InTransaction`), and, when the call's
`dry_run` is set, rolls the transaction back instead of committing. A new write operation built on `_write` gets
its dry run and its `changes` for free.

A backend module (`contact_mcp.store.sqlite`, `contact_mcp.store.postgres`) provides two functions, named in
`BackendModule`: `preflight(settings)` — at start-up, before serving: reach the database, apply migrations, prove
it can write unless `settings.read_only`, and raise `ConfigError` naming CONTACT_MCP_DB for anything unusable — and
`open_backend(settings)`, which returns a ready `Backend`.

Stability: the postgres backend is built against this interface; change it only additively.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

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
    HistoryEntry,
    MergeContactsInput,
    MergeResult,
    Outcome,
    SetVerificationInput,
    UpsertContactInput,
    UpsertResult,
    VerificationResult,
)
from contact_mcp.settings import Settings
from contact_mcp.store import history, rules
from contact_mcp.store.records import ContactRecord, RecordPage
from contact_mcp.store.rules import ImportContactInput


class Backend(Protocol):
    """One opened database. Each method is one transaction; `contact_id` arguments are as the agent sent them
    (the backend canonicalises with `rules.canonical_id`, and an id that is no UUID names no contact)."""

    async def attach_contact(self, call: AttachContactInput) -> AttachedContact: ...

    async def attach_identity(self, call: AttachIdentityInput) -> AttachedIdentity: ...

    async def set_verification(self, call: SetVerificationInput) -> VerificationResult: ...

    async def upsert_contact(self, call: UpsertContactInput) -> UpsertResult: ...

    async def create_contact(self, call: CreateContactInput) -> CreatedContact: ...

    async def get_contact(self, contact_id: str) -> Contact: ...

    async def find_contacts(self, call: FindContactsInput) -> ContactPage: ...

    async def find_duplicates(self, call: FindDuplicatesInput) -> DuplicatePage:
        """Groups of contacts not merged away that are probably one person (`store/duplicates.py`): one read of
        every such contact's name, user id, companies, emails and phones; the grouping is pure. Added for issue 12
        (additive)."""
        ...

    async def merge_contacts(self, call: MergeContactsInput) -> MergeResult:
        """Merge the duplicates into the survivor in one transaction, as `store/merging.py` decides; each
        duplicate is left as a stub whose `merged_into` names the survivor. Added for issue 12 (additive)."""
        ...

    async def delete_contact(self, call: DeleteContactInput) -> DeletedContact:
        """Erase a contact: its row, methods and identities, and every contact merged into it (the same person);
        a merged contact's own id deletes only that contact (the result names its survivor). `NotFound` for an
        unknown id. On SQLite the freed bytes are zeroed (`secure_delete`) and the WAL checkpointed and truncated
        after the commit, so the values are gone from the files too. Added with issue 12 (additive)."""
        ...

    async def detach_identity(self, call: DetachIdentityInput) -> DetachedIdentity:
        """Take the contact's identities with `identifier` (and the channel type / id when given) off it;
        `NotFound` when it has none. Added with issue 12 (additive)."""
        ...

    async def detach_contact(self, call: DetachContactInput) -> DetachedContact:
        """Take one method (channel and value) off the contact; when it was primary, the oldest other method of
        its kind becomes primary. `NotFound` when the contact has no such method. Added with issue 12."""
        ...

    async def export_page(self, *, after: str | None, limit: int) -> RecordPage:
        """Up to `limit` whole contacts in the store's order (oldest first), starting after the `after` of the
        previous page (None: from the start). One consistent read per page."""
        ...

    async def restore_contact(self, record: ContactRecord) -> Outcome:
        """Put one exported contact back as it was: its id, fields, timestamps, methods (ids, verification,
        primaries, created_at) and identities. `created` when no contact had its id; `unchanged` when the stored
        contact already equals the record (restoring twice changes nothing); else `updated` (the stored contact
        is replaced by the record). Validated by `records.check_record`; a user_id, username or identity held
        by another contact is a `Conflict`, with nothing written."""
        ...

    async def import_contact(self, call: ImportContactInput) -> Outcome:
        """One row of new data from `contact-mcp import` (CSV, vCard), in one transaction: matched by
        `rules.import_target` (an email or user_id as upsert_contact matches; else the username; else the phone and
        name together), then created (`rules.contact_from_import`, `rules.import_methods`) or merged
        (`rules.import_changes`). `unchanged` when the contact already holds everything the row says, so importing
        a file twice changes nothing. Conflicts are upsert's, plus a username held by another contact."""
        ...

    async def import_batch(self, items: Sequence[ContactRecord | ImportContactInput]) -> list[Outcome | rules.RowError]:
        """Several rows of an import in one transaction, in order, each under its own savepoint: a
        `ContactRecord` restored as `restore_contact` does, an `ImportContactInput` imported as `import_contact`
        does. A row refused with one of `rules.ROW_ERRORS` is rolled back alone and its error takes its place in
        the answer; any other failure fails the whole batch, with nothing written. (One transaction for many rows
        is what makes an import fast; each row is still whole or absent.)"""
        ...

    async def add_history(self, entries: Sequence[HistoryEntry]) -> None:
        """Append rows to the history of writes, in one transaction (values already masked by the recorder).
        Added for issue 12 (additive)."""
        ...

    async def history_page(self, query: history.HistoryQuery) -> history.HistoryPage:
        """One page of the history, filtered and ordered as `query` says (`history.select`); one read."""
        ...

    async def prune_history(self, before: str) -> int:
        """Delete the history rows recorded before the instant `before` (the store's format); the count deleted."""
        ...

    async def scrub_history(self, contact_id: str, provider: str | None = None) -> int:
        """Remove every value from the history rows of a contact (of `provider`, or of any), keeping the rows and
        their field names: what deleting a contact leaves. The count of rows scrubbed."""
        ...

    async def probe(self) -> str:
        """A one-line description for `contact-mcp doctor` (never a password)."""
        ...

    async def ready(self) -> None:
        """Readiness (a load balancer asks every few seconds): a cheap check that the database answers; raise
        `ProviderUnavailable` when it does not. Added after the first interface (additive)."""
        ...

    async def aclose(self) -> None:
        """Release the database; twice is harmless; never raises for a database that cannot be written."""
        ...


class BackendModule(Protocol):
    """What `contact_mcp.store` imports from a backend's module."""

    def preflight(self, settings: Settings) -> None: ...

    def open_backend(self, settings: Settings) -> Backend: ...
