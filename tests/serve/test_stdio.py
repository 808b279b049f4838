"""Malformed input on stdio gets the JSON-RPC error the spec prescribes (and one WARNING), and the server goes on
serving: a real `contact-mcp serve` subprocess, written to line by line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "stdio", "version": "0"}},
}

MALFORMED: list[tuple[bytes, int, object]] = [
    (b"this is not json", PARSE_ERROR, None),
    (b'{"jsonrpc": "2.0", "id": 5, "method": "ping", "params": {"x": "\\ud800"}}', PARSE_ERROR, None),
    (b'{"jsonrpc": "2.0", "id": 6, "method": "ping", "params": {"x": "\xff\xfe"}}', PARSE_ERROR, None),
    (b'[{"jsonrpc": "2.0", "id": 7, "method": "ping"}]', INVALID_REQUEST, None),
    (b"null", INVALID_REQUEST, None),
    (b'{"jsonrpc": "2.0", "id": 8, "method": 42}', INVALID_REQUEST, 8),
    (b'{"jsonrpc": "1.0", "id": "nine", "method": "ping"}', INVALID_REQUEST, "nine"),
    (
        b'{"jsonrpc": "2.0", "id": 10, "method": "ping", "params": {"pad": "' + b"x" * 5_000_000 + b'"}}',
        INVALID_REQUEST,
        None,
    ),
    # an id that is not a string or an integer: the SDK would take the request for a notification, never answered
    (b'{"jsonrpc": "2.0", "id": true, "method": "ping"}', INVALID_REQUEST, None),
    (b'{"jsonrpc": "2.0", "id": [11], "method": "ping"}', INVALID_REQUEST, None),
    (b'{"jsonrpc": "2.0", "id": 1.5, "method": "ping"}', INVALID_REQUEST, None),
    (b'{"jsonrpc": "2.0", "id": null, "method": "ping"}', INVALID_REQUEST, None),
]
IDS = [
    "not-json",
    "lone-surrogate",
    "bad-utf8",
    "batch",
    "null",
    "method-not-a-string",
    "wrong-version",
    "too-long",
    "id-true",
    "id-list",
    "id-float",
    "id-null",
]


pytestmark = pytest.mark.slow  # every test here talks to a server in a child process


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], str]:
    """One server fed an initialize, every malformed line, then a ping: (the replies in order, its stderr)."""
    tmp = tmp_path_factory.mktemp("stdio")
    env = {**os.environ, "CONTACT_MCP_DB": str(tmp / "contacts.db"), "CONTACT_MCP_LOG_LEVEL": "WARNING"}
    lines = [json.dumps(INIT).encode(), json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode()]
    lines += [line for line, _, _ in MALFORMED]
    # A notification written with "id": null is still a notification: no answer, no error.
    lines.append(b'{"jsonrpc": "2.0", "id": null, "method": "notifications/roots/list_changed"}')
    lines.append(json.dumps({"jsonrpc": "2.0", "id": 99, "method": "ping"}).encode())
    done = subprocess.run(
        [sys.executable, "-m", "contact_mcp", "serve"],
        input=b"\n".join(lines) + b"\n",
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
    )
    replies = [json.loads(line) for line in done.stdout.splitlines()]
    return replies, done.stderr.decode(errors="replace")


@pytest.mark.parametrize(("line", "code", "request_id"), MALFORMED, ids=IDS)
def test_a_malformed_line_is_answered_with_the_json_rpc_error(
    session: tuple[list[dict[str, Any]], str], line: bytes, code: int, request_id: object
) -> None:
    replies, _ = session
    errors = [reply for reply in replies if "error" in reply]
    answer = errors[MALFORMED.index((line, code, request_id))]
    assert answer["jsonrpc"] == "2.0"
    assert answer["id"] == request_id
    assert answer["error"]["code"] == code
    assert "pydantic" not in answer["error"]["message"]


def test_the_server_answers_every_line_in_order_and_keeps_serving(session: tuple[list[dict[str, Any]], str]) -> None:
    replies, stderr = session
    assert len(replies) == 1 + len(MALFORMED) + 1  # initialize, one error per malformed line, the ping
    initialized = next(reply for reply in replies if reply.get("id") == 1 and "result" in reply)
    assert initialized["result"]["serverInfo"]["name"] == "contact-mcp"
    assert replies[-1] == {"jsonrpc": "2.0", "id": 99, "result": {}}
    warnings = [line for line in stderr.splitlines() if " WARNING " in line and "malformed" in line]
    assert len(warnings) == len(MALFORMED)
    assert "Traceback" not in stderr


def test_blank_lines_are_ignored(tmp_path: Path) -> None:
    env = {**os.environ, "CONTACT_MCP_DB": str(tmp_path / "contacts.db")}
    ping = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
    done = subprocess.run(
        [sys.executable, "-m", "contact_mcp", "serve"],
        input=b"\n  \n" + json.dumps(INIT).encode() + b"\n\n" + ping + b"\n",
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == [1, 1]


def test_every_request_read_before_the_end_of_stdin_is_answered(tmp_path: Path) -> None:
    """A client that writes its requests and closes stdin gets every answer: the SDK's loop cancels what is still
    running at end of input, so the server's input stays open until each request read has its reply."""
    env = {**os.environ, "CONTACT_MCP_DB": str(tmp_path / "contacts.db")}
    calls = [
        {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "find_contacts", "arguments": {}}}
        for n in range(2, 202)
    ]
    lines = [INIT, {"jsonrpc": "2.0", "method": "notifications/initialized"}, *calls]
    done = subprocess.run(
        [sys.executable, "-m", "contact_mcp", "serve"],
        input=b"".join(json.dumps(line).encode() + b"\n" for line in lines),
        env=env,
        capture_output=True,
        timeout=120,
        check=True,
    )
    answered = sorted(json.loads(line)["id"] for line in done.stdout.splitlines())
    assert answered == [1, *range(2, 202)]
