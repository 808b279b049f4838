"""The floor: bare MCP SDK servers that contact-mcp is measured against, in-process or as a process of their own.

`trivial` is an `MCPServer` with one async tool, `ping`, that accepts the arguments our tools get and does nothing
with them. `provider` is an `MCPServer` whose `upsert_contact` sends the same Featurebase `POST /v2/contacts` our
client sends, with one `httpx2.AsyncClient` opened in the lifespan (the SDK's own pattern) and no retries, error
mapping or normalisation. Both log at WARNING as contact-mcp does. Over HTTP they get the same uvicorn settings and
the same DNS-rebinding allowlist contact-mcp serves on 127.0.0.1, so the two apps differ only by what is ours.

This file imports nothing from contact-mcp or the benchmark, so its cold start is the SDK's alone:
`python bench/baseline_server.py --kind trivial|provider --transport stdio|http [--port N]`; the provider reads the
fake's URL and key from BENCH_FAKE_URL and BENCH_FAKE_KEY.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx2
from mcp.server.mcpserver import Context, MCPServer

if TYPE_CHECKING:
    from mcp.server.transport_security import TransportSecuritySettings

FEATUREBASE_VERSION = "2026-01-01.nova"
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def trivial_server() -> MCPServer:
    server = MCPServer("bench-trivial", version="1.0.0", log_level="WARNING")

    @server.tool()
    async def ping(
        email: str | None = None,
        user_id: str | None = None,
        name: str | None = None,
        phone: str | None = None,
        contact_id: str | None = None,
    ) -> str:
        """Answer ok."""
        return "ok"

    return server


@dataclass
class ProviderState:
    http: httpx2.AsyncClient


def provider_server(base_url: str, api_key: str) -> MCPServer[ProviderState]:
    @asynccontextmanager
    async def lifespan(_server: MCPServer[ProviderState]) -> AsyncIterator[ProviderState]:
        headers = {
            "Accept": "application/json",
            "User-Agent": "bench-baseline",
            "Authorization": f"Bearer {api_key}",
            "Featurebase-Version": FEATUREBASE_VERSION,
        }
        timeout = httpx2.Timeout(30.0, connect=5.0)
        async with httpx2.AsyncClient(base_url=base_url, headers=headers, timeout=timeout) as http:
            yield ProviderState(http=http)

    server = MCPServer("bench-provider", version="1.0.0", log_level="WARNING", lifespan=lifespan)

    @server.tool()
    async def upsert_contact(
        ctx: Context[ProviderState],
        email: str | None = None,
        user_id: str | None = None,
        name: str | None = None,
        phone: str | None = None,
    ) -> dict[str, Any]:
        """Create or update a Featurebase contact."""
        fields = (("email", email), ("userId", user_id), ("name", name), ("phone", phone))
        body = {key: value for key, value in fields if value is not None}
        response = await ctx.request_context.lifespan_context.http.post("/v2/contacts", json=body)
        response.raise_for_status()
        contact = response.json()
        return {key: contact.get(key) for key in ("id", "userId", "email", "name", "phone")}

    return server


def transport_security() -> TransportSecuritySettings:
    """What contact-mcp allows when bound to 127.0.0.1: the loopback names, with any port."""
    from mcp.server.transport_security import TransportSecuritySettings

    hosts = [pattern for name in _LOOPBACK for pattern in (name, f"{name}:*")]
    origins = [f"{scheme}://{host}" for host in hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def serve_http(server: MCPServer[Any], port: int) -> None:
    import uvicorn  # only here: a stdio server has no use for it, and the floor imports nothing it does not use

    app = server.streamable_http_app(streamable_http_path="/mcp", transport_security=transport_security())
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        log_level="warning",
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=("trivial", "provider"), default="trivial")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if args.kind == "provider":
        server: MCPServer[Any] = provider_server(os.environ["BENCH_FAKE_URL"], os.environ["BENCH_FAKE_KEY"])
    else:
        server = trivial_server()
    if args.transport == "http":
        serve_http(server, args.port)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
