"""What uvicorn leaves unbounded on the wire: the size of a request's head (its request line and headers).

uvicorn's httptools protocol buffers a request's head for as long as it keeps coming: one connection sending a
single 200 MB header took the server from 82 to 443 MB, before any of our code (the bearer token check among it)
could see the request. `BoundedHeadProtocol` counts what a connection sends while a request's head is being read
and answers 431, closing the connection, past `MAX_HEAD_BYTES`.
"""

from __future__ import annotations

import logging
from typing import Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("contact_mcp.serve.refusals")

MAX_HEAD_BYTES: Final = 1024 * 1024
"""A request's head may be this long, counted by the reads it arrives in. A read may carry the start of a body with
the end of a head (asyncio and uvloop read at most 256 KiB at a time), so the bound is well above that; a real MCP
request's head is well under 8 KiB."""

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
    requests included)."""

    _in_head = True  # until the parser completes a request's headers; again once that request is whole
    _head_bytes = 0

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
