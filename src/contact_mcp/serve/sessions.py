"""Bounded streamable-HTTP sessions: a cap that makes room by evicting the least recently active idle session.

The SDK's session manager (2.3) keeps up to 10,000 sessions and ends one only after 30 idle minutes; at the cap it
answers 503 to every new client. 10,000 `initialize` requests in 40 s therefore locked every new client out for
30 minutes and took the server from 72 to 441 MB. Here the cap and the idle timeout are settings
(`CONTACT_MCP_MAX_SESSIONS`, `CONTACT_MCP_SESSION_IDLE_TIMEOUT`) and, at the cap, a new session takes the place of
the idle session whose last request ended longest ago: that client's next request answers 404 and the spec has it
open a new session. Only when every session has a request in flight (an open GET stream counts) is a new client
refused, with 503 and `Retry-After`, until one ends or goes idle — never for an idle timeout's length.

The manager subclasses the SDK's and overrides its admission step (`_admit_session`); it reads the SDK transport's
public `idle_scope`, whose deadline is infinite while a request is in flight and otherwise the instant the session
would expire, so the smallest finite deadline is the least recently active idle session.

Only a request that can open a session evicts one: the SDK admits every request that comes without a session id
before it checks Host, Origin, Content-Type or that the request is an `initialize`, and then drops what it admitted.
Without the check here, any request it refuses (a foreign page's `text/plain` POST, refused by DNS-rebinding
protection) would still end a real client's session. So at the cap the opening request is read first, and only a
POST with an allowed Host and Origin whose body is one `initialize` request may make room; any other is let past the
cap to get the SDK's own refusal, its session dropped at once (below the cap nothing is read twice).

Stateless, nothing is pushed outside a call's own answer: a GET (the SDK would hold its SSE stream open forever,
uncapped) is 405, as DELETE is.
"""

from __future__ import annotations

import logging
import math
from contextvars import ContextVar
from typing import Any

import mcp_types
import pydantic_core
from mcp.server.auth.middleware.bearer_auth import AuthorizationContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from contact_mcp.serve.messages import INVALID_REQUEST, BodyReads, error_response, has_invalid_id, invalid_id, replaying

log = logging.getLogger("contact_mcp.serve.sessions")

# At the cap, whether the request being admitted can open a session (may evict) or will be refused (None: not read,
# below the cap when it came). Set per request, read under the SDK's lock.
_OPENING: ContextVar[bool | None] = ContextVar("contact_mcp_opening_request", default=None)
_SESSION_HEADER = b"mcp-session-id"


class BoundedSessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager with eviction at the cap (stateful) or no sessions at all (`stateless`)."""

    def __init__(
        self,
        app: Server[Any],
        *,
        stateless: bool,
        security_settings: TransportSecuritySettings,
        max_sessions: int,
        session_idle_timeout: float,
        body_reads: BodyReads,
    ) -> None:
        super().__init__(
            app,
            stateless=stateless,
            security_settings=security_settings,
            max_sessions=max_sessions,
            session_idle_timeout=session_idle_timeout,
        )
        self._body_reads = body_reads
        self.evicted = 0
        """Sessions ended early to make room, since start-up."""
        self._guard = TransportSecurityMiddleware(security_settings)

    async def handle_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        if self.stateless and method == "GET":
            await _not_allowed(scope, receive, send)
            return
        body, more = b"", True
        if method == "POST":
            read = await self._body_reads.read(scope, receive, send)
            if read is None:
                return
            body, more = read
            if not more and await self._refused_for_its_id(scope, receive, send, body):
                return
            receive = replaying(body, more, receive)
        at_cap = self.max_sessions is not None and self.open_sessions >= self.max_sessions
        if not at_cap or self.stateless or any(name == _SESSION_HEADER for name, _ in scope["headers"]):
            await super().handle_request(scope, receive, send)
            return
        # only a POST opens a session
        opening = method == "POST" and not more and await self._may_open(scope, receive, body)
        token = _OPENING.set(opening)
        try:
            await super().handle_request(scope, receive, send)
        finally:
            _OPENING.reset(token)

    async def _refused_for_its_id(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> bool:
        """Answer 400 (-32600, id null) to a request whose id the SDK would take for a notification's, and say so.

        Host, Origin and Content-Type are checked first, so a foreign page still gets the guard's refusal."""
        try:
            value = pydantic_core.from_json(body)
        except ValueError:
            return False  # the SDK answers -32700
        if not has_invalid_id(value):
            return False
        refusal = await self._guard.validate_request(Request(scope, receive), is_post=True)
        if refusal is None:
            refusal = error_response(400, INVALID_REQUEST, invalid_id("http").error.message)
        await refusal(scope, receive, send)
        return True

    async def _may_open(self, scope: Scope, receive: Receive, body: bytes) -> bool:
        """Whether this session-less POST would be served as an opening `initialize` (the SDK decides for real)."""
        if await self._guard.validate_request(Request(scope, receive), is_post=True) is not None:
            return False
        try:
            message = mcp_types.jsonrpc_message_adapter.validate_json(body, by_name=False)
        except ValidationError:
            return False
        return isinstance(message, mcp_types.JSONRPCRequest) and message.method == "initialize"

    @property
    def open_sessions(self) -> int:
        return len(self._server_instances)

    @property
    def saturated(self) -> bool:
        """At the cap with no idle session to evict: a new client would get 503 now."""
        if self.stateless or self.max_sessions is None or self.open_sessions < self.max_sessions:
            return False
        return self._least_recently_active() is None

    def _admit_session(self, requestor: AuthorizationContext | None) -> StreamableHTTPServerTransport | None:
        # Called by the SDK under its session-creation lock, so eviction and admission are one step.
        opening = _OPENING.get()
        if self.max_sessions is None or self.open_sessions < self.max_sessions or opening is None:
            return super()._admit_session(requestor)
        if opening:
            self._evict_one()
            return super()._admit_session(requestor)
        # A request the SDK is about to refuse (and whose session it then drops): let it through past the cap, so
        # it gets its own answer (421, 403, 400) rather than a 503 that says "retry", and no one's session ends.
        cap, self.max_sessions = self.max_sessions, None
        try:
            return super()._admit_session(requestor)
        finally:
            self.max_sessions = cap

    def _least_recently_active(self) -> str | None:
        idle: list[tuple[float, str]] = []
        for session_id, transport in self._server_instances.items():
            scope = transport.idle_scope
            if scope is not None and not scope.cancel_called and math.isfinite(scope.deadline):
                idle.append((scope.deadline, session_id))
        return min(idle)[1] if idle else None

    def _evict_one(self) -> None:
        session_id = self._least_recently_active()
        if session_id is None:
            return
        transport = self._server_instances.pop(session_id)
        self._session_owners.pop(session_id, None)
        assert transport.idle_scope is not None
        # Ends the session's server task as an idle timeout would; the SDK then terminates the transport.
        transport.idle_scope.cancel()
        self.evicted += 1
        log.info("session cap %d reached: ended the least recently active idle session", self.max_sessions)


async def _not_allowed(scope: Scope, receive: Receive, send: Send) -> None:
    message = "Method Not Allowed: a stateless server keeps no stream to push on; POST each request"
    await error_response(405, INVALID_REQUEST, message, {"Allow": "POST"})(scope, receive, send)
