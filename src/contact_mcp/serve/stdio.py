"""MCP over stdin/stdout, one JSON-RPC message per line, where stdout carries protocol and nothing else.

From before the server is built until after it stops, fd 1 points at stderr and fd 0 at the null device: whatever
prints, logs or child processes do cannot reach the wire, and a leftover `print()` buffer is flushed into stderr at
the end. The wire itself is a private duplicate of each descriptor, which only this module reads and writes.

Framing is ours rather than the SDK's `stdio_server`, because the SDK drops a line it cannot parse in silence (and a
client waits for its own timeout): here such a line is answered with the JSON-RPC error `messages.py` builds.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
from collections.abc import AsyncGenerator, Generator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import BinaryIO, cast

import anyio
import anyio.to_thread
import mcp_types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage

from contact_mcp.logs import configure_logging
from contact_mcp.serve import freeze_start_up_heap
from contact_mcp.serve.messages import MAX_MESSAGE_BYTES, parse_message
from contact_mcp.server import ContactServer, build_server
from contact_mcp.settings import Settings

log = logging.getLogger("contact_mcp.serve.stdio")

_MAX_LINE = MAX_MESSAGE_BYTES  # a longer line is refused unparsed
_EOF_DRAIN_S = 30.0  # how long requests read before the end of stdin may still run


def run_stdio(settings: Settings) -> None:
    with wire() as (stdin, stdout):
        configure_logging(settings.log_level)
        server = build_server(settings)
        freeze_start_up_heap()
        with suppress(KeyboardInterrupt):
            anyio.run(serve_stdio, server, stdin, stdout)


async def serve_stdio(server: ContactServer, stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Serve one client on the given byte streams until stdin ends."""
    server.transport = "stdio"
    async with channel(stdin, stdout) as (read_stream, write_stream):
        await server.lowlevel.run(read_stream, write_stream, server.lowlevel.create_initialization_options())


@contextmanager
def wire() -> Generator[tuple[BinaryIO, BinaryIO], None, None]:
    """Claim fd 0 and fd 1 for the protocol: yields private (stdin, stdout) byte streams, while the descriptors
    themselves point at the null device and at stderr; both are restored on exit."""
    sys.stdout.flush()
    wire_in, wire_out = _private_copy(0), _private_copy(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    try:
        with open(wire_in, "rb", closefd=False) as stdin, open(wire_out, "wb", closefd=False) as stdout:
            yield cast(BinaryIO, stdin), cast(BinaryIO, stdout)
    finally:
        sys.stdout.flush()  # whatever `print()` left buffered lands on stderr, then the caller gets its stdout back
        os.dup2(wire_out, 1)
        os.dup2(wire_in, 0)
        os.close(wire_out)
        os.close(wire_in)


def _private_copy(fd: int) -> int:
    # Above the standard range and close-on-exec: a child process never inherits the wire.
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)


Streams = tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]]


@asynccontextmanager
async def channel(stdin: BinaryIO, stdout: BinaryIO) -> AsyncGenerator[Streams]:
    """The (read, write) streams a server runs on, framed as lines over `stdin` and `stdout`."""
    to_server, from_client = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    to_client, from_server = anyio.create_memory_object_stream[SessionMessage](0)

    unanswered: set[str | int] = set()
    all_answered = anyio.Event()

    async def read_lines() -> None:
        nonlocal all_answered
        async with to_server, to_client.clone() as replies:
            while line := await anyio.to_thread.run_sync(_read_line, stdin, abandon_on_cancel=True):
                if not line.strip():
                    continue
                message = parse_message(line, where="stdio")
                if isinstance(message, mcp_types.JSONRPCError):
                    await replies.send(SessionMessage(message))
                else:
                    if isinstance(message, mcp_types.JSONRPCRequest):
                        unanswered.add(message.id)
                    await to_server.send(SessionMessage(message))
            # At the end of stdin the SDK's loop cancels the requests still running, so a client that writes its
            # last request and closes its end would lose the answer: the server's input stays open until every
            # request read has been answered (bounded, as draining is on HTTP).
            if unanswered:
                all_answered = anyio.Event()
                with anyio.move_on_after(_EOF_DRAIN_S):
                    await all_answered.wait()

    async def write_lines() -> None:
        async with from_server:
            async for item in from_server:
                data = item.message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"
                await anyio.to_thread.run_sync(_write, stdout, data)
                if isinstance(item.message, mcp_types.JSONRPCResponse | mcp_types.JSONRPCError):
                    unanswered.discard(cast("str | int", item.message.id))
                    if not unanswered:
                        all_answered.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(write_lines)  # ends once every reply is written and both senders are closed
        try:
            async with anyio.create_task_group() as reading:
                reading.start_soon(read_lines)
                try:
                    yield from_client, to_client
                finally:
                    reading.cancel_scope.cancel()  # the server is done: stop waiting for a line that may not come
        finally:
            await to_client.aclose()


def _read_line(stdin: BinaryIO) -> bytes:
    """The next line; a line over the limit comes back cut (and is refused), its rest read and dropped."""
    line = stdin.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE and not line.endswith(b"\n"):
        while (rest := stdin.readline(65536)) and not rest.endswith(b"\n"):
            pass
    return line


def _write(stdout: BinaryIO, data: bytes) -> None:
    stdout.write(data)
    stdout.flush()
