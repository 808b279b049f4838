"""The provider registry: which providers exist and how to build each. What a provider serves it declares itself
(`operations`); which one serves which tool is the plan's to decide (`tools.plan`).

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
from contact_mcp.settings import Settings

__all__ = ["Provider", "ProviderFactory", "build_provider", "provider_class"]

_REGISTRY: dict[str, str] = {
    "local": "contact_mcp.store:LocalStore",
    "feather": "contact_mcp.providers.feather:FeatherClient",
    "tetherai": "contact_mcp.providers.tetherai:TetherAIClient",
    "blooio": "contact_mcp.providers.blooio:BlooioClient",
    "featurebase": "contact_mcp.providers.featurebase:FeaturebaseClient",
    "protocol": "contact_mcp.providers.protocol:ProtocolClient",
}


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


def build_provider(name: str, settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None) -> Provider:
    return provider_class(name).from_settings(settings, transport=transport)
