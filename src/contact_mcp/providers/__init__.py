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
    "local": "contact_mcp.providers.local:LocalStore",
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


def _check_credentials(name: str, settings: Settings) -> None:
    if name not in HTTP_PROVIDERS:
        return
    upper = name.upper()
    key = settings.api_key(name)
    if key is None or not key.get_secret_value().strip():
        raise ConfigError(f"{upper}_API_KEY is not set, but CONTACT_MCP_PROVIDERS enables {name}")
    url = settings.base_url(name)
    if not url:
        raise ConfigError(f"{upper}_BASE_URL is not set; {name} publishes no default host, so it must be configured")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{upper}_BASE_URL must start with http:// or https://")


def select(settings: Settings) -> dict[Operation, str]:
    """Decide, without I/O, which enabled provider serves each operation; refuse ambiguity and missing credentials."""
    chosen: dict[Operation, str] = {}
    for name in settings.providers:
        factory = provider_class(name)
        _check_credentials(name, settings)
        for operation in factory.operations:
            if operation in chosen:
                raise ConfigError(
                    f"CONTACT_MCP_PROVIDERS: both {chosen[operation]} and {name} serve {operation}; enable only one"
                )
            chosen[operation] = name
    return chosen


def build_provider(name: str, settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None) -> Provider:
    return provider_class(name).from_settings(settings, transport=transport)
