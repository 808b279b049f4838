"""MCP over HTTP (streamable HTTP at `/mcp`, legacy SSE at `/sse`), with what every HTTP deployment gets.

`build_http_app()` is the deployable ASGI app, `run_http()` serves it with uvicorn.

- **Who may call**: a bearer token is required when bound beyond loopback (at least 32 characters there) and
  enforced whenever one is configured; DNS-rebinding protection is always on with an explicit Host/Origin allowlist
  (the SDK would silently turn it off for a non-loopback bind), matching Host and Origin whatever their case. A
  rejected Host is one rate-limited WARNING.
- **Sessions**: stateful streamable HTTP keeps at most `CONTACT_MCP_MAX_SESSIONS`, evicting idle ones at the cap
  (`sessions.py`); `stateless=True` keeps none, so any replica answers any request. Requests at protocol
  2026-07-28 carry no session in either mode (the SDK serves them per request).
- **Connections**: at most `CONTACT_MCP_MAX_CONNECTIONS` open at once, fewer if the open-files limit is lower;
  one more is answered 503 and closed at once (`wire.py`). A request's head must arrive within
  `CONTACT_MCP_REQUEST_TIMEOUT` (`DrainingServer`).
- **Probes**: `/healthz` answers 200 while the process lives, saying whether sessions are saturated; `/readyz`
  answers 503 while the providers' readiness check fails or the server is draining. Neither needs the token.
- **Draining**: the first SIGTERM (or Ctrl-C) turns `/readyz` to 503 at once, lets the tool calls in flight
  finish (at most `CONTACT_MCP_DRAIN_TIMEOUT`, then each is answered that the server stopped: `Lifecycle.cut_off`),
  then stops; a second signal stops at once.
- **One lifespan**: the providers are opened once for the process; SSE connections share them (the SDK's SSE app
  would open a new database connection and HTTP clients per connection).
- **Malformed bodies**: a batch, a `null` or a body that is not a JSON-RPC message keeps its 400, with a JSON-RPC
  error that says what is wrong instead of pydantic's dump of the input; a request whose id is not a string or an
  integer gets one too (the SDK took it for a notification: 202, and no answer ever).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import socket
import time
from collections.abc import AsyncGenerator, Callable, Collection
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from types import FrameType
from typing import Any, Literal, cast

import anyio
import uvicorn
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.runner import serve_dual_era_loop
from mcp.server.sse import SseServerTransport
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import JSONRPCError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contact_mcp.errors import ConfigError, ContactError, ErrorCode, ErrorInfo, error_result
from contact_mcp.logs import configure_logging, rate_limit
from contact_mcp.serve import freeze_start_up_heap
from contact_mcp.serve.messages import (
    RETRY_AFTER_S,
    SERVER_ERROR,
    BodyReads,
    error_response,
    parse_message,
    refusals,
    replaying,
)
from contact_mcp.serve.messages import log as messages_log
from contact_mcp.serve.sessions import BoundedSessionManager
from contact_mcp.serve.wire import capped, connection_cap
from contact_mcp.server import ContactServer, build_server
from contact_mcp.settings import Settings

log = logging.getLogger("contact_mcp.serve.http")
# A load balancer asks every few seconds: while the store is down, one line per probe would be a flood.
_readiness_log = logging.getLogger("contact_mcp.serve.readiness")

TOKEN_ENV = "CONTACT_MCP_HTTP_TOKEN"
MIN_TOKEN_LENGTH = 32
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
MCP_PATH = "/mcp"
SSE_PATH = "/sse"
MESSAGE_PATH = "/messages/"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_WILDCARD_BINDS = ("", "0.0.0.0", "::", "[::]")
# After the calls in flight are done, long-lived SSE/GET streams still hold uvicorn open until their clients leave.
_STREAMS_GRACE_S = 5
_TICKS_PER_S = 10  # uvicorn's on_tick runs every 0.1 s
_READY_TIMEOUT_S = 2.0
# The SDK's loggers that warn once per rejected request (a foreign Host, a bad session id, a body that is not a
# message, which the SSE transport logs with a full traceback): a flood of those would be a flood of stderr.
_SDK_NOISY_LOGGERS = ("mcp.server.transport_security", "mcp.server.streamable_http_manager", "mcp.server.sse")
# uvicorn's, which warns once per request that is not HTTP (and twice per WebSocket upgrade asked for): anyone can send
# those. Its errors (an exception in the app) keep their tracebacks.
_UVICORN_LOGGER = "uvicorn.error"

HttpTransport = Literal["sse", "http"]


def run_http(settings: Settings, *, transport: HttpTransport, host: str, port: int, stateless: bool) -> None:
    required_token(settings, host)  # refuse before touching logging or the providers
    configure_logging(settings.log_level)
    rate_limit(*_SDK_NOISY_LOGGERS, tracebacks=False)
    rate_limit(_readiness_log.name, messages_log.name, refusals.name, _UVICORN_LOGGER)
    server = build_server(settings)
    app = build_http_app(server, settings, transport=transport, host=host, stateless=stateless)
    max_connections = connection_cap(settings.max_connections)
    freeze_start_up_heap()
    mode = "stateless " if stateless and transport == "http" else ""
    log.info(
        "serving %s%s on %s port %d, at most %d connections; bearer token %s",
        mode,
        transport,
        host,
        port,
        max_connections,
        "required" if settings.http_token else "off",
    )
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
        timeout_graceful_shutdown=_STREAMS_GRACE_S,
        http=capped(max_connections),
    )
    lifecycle: Lifecycle = app.state.lifecycle
    uvicorn_server = DrainingServer(
        config, lifecycle, timeout_s=settings.drain_timeout_s, request_timeout_s=settings.request_timeout_s
    )
    lifecycle.count_connections(uvicorn_server.server_state.connections, max_connections)
    with suppress(KeyboardInterrupt):  # a second Ctrl-C while uvicorn shuts down
        uvicorn_server.run()


# ---------- the app ----------


def _stopped_answer(method: str) -> HandlerResult:
    """The answer to a request the drain timeout ended: a tool's error result, which an agent reads, else a JSON-RPC
    error. Retryable; whether a write took effect is unknown (a database may have committed it as it was ended)."""
    message = "the server stopped before the call finished (it is shutting down: CONTACT_MCP_DRAIN_TIMEOUT)"
    if method != "tools/call":
        raise MCPError(SERVER_ERROR, f"{message}; retry")
    return error_result(
        ErrorInfo(
            code=ErrorCode.PROVIDER_UNAVAILABLE,
            message=f"{message}; a write may or may not have taken effect",
            hint="Retry (another replica, or this server once restarted, answers); read the contact first before "
            "retrying a write",
            retryable=True,
            retry_after_s=1.0,
        )
    )


class Lifecycle:
    """What the probes report and the drain waits on: calls in flight, draining, the session manager.

    Registered as the SDK server's outermost middleware, it counts every request (not notification) being
    handled, whatever transport brought it.
    """

    def __init__(
        self,
        server: ContactServer,
        sessions: BoundedSessionManager | None,
        *,
        body_reads: BodyReads,
        sse: _Sse | None = None,
    ) -> None:
        self.server = server
        self.sessions = sessions
        self.body_reads = body_reads
        self.sse = sse
        self.draining = False
        self._calls: set[asyncio.Task[Any]] = set()  # the task handling each request in flight (the SDK's, one each)
        self._ended: set[asyncio.Task[Any]] = set()  # those `cut_off` cancelled
        self._connections: tuple[Collection[object], int] | None = None

    def count_connections(self, connections: Collection[object], cap: int) -> None:
        """Report the server's open connections (uvicorn's own set) and their cap in `/healthz`."""
        self._connections = (connections, cap)

    @property
    def in_flight(self) -> int:
        return len(self._calls)

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.request_id is None:
            return await call_next(ctx)
        task = asyncio.current_task()
        assert task is not None  # a request is handled in a task of its own
        self._calls.add(task)
        try:
            return await call_next(ctx)
        except asyncio.CancelledError:
            if task not in self._ended:
                raise
            task.uncancel()  # the cancellation was ours (`cut_off`), and is answered here
            return _stopped_answer(ctx.method)
        finally:
            self._calls.discard(task)
            self._ended.discard(task)

    def cut_off(self) -> None:
        """At the drain timeout: end the calls still in flight, each answered that the server stopped before it
        finished (uvicorn would cancel them later, at the end of its grace period, with a 500 or an empty stream).
        A task's own cancellation, not a cancel scope per call: one costs 7 µs on every request."""
        for task in self._calls - self._ended:
            self._ended.add(task)
            task.cancel()

    def health(self) -> dict[str, object]:
        body: dict[str, object] = {"ok": True, "draining": self.draining, "in_flight": self.in_flight}
        if self._connections is not None:
            connections, cap = self._connections
            body["connections"] = {"open": len(connections), "max": cap, "saturated": len(connections) >= cap}
        if self.server.history is not None:
            body["history"] = self.server.history.counts()
        if self.sessions is not None:
            body["stateless"] = self.sessions.stateless
            if not self.sessions.stateless:
                body["sessions"] = {
                    "open": self.sessions.open_sessions,
                    "max": self.sessions.max_sessions,
                    "evicted": self.sessions.evicted,
                    "saturated": self.sessions.saturated,
                }
        if self.sse is not None:
            streams, cap = self.sse.open_streams, self.sse.max_streams
            body["sessions"] = {"open": streams, "max": cap, "saturated": streams >= cap}
        return body

    async def readiness(self) -> str | None:
        """None when ready, else why not (one line, no secrets)."""
        if self.draining:
            return "draining"
        reason = "readiness check timed out"
        with anyio.move_on_after(_READY_TIMEOUT_S):
            try:
                await self.server.check_ready()
            except ContactError as exc:
                reason = exc.message
            except Exception as exc:
                reason = f"readiness check failed: {type(exc).__name__}"
                _readiness_log.warning("not ready: %s", reason, exc_info=True)
                return reason
            else:
                return None
        _readiness_log.warning("not ready: %s", reason)
        return reason


def build_http_app(
    server: ContactServer,
    settings: Settings,
    *,
    transport: HttpTransport,
    host: str,
    stateless: bool = False,
) -> Starlette:
    """The deployable ASGI app for `transport`, bound (or served behind a proxy) as `host`.

    Its lifespan opens the providers (an ASGI host that sends no lifespan events, like `httpx2.ASGITransport`,
    must enter `app.router.lifespan_context(app)` itself); `app.state.lifecycle` is its `Lifecycle`.
    """
    token = required_token(settings, host)
    security = transport_security(settings, host)
    body_reads = BodyReads(settings.request_timeout_s)
    if transport == "http":
        sessions = BoundedSessionManager(
            server.lowlevel,
            stateless=stateless,
            security_settings=security,
            max_sessions=settings.max_sessions,
            session_idle_timeout=settings.session_idle_timeout_s,
            body_reads=body_reads,
        )
        lifecycle = Lifecycle(server, sessions, body_reads=body_reads)
        routes: list[Route | Mount] = [Route(MCP_PATH, endpoint=_StreamableHttp(sessions))]
        lifespan = _lifespan(sessions.run)
    elif transport == "sse":
        sse = _Sse(server, security, max_streams=settings.max_sessions, body_reads=body_reads)
        lifecycle = Lifecycle(server, None, body_reads=body_reads, sse=sse)
        routes = [
            Route(SSE_PATH, endpoint=sse, methods=["GET"]),
            Mount(MESSAGE_PATH, app=sse.post_message),
        ]
        lifespan = _lifespan(sse.open)
    else:
        raise ValueError(f"unknown HTTP transport {transport!r}; expected 'http' or 'sse'")
    server.middleware.insert(0, lifecycle)
    server.transport = transport

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse(lifecycle.health())

    async def readyz(_request: Request) -> JSONResponse:
        reason = await lifecycle.readiness()
        if reason is None:
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False, "reason": reason}, status_code=503, headers={"Retry-After": "1"})

    probes = (HEALTH_PATH, READY_PATH)
    middleware = [Middleware(LowerCaseHost)]
    if token:
        middleware.append(Middleware(BearerTokenMiddleware, token=token, exempt=probes))
    app = Starlette(
        routes=[Route(HEALTH_PATH, healthz, methods=["GET"]), Route(READY_PATH, readyz, methods=["GET"]), *routes],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.lifecycle = lifecycle
    return app


Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


def _lifespan(run: Callable[[], AbstractAsyncContextManager[None]]) -> Lifespan:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncGenerator[None, None]:
        async with run():
            yield

    return lifespan


class _StreamableHttp:
    """`/mcp`: the session manager, with `Retry-After` on its 503 and malformed-body 400s restated."""

    def __init__(self, sessions: BoundedSessionManager) -> None:
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.sessions.handle_request(scope, receive, _edited_errors(send))


def _edited_errors(send: Send) -> Send:
    """Wrap `send`: a 503 gets `Retry-After`; a 400 whose JSON-RPC error quotes pydantic is restated."""
    held: list[Message] = []

    async def edited(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 503:
            retry_after = (b"retry-after", str(RETRY_AFTER_S).encode())
            message = {**message, "headers": [*message.get("headers", []), retry_after]}
        elif message["type"] == "http.response.start" and message["status"] == 400:
            held.append(message)
            return
        if held and message["type"] == "http.response.body":
            body = b"".join(m.get("body", b"") for m in held[1:]) + message.get("body", b"")
            if message.get("more_body", False):
                held.append(message)
                return
            start = held[0]
            held.clear()
            body = _restated(body)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await send(message)

    return edited


def _restated(body: bytes) -> bytes:
    # The SDK (2.3) answers a body that is JSON but not one JSON-RPC message with
    # "Validation error: <pydantic's report, the rejected input and errors.pydantic.dev links>" (-32602), and
    # invalid JSON with "Parse error: <parser detail>". Keep the error, say it plainly, use the spec's codes.
    try:
        error = json.loads(body)["error"]
        text = str(error["message"])
    except (ValueError, KeyError, TypeError):
        return body
    if text.startswith("Validation error"):
        error["code"] = -32600
        error["message"] = (
            "Invalid Request: the body must be one JSON-RPC 2.0 request, notification or response object "
            "(batches and null are not accepted)"
        )
    elif text.startswith("Parse error"):
        error["code"] = -32700
        error["message"] = "Parse error: the body is not valid JSON"
    else:
        return body
    return json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()


class _Sse:
    """`/sse` and `/messages/`: the SDK's SSE transport, every connection served on the one open lifespan.

    An SSE connection is a session: at most `max_streams` are open at once (`CONTACT_MCP_MAX_SESSIONS`), and one
    more is answered 503 with `Retry-After` until one closes. The SDK keeps no cap (each stream held about 97 KB),
    and none can be evicted as an idle streamable-HTTP session is: its client is still listening."""

    def __init__(
        self, server: ContactServer, security: TransportSecuritySettings, *, max_streams: int, body_reads: BodyReads
    ) -> None:
        self.server = server
        self.transport = SseServerTransport(MESSAGE_PATH, security_settings=security)
        self._guard = TransportSecurityMiddleware(security)
        self._state: object = None
        self.max_streams = max_streams
        self.open_streams = 0
        self._body_reads = body_reads

    @asynccontextmanager
    async def open(self) -> AsyncGenerator[None]:
        lowlevel = self.server.lowlevel
        async with lowlevel.lifespan(lowlevel) as state:
            self._state = state
            try:
                yield
            finally:
                self._state = None

    async def post_message(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`/messages/`: a body that is not one JSON-RPC message is answered here, 400 with the JSON-RPC error.

        The SDK would answer a plain-text "Could not parse message" and log a full traceback at ERROR for each.
        """
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.transport.handle_post_message(scope, receive, send)
            return
        refusal = await self._guard.validate_request(Request(scope, receive), is_post=True)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        read = await self._body_reads.read(scope, receive, send)
        if read is None:
            return
        body, more = read
        if not more:
            verdict = parse_message(body, where="sse")
            if isinstance(verdict, JSONRPCError):
                answer = verdict.model_dump_json(by_alias=True, exclude_unset=True)
                await Response(answer, status_code=400, media_type="application/json")(scope, receive, send)
                return
        await self.transport.handle_post_message(scope, replaying(body, more, receive), send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Checked here first: the SDK's connect_sse answers a foreign Host and then raises, which uvicorn logs as
        # a full traceback at ERROR for every such request. The guard's own WARNING is rate-limited.
        refusal = await self._guard.validate_request(Request(scope, receive), is_post=False)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if self.open_streams >= self.max_streams:
            refusals.warning("%d SSE streams open, the cap (CONTACT_MCP_MAX_SESSIONS): answered 503", self.open_streams)
            message = f"Service Unavailable: {self.max_streams} SSE streams are open, the most this server keeps"
            retry_after = {"Retry-After": str(RETRY_AFTER_S)}
            await error_response(503, SERVER_ERROR, message, retry_after)(scope, receive, send)
            return
        lowlevel = self.server.lowlevel
        self.open_streams += 1
        try:
            async with self.transport.connect_sse(scope, receive, send) as (read_stream, write_stream):
                await serve_dual_era_loop(
                    lowlevel,
                    read_stream,
                    write_stream,
                    lifespan_state=self._state,
                    init_options=lowlevel.create_initialization_options(),
                )
        finally:
            self.open_streams -= 1


# ---------- draining ----------


class DrainingServer(uvicorn.Server):
    """uvicorn, where the first SIGTERM/SIGINT drains: readiness fails at once, new connections are still taken
    while the calls in flight finish (bounded by `timeout_s`), then the usual graceful shutdown runs; and where a
    connection waiting longer than `request_timeout_s` for a request's headers is closed."""

    def __init__(
        self, config: uvicorn.Config, lifecycle: Lifecycle, *, timeout_s: float, request_timeout_s: float
    ) -> None:
        super().__init__(config)
        self._lifecycle = lifecycle
        self._timeout_s = timeout_s
        # How long a connection may wait for a request's headers: from connecting, or from the answer before (when
        # uvicorn's keep-alive timer, which runs only from a complete answer to the next byte, is not running).
        # uvicorn has no such limit: a client that connected and sent nothing, or half its headers, held the
        # connection for good, a file descriptor each until the process ran out.
        self._request_timeout_s = request_timeout_s
        self._drain_started: float | None = None
        self._waiting_since: dict[asyncio.Protocol, float] = {}

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler: set flags only (no logging, no locks); `on_tick` acts on them.
        if self._drain_started is None and not self.should_exit:
            self._lifecycle.draining = True
            self._drain_started = time.monotonic()
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        started = self._drain_started
        if started is not None and not self.should_exit:
            waited = time.monotonic() - started
            if self._lifecycle.in_flight == 0 or waited >= self._timeout_s:
                left = self._lifecycle.in_flight
                log.info("drained after %.1f s with %d call(s) still in flight; stopping", waited, left)
                self._lifecycle.cut_off()
                self.should_exit = True
        if counter % _TICKS_PER_S == 0:
            self._close_stalled(self._request_timeout_s)
        return await super().on_tick(counter)

    def _close_stalled(self, timeout_s: float) -> None:
        # A connection waits for a request while it has none in progress (no cycle, or its last one answered) and
        # uvicorn's keep-alive timer is not on it. uvicorn keeps these attributes on both its HTTP protocols.
        now = time.monotonic()
        since: dict[asyncio.Protocol, float] = {}
        for connection in self.server_state.connections:
            cycle = getattr(connection, "cycle", None)
            idle = cycle is None or bool(getattr(cycle, "response_complete", False))
            if not idle or getattr(connection, "timeout_keep_alive_task", None) is not None:
                continue
            since[connection] = self._waiting_since.get(connection, now)
            if now - since[connection] >= timeout_s:
                # uvloop's transports are not asyncio.Transport subclasses, but have its methods
                transport = cast(asyncio.BaseTransport | None, getattr(connection, "transport", None))
                if transport is not None and not transport.is_closing():
                    transport.close()
        self._waiting_since = since

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Before uvicorn waits for the open requests: one whose body never comes would wait out the grace period,
        # then be cancelled with a traceback.
        self._lifecycle.body_reads.close()
        await super().shutdown(sockets)


# ---------- who may call ----------


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
    """The bearer token HTTP requests must carry (surrounding whitespace stripped, as from the presented one), or
    None; `ConfigError` if `host` is reachable without one, or with one shorter than `MIN_TOKEN_LENGTH`."""
    secret = settings.http_token
    token = secret.get_secret_value().strip() if secret is not None else None
    where = host or "all interfaces"
    if token is not None and not token:
        raise ConfigError(f"{TOKEN_ENV} is set but empty; set it to a long random secret or unset it")
    if is_loopback(host):
        return token.encode() if token else None
    if token is None:
        raise ConfigError(
            f"refusing to serve HTTP on {where} without a bearer token: set {TOKEN_ENV} "
            "to a long random secret (clients send 'Authorization: Bearer <token>'), or bind 127.0.0.1"
        )
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"{TOKEN_ENV} is {len(token)} characters; serving on {where} needs at least {MIN_TOKEN_LENGTH} "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return token.encode()


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


class LowerCaseHost:
    """Pure ASGI: the Host and Origin headers lower-cased before DNS-rebinding protection reads them.

    A host name's case does not matter (RFC 9110 §4.2.3, RFC 6454 §4), but the SDK compares both headers to the
    allowlist case-sensitively: `Host: LocalHost` was refused (421) though `localhost` is allowed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and any(
            name in _HOST_HEADERS and value != value.lower() for name, value in scope["headers"]
        ):
            headers = [(name, value.lower() if name in _HOST_HEADERS else value) for name, value in scope["headers"]]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


_HOST_HEADERS = (b"host", b"origin")


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
