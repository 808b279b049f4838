"""The history of writes as the running server keeps it: appended after each write, read by `get_contact`, pruned
by age, scrubbed when a contact is deleted — in the store `CONTACT_MCP_DB` names, whichever providers serve tools.

`HistoryLog` wraps the store backend's history methods (`store/backend.py`) with what the server needs around them:
a failure to record never fails the call that was recorded (the write happened; it is logged without values and
counted in `failed`, and never replayed), and retention runs at start-up and then at most once an hour, on a write.
`CONTACT_MCP_HISTORY_RETENTION_DAYS` (default 365; 0 keeps everything) is how long rows are kept.

Which database: the local store's own backend when `local` is enabled (one database, one set of connections),
else a backend opened for the history alone (`needs_store`). Imports the store's interface, not a backend.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Final

from contact_mcp.models import HistoryEntry
from contact_mcp.settings import Settings
from contact_mcp.store.backend import Backend
from contact_mcp.store.history import HistoryPage, HistoryQuery, InTransaction
from contact_mcp.store.rules import instant

log = logging.getLogger("contact_mcp.history")

PRUNE_EVERY_S: Final = 3600.0
"""How often, at most, a write also prunes rows past the retention period (start-up always does)."""


def needs_store(settings: Settings, *, writes: bool) -> bool:
    """Whether the server opens the history's database: when a served tool writes (its calls are recorded), when
    `local` is enabled (the same database), or when CONTACT_MCP_DB is set (a read-only server showing the history
    another server records). Otherwise, e.g. a read-only server on provider APIs, no database is touched."""
    return writes or "local" in settings.providers or "db" in settings.model_fields_set


def preflight(settings: Settings, *, writes: bool, enabled: tuple[str, ...]) -> bool:
    """At start-up, with the providers' preflight: whether the server keeps (or shows) a history, having checked
    its database when `local` does not already (writable when a served tool writes, as the store itself is)."""
    from contact_mcp.store import LocalStore

    keeps = needs_store(settings, writes=writes)
    if keeps and "local" not in enabled:
        LocalStore.preflight(settings)
    return keeps


class HistoryLog:
    """The history in one opened store backend, with the failure counter and the retention schedule."""

    def __init__(self, backend: Backend, *, retention_days: int = 0) -> None:
        self.backend = backend
        self.retention_days = retention_days
        self.recorded = 0
        """Entries written since start-up."""
        self.failed = 0
        """Entries that could not be written (their writes succeeded or failed as they did; nothing is replayed)."""
        self._pruned_at: float | None = None

    def counts(self) -> dict[str, int]:
        """What `/healthz` reports."""
        return {"recorded": self.recorded, "failed": self.failed}

    async def record(self, entry: HistoryEntry) -> bool:
        """Append one entry; False (logged, counted) when the store refused it. Never raises for a store failure."""
        try:
            await self.backend.add_history([entry])
        except Exception as exc:
            self._lost(entry.tool, type(exc).__name__)
            log.debug("history: the store's failure", exc_info=True)
            return False
        await self._kept()
        return True

    async def taken(self, pending: InTransaction, tool: str) -> None:
        """Count an entry the store's write appended in its own transaction (or could not: `refused`)."""
        if pending.state == "recorded":
            await self._kept()
        elif pending.state == "refused":
            self._lost(tool, pending.error or "Exception")

    async def _kept(self) -> None:
        self.recorded += 1
        if self._due():
            await self.prune()

    def _lost(self, tool: str, error: str) -> None:
        self.failed += 1
        # The tool and the error's type only: the entry's values are the caller's data.
        log.warning("history: could not record a %s call (%s); %d unrecorded", tool, error, self.failed)

    async def scrub(self, contact_id: str, provider: str | None) -> None:
        """Remove the values from a deleted contact's rows; a failure is logged and counted like a lost entry."""
        try:
            await self.backend.scrub_history(contact_id, provider)
        except Exception as exc:
            self.failed += 1
            log.warning("history: could not scrub a deleted contact's entries (%s)", type(exc).__name__)

    async def page(self, query: HistoryQuery) -> HistoryPage:
        return await self.backend.history_page(query)

    def cutoff(self, now: datetime | None = None) -> str | None:
        """The instant before which rows are pruned, or None when everything is kept."""
        if self.retention_days <= 0:
            return None
        return instant((now or datetime.now(UTC)) - timedelta(days=self.retention_days))

    async def prune(self) -> int:
        """Delete rows past retention now; the count deleted (0 when nothing is pruned or the store failed)."""
        self._pruned_at = time.monotonic()
        before = self.cutoff()
        if before is None:
            return 0
        try:
            deleted = await self.backend.prune_history(before)
        except Exception as exc:
            log.warning("history: pruning failed (%s); retried within the hour", type(exc).__name__)
            return 0
        if deleted:
            log.info("history: pruned %d entries older than %d days", deleted, self.retention_days)
        return deleted

    def _due(self) -> bool:
        return self._pruned_at is None or time.monotonic() - self._pruned_at >= PRUNE_EVERY_S
