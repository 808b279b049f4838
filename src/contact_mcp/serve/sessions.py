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
"""

from __future__ import annotations

import logging
import math
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthorizationContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

log = logging.getLogger("contact_mcp.serve.sessions")


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
    ) -> None:
        super().__init__(
            app,
            stateless=stateless,
            security_settings=security_settings,
            max_sessions=max_sessions,
            session_idle_timeout=session_idle_timeout,
        )
        self.evicted = 0
        """Sessions ended early to make room, since start-up."""

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
        if self.max_sessions is not None and self.open_sessions >= self.max_sessions:
            self._evict_one()
        return super()._admit_session(requestor)

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
