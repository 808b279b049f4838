"""One JSON-RPC message from raw bytes, or the JSON-RPC error that answers bytes that are not one.

Used where our code sees a message before the SDK does (a stdio line, an SSE POST body), so a malformed one is
answered with what the JSON-RPC spec prescribes — -32700 for what is not JSON (bad UTF-8 and lone surrogates
included), -32600 for a batch, `null`, an object that is not a JSON-RPC 2.0 message or a request whose id is not a
string or an integer, with the request's id when one can be read — in plain words, never pydantic's report of the
input, and logged as one WARNING line. A streamable-HTTP POST is checked here for its id only (`has_invalid_id`);
the SDK answers the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

import anyio
import mcp_types
import pydantic_core
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from pydantic import ValidationError
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

log = logging.getLogger("contact_mcp.serve.messages")
# What HTTP clients are refused for besides malformed messages (a body too slow, a cap reached): once per request.
refusals = logging.getLogger("contact_mcp.serve.refusals")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
SERVER_ERROR = -32000  # JSON-RPC's range for implementation-defined server errors
RETRY_AFTER_S = 5  # what a 503 (a cap reached) tells the client to wait
MAX_MESSAGE_BYTES = DEFAULT_MAX_REQUEST_BODY_SIZE  # as the SDK's HTTP transports: 4 MiB


def parse_message(data: bytes, *, where: str) -> mcp_types.JSONRPCMessage | mcp_types.JSONRPCError:
    """The message in `data`, or the error that answers it (logged once, naming `where` it arrived)."""
    if len(data) > MAX_MESSAGE_BYTES:
        return _rejected(where, INVALID_REQUEST, f"Invalid Request: a message may be at most {MAX_MESSAGE_BYTES} bytes")
    try:
        message = mcp_types.jsonrpc_message_adapter.validate_json(data, by_name=False)
    except ValidationError:
        pass
    else:
        if isinstance(message, mcp_types.JSONRPCNotification) and has_invalid_id(pydantic_core.from_json(data)):
            return invalid_id(where)
        return message
    try:
        value: Any = pydantic_core.from_json(data)
    except ValueError:
        return _rejected(where, PARSE_ERROR, "Parse error: not valid JSON (UTF-8, no lone surrogates)")
    if isinstance(value, list):
        return _rejected(where, INVALID_REQUEST, "Invalid Request: batches are not supported; send one message")
    raw_id = cast(dict[str, Any], value).get("id") if isinstance(value, dict) else None
    request_id = raw_id if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) else None
    message = "Invalid Request: not a JSON-RPC 2.0 request, notification or response"
    return _rejected(where, INVALID_REQUEST, message, request_id)


def has_invalid_id(value: object) -> bool:
    """A request object whose `id` is neither a string nor an integer (`[1]`, `true`, `1.5`, `{}`, `null`).

    The SDK (2.3) reads one as a notification, since a notification's model ignores unknown members: the request
    would go unanswered (HTTP 202, or nothing on stdio and SSE) and its client wait for good."""
    if not isinstance(value, dict) or "method" not in value or "id" not in value:
        return False
    message = cast(dict[str, Any], value)
    request_id, method = message["id"], message["method"]
    if request_id is None and isinstance(method, str) and method.startswith("notifications/"):
        return False  # a notification some client wrote with `"id": null`: nothing was to be answered anyway
    return isinstance(request_id, bool) or not isinstance(request_id, (str, int))


def invalid_id(where: str) -> mcp_types.JSONRPCError:
    """The answer to a request `has_invalid_id` caught (logged once): its id cannot be echoed, so it is null."""
    return _rejected(where, INVALID_REQUEST, "Invalid Request: a request's id must be a string or an integer")


def error_response(status: int, code: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An HTTP refusal whose body is the JSON-RPC error a client can read: no request id is known, so it is null."""
    error = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    return JSONResponse(error, status_code=status, headers=headers)


def _rejected(where: str, code: int, message: str, request_id: str | int | None = None) -> mcp_types.JSONRPCError:
    log.warning("%s: answered a malformed message with %d: %s", where, code, message)
    return mcp_types.JSONRPCError(jsonrpc="2.0", id=request_id, error=mcp_types.ErrorData(code=code, message=message))


class BodyReads:
    """The HTTP request bodies being read: each under a deadline for the whole body (`timeout_s`), and every one
    still waiting ended at once when the server stops (`close`).

    uvicorn has no deadline for a body: a client that sent part of one and stopped held its connection and a task
    for good, and at shutdown uvicorn cancelled each such task with a traceback of its own."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._waiting: set[anyio.CancelScope] = set()
        self._closed = False

    def close(self) -> None:
        """Answer every body still awaited 503 now, and any other asked for from here on."""
        self._closed = True
        for waiting in self._waiting:
            waiting.cancel()

    async def read(self, scope: Scope, receive: Receive, send: Send) -> tuple[bytes, bool] | None:
        """An HTTP request's body, read up to just past `MAX_MESSAGE_BYTES`, and whether more of it is still unread;
        None when there is nothing left to answer: the client went away, or its body did not come in time (answered
        here: 408, or 503 once the server stops, and the connection closed). `replaying` hands it on."""
        body, more = bytearray(), True
        if not self._closed:
            with anyio.move_on_after(self.timeout_s) as waiting:
                self._waiting.add(waiting)
                try:
                    while more and len(body) <= MAX_MESSAGE_BYTES:  # past it the SDK answers 413 from the replay
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            return None
                        body += message.get("body", b"")
                        more = bool(message.get("more_body", False))
                    return bytes(body), more
                finally:
                    self._waiting.discard(waiting)
        if self._closed:
            status, text = 503, "Service Unavailable: the server is stopping; send the request again"
        else:
            refusals.warning("a request body did not arrive in full within %g s: answered 408", self.timeout_s)
            status, text = 408, f"Request Timeout: the body did not arrive in full within {self.timeout_s:g} s"
        await error_response(status, INVALID_REQUEST, text, {"Connection": "close"})(scope, receive, send)
        return None


def replaying(body: bytes, more: bool, receive: Receive) -> Receive:
    """`receive` for a request whose first `body` bytes were read already (`BodyReads.read`)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": more}

    return replay
