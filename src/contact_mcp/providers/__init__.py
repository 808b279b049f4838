"""The provider registry: which providers exist, which operation each serves, and how to build them.

Provider modules are imported only when enabled, so an installation that uses the local store never imports the
HTTP clients (start-up time is what a stdio host pays on every launch).
"""

from __future__ import annotations

import importlib
from typing import Protocol

import httpx2

from contact_mcp.errors import ConfigError
from contact_mcp.models import Operation
from contact_mcp.providers.base import Provider
from contact_mcp.settings import HTTP_PROVIDERS, Settings

__all__ = ["Provider", "ProviderFactory", "build_provider", "provider_class", "select"]

_REGISTRY: dict[str, str] = {
    "local": "contact_mcp.store:LocalStore",
    "feather": "contact_mcp.providers.feather:FeatherClient",
    "tetherai": "contact_mcp.providers.tetherai:TetherAIClient",
    "blooio": "contact_mcp.providers.blooio:BlooioClient",
    "featurebase": "contact_mcp.providers.featurebase:FeaturebaseClient",
    "protocol": "contact_mcp.providers.protocol:ProtocolClient",
}


_READS = frozenset({Operation.GET_CONTACT, Operation.FIND_CONTACTS})


class ProviderFactory(Protocol):
    name: str
    display_name: str
    operations: frozenset[Operation]

    def preflight(self, settings: Settings) -> None: ...

    def from_settings(self, settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None) -> Provider: ...


def provider_class(name: str) -> ProviderFactory:
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"CONTACT_MCP_PROVIDERS: unknown provider {name!r}; known: {', '.join(_REGISTRY)}") from None
    module_name, _, attr = target.partition(":")
    factory: ProviderFactory = getattr(importlib.import_module(module_name), attr)
    return factory


def select(settings: Settings) -> dict[Operation, str]:
    """Decide, without I/O, which enabled provider serves each operation; refuse ambiguity and missing credentials."""
    chosen: dict[Operation, str] = {}
    for name in settings.providers:
        factory = provider_class(name)
        if name in HTTP_PROVIDERS:
            settings.credentials(name)
        for operation in factory.operations:
            if operation in chosen and operation in _READS:
                # Several providers may serve the reads; the first enabled one does until the plan (with a
                # `provider` argument on the reads) replaces this selection.
                continue
            if operation in chosen:
                raise ConfigError(
                    f"CONTACT_MCP_PROVIDERS: both {chosen[operation]} and {name} serve {operation}; enable only one"
                )
            chosen[operation] = name
    return chosen


def build_provider(name: str, settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None) -> Provider:
    return provider_class(name).from_settings(settings, transport=transport)
