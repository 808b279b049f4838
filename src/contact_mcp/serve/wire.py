"""What uvicorn leaves unbounded on the wire: the size of a request's head (its request line and headers), and how
many connections are open at once.

uvicorn's httptools protocol buffers a request's head for as long as it keeps coming: one connection sending a
single 200 MB header took the server from 82 to 443 MB, before any of our code (the bearer token check among it)
could see the request. `BoundedHeadProtocol` counts what a connection sends while a request's head is being read
and answers 431, closing the connection, past `MAX_HEAD_BYTES`.

uvicorn takes every connection it is offered, until the process has no file descriptor left. There, uvloop
(libuv) accepts and drops the connections waiting, as long as it can free the one descriptor it keeps in reserve
for that; once another thread (a DNS lookup for a provider, say) has taken that descriptor, `accept` fails in a
loop and the server spun at 100% CPU for as long as the connections were held (measured: 2,048 descriptors, 3,000
idle connections, a provider called by host name). Meanwhile every descriptor the process itself opens (a
provider connection, a DNS lookup) fails too. `capped()` keeps the connections below the limit instead: past the
cap, a new one is answered 503 and closed at once, and the process keeps descriptors of its own.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import ClassVar, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from contact_mcp.serve.messages import RETRY_AFTER_S, SERVER_ERROR, error_response

log = logging.getLogger("contact_mcp.serve.refusals")
_start_log = logging.getLogger(__name__)

MAX_HEAD_BYTES: Final = 1024 * 1024
"""A request's head may be this long, counted by the reads it arrives in. A read may carry the start of a body with
the end of a head (asyncio and uvloop read at most 256 KiB at a time), so the bound is well above that; a real MCP
request's head is well under 8 KiB."""

# The descriptors kept for the process's own files when the open-files limit is what bounds the connections: the
# store (about 10), its PostgreSQL pool, the providers' connection pools (httpx keeps up to 100 each), DNS lookups.
_KEPT_FDS: Final = 1024

_TOO_LARGE: Final = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 38\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"request line and headers exceed 1 MiB\n"
)


class BoundedHeadProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a bound on the bytes a request's head may take: the reads from the
    connection's start, or the end of the request before, to the read that completes its headers (pipelined
    requests included). Serve `capped(n)`, which also bounds the connections open at once."""

    _in_head = True  # until the parser completes a request's headers; again once that request is whole
    _head_bytes = 0
    max_connections: ClassVar[int | None] = None
    _busy: ClassVar[bytes] = b""

    def connection_made(self, transport: asyncio.Transport) -> None:
        cap = self.max_connections
        if cap is not None and len(self.connections) >= cap:
            # Not counted, never read: the descriptor is free again as soon as the answer is written.
            log.warning("%d connections open, the cap (CONTACT_MCP_MAX_CONNECTIONS): a new one answered 503", cap)
            self.transport = transport  # what uvicorn's connection_lost closes
            transport.write(self._busy)
            transport.close()
            return
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                if not self.transport.is_closing():
                    log.warning("a request's head passed %d bytes: answered 431", MAX_HEAD_BYTES)
                    self.transport.write(_TOO_LARGE)
                    self.transport.close()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head, self._head_bytes = True, 0  # the next request's head starts after this one
        super().on_message_complete()


def capped(limit: int) -> type[BoundedHeadProtocol]:
    """`BoundedHeadProtocol` that keeps at most `limit` connections open: one more is answered 503 with
    `Retry-After` (its JSON-RPC error says why) and closed at once, whatever it was going to ask, probes included."""
    message = f"Service Unavailable: {limit} connections are open, the most this server keeps"
    answer = error_response(503, SERVER_ERROR, message, {"Retry-After": str(RETRY_AFTER_S)})
    head = b"".join(name + b": " + value + b"\r\n" for name, value in answer.raw_headers)
    busy = b"HTTP/1.1 503 Service Unavailable\r\n" + head + b"connection: close\r\n\r\n" + answer.body

    class Capped(BoundedHeadProtocol):
        max_connections = limit
        _busy = busy

    return Capped


def connection_cap(configured: int) -> int:
    """The connections to keep at most: `configured`, or fewer if the process may not open that many files.

    The soft open-files limit is raised to the hard one first (as Go's runtime does at start): the soft one is often
    1,024 (systemd's default) for programs that use `select()`, which this server does not. What stays below the
    limit is a quarter of it, at most `_KEPT_FDS`, for the process's own files.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # an unlimited hard limit may exceed what the kernel allows: keep the soft one
            pass
        else:
            soft = hard
    if soft == resource.RLIM_INFINITY:
        return configured
    usable = max(1, soft - min(soft // 4, _KEPT_FDS))
    if usable < configured:
        _start_log.warning(
            "the open-files limit is %d: at most %d connections, not CONTACT_MCP_MAX_CONNECTIONS=%d "
            "(raise the limit: `ulimit -n`, systemd's LimitNOFILE=, docker run --ulimit nofile=)",
            soft,
            usable,
            configured,
        )
    return min(configured, usable)
