"""The `Provider` interface: the contact operations as typed async methods.

A provider declares once, in `operations`, what it serves; the plan (`tools.plan`) routes a tool only to a provider
that declares its operation, so the default bodies here (which raise) are never reached in a correct build. Every
method takes a normalised input from `models` and returns a canonical result, or raises a `ContactError`.
"""

from __future__ import annotations

from typing import ClassVar

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
    SetVerificationInput,
    UpsertContactInput,
    UpsertResult,
    VerificationResult,
)
from contact_mcp.settings import Settings


class Provider:
    """Base of the local store and the five HTTP clients."""

    name: ClassVar[str]
    """Registry key and the value of every result's `provider` field, e.g. "feather"."""
    display_name: ClassVar[str]
    operations: ClassVar[frozenset[Operation]]

    @classmethod
    def preflight(cls, settings: Settings) -> None:
        """Check at start-up, before serving, what would otherwise fail on the first call (e.g. the database path);
        raise `ConfigError` naming the variable to fix. Most providers have nothing to check."""

    async def aclose(self) -> None:
        """Release what the provider holds (HTTP connections, the database)."""

    async def probe(self) -> str:
        """A cheap authenticated check for `contact-mcp doctor`; returns a one-line verdict or raises."""
        return "no probe available for this provider"

    async def ready(self) -> None:
        """Readiness, asked every few seconds by a load balancer: raise when this process cannot serve calls.
        Cheap and local only: a store checks its database; a third-party API being down is no reason to take a
        replica out of rotation, so by default there is nothing to check."""

    def _unsupported(self, operation: Operation) -> NotImplementedError:
        return NotImplementedError(f"{self.name} does not serve {operation}")

    async def attach_contact(self, call: AttachContactInput) -> AttachedContact:
        raise self._unsupported(Operation.ATTACH_CONTACT)

    async def attach_identity(self, call: AttachIdentityInput) -> AttachedIdentity:
        raise self._unsupported(Operation.ATTACH_IDENTITY)

    async def set_verification(self, call: SetVerificationInput) -> VerificationResult:
        raise self._unsupported(Operation.SET_VERIFICATION)

    async def upsert_contact(self, call: UpsertContactInput) -> UpsertResult:
        raise self._unsupported(Operation.UPSERT_CONTACT)

    async def create_contact(self, call: CreateContactInput) -> CreatedContact:
        raise self._unsupported(Operation.CREATE_CONTACT)

    async def get_contact(self, contact_id: str) -> Contact:
        raise self._unsupported(Operation.GET_CONTACT)

    async def find_contacts(self, call: FindContactsInput) -> ContactPage:
        raise self._unsupported(Operation.FIND_CONTACTS)

    async def find_duplicates(self, call: FindDuplicatesInput) -> DuplicatePage:
        raise self._unsupported(Operation.FIND_DUPLICATES)

    async def merge_contacts(self, call: MergeContactsInput) -> MergeResult:
        raise self._unsupported(Operation.MERGE_CONTACTS)

    async def delete_contact(self, call: DeleteContactInput) -> DeletedContact:
        raise self._unsupported(Operation.DELETE_CONTACT)

    async def detach_identity(self, call: DetachIdentityInput) -> DetachedIdentity:
        raise self._unsupported(Operation.DETACH_IDENTITY)

    async def detach_contact(self, call: DetachContactInput) -> DetachedContact:
        raise self._unsupported(Operation.DETACH_CONTACT)
