"""Serving the server: stdio, SSE and streamable HTTP, and the security every HTTP deployment gets.

`run()` is the process entry the CLI calls. On stdio, stdout is the wire and nothing else may reach it: logs go to
stderr and fd 1 points at stderr whenever the SDK is not holding it. Over HTTP, `build_http_app()` is the deployable
app: DNS-rebinding protection is always on with an explicit Host/Origin allowlist (the SDK would silently turn it off
for a non-loopback bind), a bearer token is required when bound beyond loopback and enforced whenever one is
configured, and `/healthz` answers without it. uvicorn runs with our logging (stderr, `settings.log_level`).
"""

from __future__ import annotations

import gc
import hmac
import ipaddress
import json
import logging
import os
import sys
from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from typing import Literal

import anyio
import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from contact_mcp.errors import ConfigError
from contact_mcp.server import ContactServer, build_server
from contact_mcp.settings import Settings

log = logging.getLogger("contact_mcp.transport")

TOKEN_ENV = "CONTACT_MCP_HTTP_TOKEN"
HEALTH_PATH = "/healthz"
MCP_PATH = "/mcp"
SSE_PATH = "/sse"
MESSAGE_PATH = "/messages/"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_WILDCARD_BINDS = ("", "0.0.0.0", "::", "[::]")
# Long-lived SSE/GET streams would otherwise hold a SIGTERM'd uvicorn open until every client leaves.
_GRACEFUL_SHUTDOWN_S = 5


def run(
    settings: Settings,
    *,
    transport: Literal["stdio", "sse", "http"] = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Build the server and serve it until interrupted; `ConfigError` for a configuration that cannot work."""
    if transport == "stdio":
        _run_stdio(settings)
        return
    token = required_token(settings, host)  # refuse before touching logging or the providers
    configure_logging(settings.log_level)
    server = build_server(settings)
    app = build_http_app(server, settings, transport=transport, host=host)
    freeze_start_up_heap()
    log.info("serving %s on %s port %d; bearer token %s", transport, host, port, "required" if token else "off")
    if host.strip().lower() in _WILDCARD_BINDS and not settings.allowed_hosts:
        # DNS-rebinding protection would answer 421 to every client that reaches us by a real name
        log.warning(
            "bound to %s: only loopback Host headers are accepted; list the names clients use in "
            "CONTACT_MCP_ALLOWED_HOSTS",
            host or "all interfaces",
        )
    config = uvicorn.Config(
        app,
        host=host.strip("[]"),
        port=port,
        log_config=None,  # uvicorn's default config sends access logs to stdout; ours go to stderr
        log_level=settings.log_level.lower(),
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
    )
    with suppress(KeyboardInterrupt):  # uvicorn handles SIGINT itself; this covers a second Ctrl-C
        uvicorn.Server(config).run()


def configure_logging(level: str) -> None:
    """Every log record, including uvicorn's and Python warnings, to stderr at `level`."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.captureWarnings(True)


def freeze_start_up_heap() -> None:
    """Take what start-up built out of the garbage collector's reach and let the collector run, before serving.

    Modules, classes and tool schemas (~90k objects with the SDK) live as long as the process, yet every full
    collection would walk them again: with 32 calls in flight the bare SDK server spends 34–60 µs a call in GC,
    contact-mcp 21–36 µs frozen (`python -m bench.insitu --in-flight 32`). What calls create is still collected.
    No `gc.collect()` first: on our machines it adds ~60 ms to every launch to free ~300 objects (~1,500 when
    `contact_mcp.__main__` kept the collector off during start-up).
    """
    gc.freeze()
    gc.enable()


# ---------- stdio ----------


def _run_stdio(settings: Settings) -> None:
    with _stdout_diverted() as release_for_protocol:
        configure_logging(settings.log_level)
        server = build_server(settings)
        freeze_start_up_heap()
        release_for_protocol()
        with suppress(KeyboardInterrupt):
            anyio.run(server.run_stdio_async)


@contextmanager
def _stdout_diverted() -> Generator[Callable[[], None], None, None]:
    """Point fd 1 at stderr; the yielded callable hands the real stdout back for the SDK's stdio transport.

    The SDK diverts fd 1 itself only while it serves. This covers start-up (logging set-up, building the server) and
    the end: `print()` output still buffered in `sys.stdout` is flushed into stderr, never onto the wire.
    """
    sys.stdout.flush()
    try:
        wire = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # pragma: no cover - no usable descriptors; the SDK still claims fd 1 while serving
        yield lambda: None
        return

    def release() -> None:
        sys.stdout.flush()
        os.dup2(wire, 1)

    try:
        yield release
    finally:
        os.dup2(2, 1)
        sys.stdout.flush()  # whatever `print()` left buffered lands on stderr, then the caller gets its stdout back
        os.dup2(wire, 1)
        os.close(wire)


# ---------- HTTP ----------


def build_http_app(
    server: ContactServer, settings: Settings, *, transport: Literal["sse", "http"], host: str
) -> Starlette:
    """The deployable ASGI app for `transport`, bound (or served behind a proxy) as `host`.

    Streamable HTTP answers at `/mcp`, SSE at `/sse` and `/messages/`; `/healthz` answers `{"ok": true}`.
    The Starlette lifespan runs the streamable-HTTP session manager; an ASGI host that sends no lifespan events
    (httpx2.ASGITransport) must enter `server.session_manager.run()` itself.
    """
    token = required_token(settings, host)
    security = transport_security(settings, host)
    if transport == "http":
        mcp_app = server.streamable_http_app(streamable_http_path=MCP_PATH, transport_security=security, host=host)
        lifespan = _session_manager_lifespan(server)
    elif transport == "sse":
        mcp_app = server.sse_app(sse_path=SSE_PATH, message_path=MESSAGE_PATH, transport_security=security, host=host)
        lifespan = None  # SSE enters the server lifespan once per connection
    else:
        raise ValueError(f"unknown HTTP transport {transport!r}; expected 'http' or 'sse'")
    middleware = [Middleware(BearerTokenMiddleware, token=token, exempt=(HEALTH_PATH,))] if token else []
    return Starlette(
        routes=[Route(HEALTH_PATH, _healthz, methods=["GET"]), Mount("/", app=mcp_app)],
        middleware=middleware,
        lifespan=lifespan,
    )


def _session_manager_lifespan(server: ContactServer) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncGenerator[None, None]:
        async with server.session_manager.run():  # the mounted MCP app's own lifespan never runs
            yield

    return lifespan


async def _healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost; every other bind (0.0.0.0, ::, a name, a LAN address) is reachable."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def required_token(settings: Settings, host: str) -> bytes | None:
    """The bearer token HTTP requests must carry, or None; `ConfigError` if `host` is reachable without one."""
    secret: SecretStr | None = settings.http_token
    if secret is not None and not secret.get_secret_value().strip():
        raise ConfigError(f"{TOKEN_ENV} is set but empty; set it to a long random secret or unset it")
    if secret is None:
        if not is_loopback(host):
            raise ConfigError(
                f"refusing to serve HTTP on {host or 'all interfaces'} without a bearer token: set {TOKEN_ENV} "
                "to a long random secret (clients send 'Authorization: Bearer <token>'), or bind 127.0.0.1"
            )
        return None
    return secret.get_secret_value().encode()


def _host_patterns(entry: str) -> list[str]:
    """`name` -> [`name`, `name:*`]; an entry with a port is kept as is; a bare IPv6 address is bracketed."""
    name = entry.strip().lower()
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        pass
    else:
        name = f"[{address}]" if address.version == 6 else str(address)
    has_port = ":" in name.rpartition("]")[2] if name.startswith("[") else ":" in name
    return [name] if has_port else [name, f"{name}:*"]


def transport_security(settings: Settings, host: str) -> TransportSecuritySettings:
    """DNS-rebinding protection, always on: loopback names, the bound host and `CONTACT_MCP_ALLOWED_HOSTS`."""
    entries: list[str] = [*LOOPBACK_NAMES]
    if host.strip().lower() not in _WILDCARD_BINDS:
        entries.append(host)
    entries.extend(settings.allowed_hosts)
    hosts = list(dict.fromkeys(pattern for entry in entries for pattern in _host_patterns(entry)))
    origins = [f"{scheme}://{pattern}" for pattern in hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


class BearerTokenMiddleware:
    """Pure ASGI: every HTTP request but the exempt paths carries `Authorization: Bearer <token>`, else 401.

    Lifespan scopes pass through untouched. The comparison is constant-time and the token is never logged.
    """

    def __init__(self, app: ASGIApp, *, token: bytes, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self._token = token
        self._exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        guarded = scope["type"] in ("http", "websocket") and scope["path"] not in self._exempt
        if guarded and not self._authorized(scope):
            await self._deny(scope, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        header = next((value for key, value in scope["headers"] if key == b"authorization"), b"")
        scheme, _, presented = bytes(header).partition(b" ")
        # compare_digest even for a wrong scheme, so timing does not say which part was wrong
        matches = hmac.compare_digest(presented.strip(), self._token)
        return matches and scheme.lower() == b"bearer"

    @staticmethod
    async def _deny(scope: Scope, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"error": "unauthorized", "message": "missing or invalid bearer token"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"www-authenticate", b"Bearer"),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
