"""MCP over stdin/stdout, one JSON-RPC message per line, where stdout carries protocol and nothing else.

From before the server is built until after it stops, fd 1 points at stderr and fd 0 at the null device: whatever
prints, logs or child processes do cannot reach the wire, and a leftover `print()` buffer is flushed into stderr at
the end. The wire itself is a private duplicate of each descriptor, which only this module reads and writes.

Framing is ours rather than the SDK's `stdio_server`, because the SDK drops a line it cannot parse in silence (and a
client waits for its own timeout): here such a line is answered with the JSON-RPC error `messages.py` builds.

A pipe (what MCP clients give a server) is read and written on the event loop's own thread: it is read once the
loop sees it readable (a pipe read then returns what is there without waiting), and a reply of at most `PIPE_BUF`
bytes is written at once when the pipe has room for it (a write that small never waits then). Each hop to a
worker thread and back costs a call ~50 µs of CPU on an idle machine and several times that on a busy one, and a
call would otherwise take two (its request, its reply). Anything else — a regular file, a terminal, a socket, a
larger reply, a full pipe — is read and written on a worker thread, which may wait.
"""

from __future__ import annotations

import fcntl
import logging
import os
import select
import stat
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Generator
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
    pipe = _PipeWriter(stdout) if _is_pipe(stdout) else None

    async def read_lines() -> None:
        nonlocal all_answered
        async with to_server, to_client.clone() as replies:
            async for line in _lines(stdin):
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
                if rest := pipe.write(data) if pipe is not None else data:
                    await anyio.to_thread.run_sync(_write, stdout, rest)
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


def _is_pipe(stream: BinaryIO) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError):
        return False


async def _lines(stdin: BinaryIO) -> AsyncIterator[bytes]:
    """Each line of `stdin` with its newline (the last may lack one), cut as `_read_line` cuts it."""
    if not _is_pipe(stdin):
        while line := await anyio.to_thread.run_sync(_read_line, stdin, abandon_on_cancel=True):
            yield line
        return
    fd = stdin.fileno()
    framer = _Framer()
    while True:
        await anyio.wait_readable(fd)
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:  # someone else set O_NONBLOCK and drained it first: wait again
            continue
        if not chunk:
            break
        for line in framer.feed(chunk):
            yield line
    if rest := framer.rest():
        yield rest


class _Framer:
    """Bytes in, lines out, as `_read_line` cuts them: a line longer than `_MAX_LINE` comes out as its first
    `_MAX_LINE + 1` bytes (which the parser refuses) and its rest up to the newline is dropped."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._scanned = 0  # no newline before this offset of _pending
        self._dropping = False

    def feed(self, data: bytes) -> list[bytes]:
        self._pending += data
        lines: list[bytes] = []
        while self._pending:
            end = self._pending.find(b"\n", self._scanned, _MAX_LINE + 1)
            if self._dropping:
                if end < 0 and len(self._pending) <= _MAX_LINE:
                    self._pending.clear()
                    self._scanned = 0
                    break
                cut = end + 1 if end >= 0 else _MAX_LINE + 1
                self._dropping = end < 0
            elif end >= 0:
                cut = end + 1
                lines.append(bytes(self._pending[:cut]))
            elif len(self._pending) > _MAX_LINE:
                cut = _MAX_LINE + 1
                lines.append(bytes(self._pending[:cut]))
                self._dropping = True
            else:
                self._scanned = len(self._pending)
                break
            del self._pending[:cut]
            self._scanned = 0
        return lines

    def rest(self) -> bytes:
        """What is left at the end of input: a last line without its newline (nothing when it was being dropped)."""
        return b"" if self._dropping else bytes(self._pending)


class _PipeWriter:
    """Writes to a pipe on the event loop's thread what cannot wait there: at most `PIPE_BUF` bytes into a pipe
    with room (Linux reports a pipe writable while a page of it is free, and such a write takes one page)."""

    def __init__(self, stdout: BinaryIO) -> None:
        self._fd = stdout.fileno()
        self._room = select.poll()
        self._room.register(self._fd, select.POLLOUT)

    def write(self, data: bytes) -> bytes:
        """Write what can be written now; what is left (all of `data`, or none) goes to a worker thread."""
        if len(data) > select.PIPE_BUF or not self._room.poll(0):
            return data
        try:
            return data[os.write(self._fd, data) :]
        except BlockingIOError:  # O_NONBLOCK and no room after all (another writer on the pipe): the thread waits
            return data


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
