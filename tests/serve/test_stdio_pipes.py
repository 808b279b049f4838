"""stdio in-process, on real pipes and real files: a pipe is read and written on the event loop (`serve/stdio.py`),
anything else on a worker thread, and both frame lines alike — a line split across reads is one message, an
over-long line is cut and its rest dropped, a reply larger than a pipe write that cannot wait goes whole."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import anyio
import pytest

from contact_mcp.serve import stdio
from contact_mcp.server import build_server
from contact_mcp.settings import Settings

pytestmark = pytest.mark.anyio

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "pipes", "version": "0"}},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def _requests() -> bytes:
    messages: list[dict[str, Any]] = [
        INIT,
        INITIALIZED,
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "upsert_contact", "arguments": {"email": "Ann@Example.com", "name": "Ann"}},
        },
        {"jsonrpc": "2.0", "id": 4, "method": "ping"},
    ]
    return b"".join(json.dumps(message).encode() + b"\n" for message in messages)


def _check_replies(raw: bytes) -> None:
    # Requests run concurrently, so replies may come in any order: each once, whole.
    replies = sorted((json.loads(line) for line in raw.splitlines()), key=lambda reply: reply["id"])
    assert [reply["id"] for reply in replies] == [1, 2, 3, 4]
    listed = replies[1]["result"]["tools"]
    assert len(json.dumps(listed)) > 4096  # more than a pipe write that cannot wait: it went on a thread, whole
    assert "upsert_contact" in {tool["name"] for tool in listed}
    assert replies[2]["result"]["structuredContent"]["email"] == "ann@example.com"
    assert replies[3]["result"] == {}


@contextmanager
def _pipe() -> Iterator[tuple[BinaryIO, BinaryIO]]:
    read_fd, write_fd = os.pipe()
    with open(read_fd, "rb", buffering=0) as reader, open(write_fd, "wb", buffering=0) as writer:
        yield reader, writer  # pyright: ignore[reportReturnType]


def _in_thread(work: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


async def test_a_client_on_pipes_gets_every_reply_whole_even_from_bytes_sent_one_by_one(settings: Settings) -> None:
    requests = _requests()
    replies = bytearray()
    with _pipe() as (server_in, client_out), _pipe() as (client_in, server_out):

        def write() -> None:
            for i in range(len(requests)):  # one byte per write: the server reads lines split across many reads
                client_out.write(requests[i : i + 1])
            client_out.close()

        def read() -> None:
            while chunk := client_in.read(65536):
                replies.extend(chunk)

        writer, reader = _in_thread(write), _in_thread(read)
        with anyio.fail_after(60):
            await stdio.serve_stdio(build_server(settings), server_in, server_out)
        server_out.close()
        writer.join(10)
        reader.join(10)
    _check_replies(bytes(replies))


async def test_a_client_on_regular_files_gets_every_reply(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "in").write_bytes(_requests())
    with (tmp_path / "in").open("rb") as server_in, (tmp_path / "out").open("wb") as server_out:
        with anyio.fail_after(60):
            await stdio.serve_stdio(build_server(settings), server_in, server_out)
    _check_replies((tmp_path / "out").read_bytes())


def _framed(chunks: list[bytes]) -> tuple[list[bytes], bytes]:
    framer = stdio._Framer()  # pyright: ignore[reportPrivateUsage]
    lines = [line for chunk in chunks for line in framer.feed(chunk)]
    return lines, framer.rest()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100], ids=lambda size: f"chunks-of-{size}")
def test_lines_come_out_as_readline_cuts_them_however_the_bytes_arrive(
    monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setattr(stdio, "_MAX_LINE", 8)
    data = b'{"a":1}\n\n0123456789abcdefghijklmnopqrstuvwxyz\nshort\n12345678\n123456789\nlast'
    expected = [b'{"a":1}\n', b"\n", b"012345678", b"short\n", b"12345678\n", b"123456789", b"last"]
    lines, rest = _framed([data[i : i + size] for i in range(0, len(data), size)])
    assert [*lines, rest] == expected
    # The same bytes through the file path (readline on a worker thread) give the same lines.
    with _pipe() as (reader, writer):
        writer.write(data)
        writer.close()
        read: list[bytes] = []
        while line := stdio._read_line(reader):  # pyright: ignore[reportPrivateUsage]
            read.append(line)
    assert read == expected


def test_an_over_long_line_at_the_end_of_input_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stdio, "_MAX_LINE", 4)
    assert _framed([b"ok\n0123", b"456789"]) == ([b"ok\n", b"01234"], b"")
