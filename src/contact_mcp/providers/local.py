"""TEMPORARY STUB - replaced by the real SQLite store."""

from __future__ import annotations

import httpx2

from contact_mcp.models import Operation
from contact_mcp.providers.base import Provider
from contact_mcp.settings import Settings


class LocalStore(Provider):
    name = "local"
    display_name = "local"
    operations = frozenset(Operation)

    @classmethod
    def from_settings(cls, settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None) -> LocalStore:
        return cls()
