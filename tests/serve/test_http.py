"""Serving over HTTP for deployments: stateless replicas, readiness, draining on SIGTERM, malformed bodies, SSE
hygiene and log lines that cannot be forged. Real `contact-mcp serve` processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from contact_mcp.serve.wire import MAX_HEAD_BYTES
from tests.fakes.feather import API_KEY, FeatherFake
from tests.fakes.harness import Fault, serve
from tests.http_server import Spawned, spawn_http
from tests.serve.polling import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # servers in child processes

VERSION = "2025-11-25"
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
LEGACY = HEADERS | {"mcp-protocol-version": VERSION}
INIT: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "http", "version": "0"}},
}
INVALID_ID = b'{"jsonrpc": "2.0", "id": true, "method": "ping"}'
FORGED = "2026-12-03 10:00:00,000 WARNING contact_mcp: admin login"


def _call(request_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    params = {"name": name, "arguments": arguments}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def _json_rpc(response: httpx2.Response) -> dict[str, Any]:
    """The JSON-RPC message of a response, whether sent as JSON or as one SSE event."""
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        return json.loads(data[-1])
    return response.json()


# ---------- stateless replicas ----------


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Spawned]]:
    """Two `--stateless` servers on one database, as behind a load balancer."""
    tmp = tmp_path_factory.mktemp("replicas")
    env = {"CONTACT_MCP_DB": str(tmp / "contacts.db")}
    with spawn_http(env, tmp / "a.log", "--stateless") as a, spawn_http(env, tmp / "b.log", "--stateless") as b:
        yield [a, b]


@pytest.fixture(scope="module")
def stateful(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spawned]:
    tmp = tmp_path_factory.mktemp("stateful")
    with spawn_http({"CONTACT_MCP_DB": str(tmp / "contacts.db")}, tmp / "server.log") as server:
        yield server


async def test_any_stateless_replica_answers_any_request(replicas: list[Spawned]) -> None:
    a, b = replicas
    async with httpx2.AsyncClient(timeout=30) as http:
        initialized = _json_rpc(await http.post(f"{a.base}/mcp", json=INIT, headers=HEADERS))
        assert initialized["result"]["serverInfo"]["name"] == "contact-mcp"
        assert "mcp-session-id" not in (await http.post(f"{a.base}/mcp", json=INIT, headers=HEADERS)).headers

        upsert = _call(2, "upsert_contact", {"email": "replica@example.com"})
        created = _json_rpc(await http.post(f"{b.base}/mcp", json=upsert, headers=LEGACY))["result"]
        contact_id = created["structuredContent"]["id"]
        get = _call(3, "get_contact", {"contact_id": contact_id})
        fetched = _json_rpc(await http.post(f"{a.base}/mcp", json=get, headers=LEGACY))["result"]

    assert fetched["structuredContent"]["id"] == contact_id
    assert "replica@example.com" in json.dumps(fetched["structuredContent"])


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_sdk_clients_of_either_protocol_era_work_on_a_stateless_replica(
    replicas: list[Spawned], mode: Any
) -> None:
    with anyio.fail_after(30):
        async with (
            httpx2.AsyncClient(timeout=30) as http,
            Client(streamable_http_client(f"{replicas[0].base}/mcp", http_client=http), mode=mode) as client,
        ):
            result = await client.call_tool("upsert_contact", {"email": f"{mode}@example.com"})
    assert result.is_error is False
    assert result.structured_content is not None
    assert result.structured_content["outcome"] == "created"


async def test_stateless_health_says_so(replicas: list[Spawned]) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        health = (await http.get(f"{replicas[0].base}/healthz")).json()
    assert (health["ok"], health["stateless"], "sessions" in health) == (True, True, False)


async def test_a_stateless_get_is_405_not_a_stream_held_open(replicas: list[Spawned]) -> None:
    # The SDK would answer 200 text/event-stream and hold it open forever, uncapped: nothing is ever pushed on it.
    async with httpx2.AsyncClient(timeout=10) as http:
        for headers in ({"Accept": "text/event-stream"}, {}, {"MCP-Protocol-Version": "2025-11-25"}):
            response = await http.get(f"{replicas[0].base}/mcp", headers=headers)
            assert (response.status_code, response.headers["allow"]) == (405, "POST"), headers
            assert response.json()["error"]["code"] == -32600


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]', -32600),
        (b"null", -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": 7}', -32600),
        (b"{not json", -32700),
    ],
    ids=["batch", "null", "invalid-message", "not-json"],
)
async def test_a_malformed_body_is_a_400_without_pydantics_dump(
    replicas: list[Spawned], body: bytes, code: int
) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(f"{replicas[0].base}/mcp", content=body, headers=LEGACY)
    assert response.status_code == 400
    assert int(response.headers["content-length"]) == len(response.content)
    error = response.json()["error"]
    assert error["code"] == code
    for dump in ("input_value", "errors.pydantic.dev", "validation error for"):
        assert dump not in response.text


@pytest.mark.parametrize("request_id", ["true", "[1]", "1.5", "{}", "null"])
@pytest.mark.parametrize("stateless", [True, False], ids=["stateless", "stateful"])
async def test_a_request_whose_id_is_not_a_string_or_integer_is_a_400_not_a_silent_202(
    replicas: list[Spawned], stateful: Spawned, request_id: str, stateless: bool
) -> None:
    # The SDK (2.3) took such a request for a notification: 202 and no answer, its client waiting for good.
    body = b'{"jsonrpc": "2.0", "id": %s, "method": "tools/list"}' % request_id.encode()
    base = replicas[0].base if stateless else stateful.base
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(f"{base}/mcp", content=body, headers=LEGACY)
        foreign = await http.post(f"{base}/mcp", content=body, headers=LEGACY | {"Host": "evil.example"})
    assert response.status_code == 400
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": "Invalid Request: a request's id must be a string or an integer"},
    }
    assert foreign.status_code == 421  # DNS-rebinding protection still answers first


async def test_host_and_origin_match_the_allowlist_whatever_their_case(replicas: list[Spawned]) -> None:
    port = replicas[0].base.rpartition(":")[2]
    listing = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    async with httpx2.AsyncClient(timeout=10) as http:

        async def status(host: str, origin: str | None = None) -> int:
            headers = LEGACY | {"Host": host} | ({"Origin": origin} if origin else {})
            return (await http.post(f"{replicas[0].base}/mcp", content=listing, headers=headers)).status_code

        assert await status(f"LocalHost:{port}") == 200
        assert await status(f"LOCALHOST:{port}", origin=f"HTTP://LocalHost:{port}") == 200
        assert await status(f"127.0.0.1:{port}", origin=f"http://Evil.Example:{port}") == 403
        assert await status(f"Evil.Example:{port}") == 421


# ---------- readiness and draining ----------


async def test_readiness_fails_while_the_store_is_gone_and_health_stays_up(tmp_path: Path) -> None:
    db = tmp_path / "contacts.db"
    with spawn_http({"CONTACT_MCP_DB": str(db)}, tmp_path / "server.log") as server:
        async with httpx2.AsyncClient(base_url=server.base, timeout=10) as http:
            assert (await http.get("/readyz")).status_code == 200
            for path in await anyio.to_thread.run_sync(lambda: list(tmp_path.glob("contacts.db*"))):
                await anyio.Path(path).unlink()
            ready = await http.get("/readyz")
            health = await http.get("/healthz")
    assert ready.status_code == 503
    assert ready.json()["ready"] is False
    assert "CONTACT_MCP_DB" in ready.json()["reason"]  # names the variable, not the path (unauthenticated)
    assert health.status_code == 200


@pytest.fixture(scope="module")
def feather() -> Iterator[tuple[FeatherFake, str]]:
    fake = FeatherFake()
    with serve(fake.app) as url:
        yield fake, url


def _reached_contacts(fake: FeatherFake) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return any(request.path.endswith("/contacts") for request in fake.requests)

    return check


def _feather_env(url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "CONTACT_MCP_PROVIDERS": "feather",
        "FEATHER_API_KEY": API_KEY,
        "FEATHER_BASE_URL": url,
        "CONTACT_MCP_DB": str(tmp_path / "contacts.db"),
        **extra,
    }


async def test_sigterm_fails_readiness_at_once_lets_the_call_in_flight_finish_then_exits(
    feather: tuple[FeatherFake, str], tmp_path: Path
) -> None:
    fake, url = feather
    fake.reset()
    end_user = fake.add_end_user(display_name="Drain")
    fake.app.push(Fault("slow", delay=2.0, path_contains="/contacts"))
    call = _call(2, "attach_contact", {"end_user_id": end_user, "channel": "email", "value": "drain@example.com"})
    answers: list[httpx2.Response] = []
    with spawn_http(_feather_env(url, tmp_path), tmp_path / "server.log", "--stateless") as server:
        async with httpx2.AsyncClient(base_url=server.base, timeout=30) as http, anyio.create_task_group() as tasks:

            async def attach() -> None:
                answers.append(await http.post("/mcp", json=call, headers=LEGACY))

            async def unready() -> bool:
                return (await http.get("/readyz")).status_code == 503

            tasks.start_soon(attach)
            await eventually(_reached_contacts(fake))  # the slow POST has reached the provider: in flight
            server.proc.send_signal(signal.SIGTERM)
            await eventually(unready, within_s=1)
            health = await http.get("/healthz")
            assert (health.status_code, health.json()["draining"], health.json()["in_flight"]) == (200, True, 1)
            assert (await http.get("/readyz")).json() == {"ready": False, "reason": "draining"}
        result = _json_rpc(answers[0])["result"]
        assert result.get("isError") is not True
        assert result["structuredContent"]["created"] is True
        assert server.proc.wait(timeout=15) == 0


@pytest.mark.parametrize("era", ["2025-11-25", "2026-07-28"])
async def test_a_call_the_drain_timeout_ends_is_answered_that_the_server_stopped(
    feather: tuple[FeatherFake, str], tmp_path: Path, era: str
) -> None:
    fake, url = feather
    fake.reset()
    end_user = fake.add_end_user(display_name="Slow")
    fake.app.push(Fault("slow", delay=60.0, path_contains="/contacts"))
    call = _call(2, "attach_contact", {"end_user_id": end_user, "channel": "email", "value": "slow@example.com"})
    headers = LEGACY
    if era == "2026-07-28":  # sessionless by protocol: the version in the body's _meta, answered with plain JSON
        call["params"]["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": era,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        headers = HEADERS | {"mcp-protocol-version": era, "mcp-method": "tools/call", "mcp-name": "attach_contact"}
    env = _feather_env(url, tmp_path, CONTACT_MCP_DRAIN_TIMEOUT="0.5")
    answers: list[httpx2.Response] = []
    with spawn_http(env, tmp_path / "server.log", "--stateless") as server:
        async with httpx2.AsyncClient(base_url=server.base, timeout=30) as http, anyio.create_task_group() as tasks:

            async def attach() -> None:
                answers.append(await http.post("/mcp", json=call, headers=headers))

            tasks.start_soon(attach)
            await eventually(_reached_contacts(fake))
            server.proc.send_signal(signal.SIGTERM)
            # 0.5 s of draining, then the call is ended: far less than the 60 s it would take
            assert await anyio.to_thread.run_sync(lambda: server.proc.wait(timeout=20)) == 0
    fake.app.clear()

    # Before, uvicorn ended it at the end of its grace period: an empty SSE stream (2025), a 500 (2026-07-28).
    (answer,) = answers
    result = _json_rpc(answer)["result"]
    assert result["isError"] is True
    error = result["structuredContent"]["error"]
    assert (error["code"], error["retryable"]) == ("provider_unavailable", True)
    assert "shutting down" in error["message"]
    assert "Traceback" not in server.log.read_text()
    # Feather may have attached it: the history says the call was ended, not nothing at all.
    history = await anyio.run_process(
        [sys.executable, "-m", "contact_mcp", "history", "--json"], env={**os.environ, **env}
    )
    (entry,) = map(json.loads, history.stdout.decode().splitlines())
    assert (entry["tool"], entry["provider"], entry["outcome"]) == ("attach_contact", "feather", "ended")


async def test_log_lines_cannot_be_forged_by_a_provider_message(
    feather: tuple[FeatherFake, str], tmp_path: Path
) -> None:
    fake, url = feather
    fake.reset()
    end_user = fake.add_end_user(display_name="Injector")
    body = {"error": "bad_request", "message": f"value rejected\n{FORGED}\r\x1b[2K"}
    fake.app.push(Fault("status", status=400, body=body, path_contains="/contacts"))
    call = _call(2, "attach_contact", {"end_user_id": end_user, "channel": "email", "value": "x@example.com"})
    env = _feather_env(url, tmp_path, CONTACT_MCP_LOG_LEVEL="INFO")
    with spawn_http(env, tmp_path / "server.log", "--stateless") as server:
        async with httpx2.AsyncClient(base_url=server.base, timeout=30) as http:
            result = _json_rpc(await http.post("/mcp", json=call, headers=LEGACY))["result"]
    assert result["isError"] is True
    log = server.log.read_text()
    # The failure is logged by its code and field; the provider's message is not (it may quote the caller's data),
    # so nothing it carries can start a line.
    assert "tool attach_contact failed: invalid_argument" in log
    assert "value rejected" not in log
    assert not any(line.startswith(FORGED) for line in log.splitlines())
    assert "\x1b" not in log


# ---------- SSE ----------


@pytest.fixture
def sse_server(tmp_path: Path) -> Iterator[Spawned]:
    with spawn_http({"CONTACT_MCP_DB": str(tmp_path / "contacts.db")}, tmp_path / "server.log", transport="sse") as s:
        yield s


async def test_sse_foreign_host_requests_are_a_few_warning_lines_not_tracebacks(sse_server: Spawned) -> None:
    async with httpx2.AsyncClient(base_url=sse_server.base, timeout=10) as http:
        for _ in range(20):
            response = await http.get("/sse", headers={"Host": "evil.example"})
            assert (response.status_code, response.text) == (421, "Invalid Host header")
        assert (await http.get("/healthz")).status_code == 200
    log = sse_server.log.read_text()
    assert "Traceback" not in log
    assert " ERROR " not in log
    rejections = [line for line in log.splitlines() if "Invalid Host header" in line]
    assert 1 <= len(rejections) <= 5
    assert all(" WARNING " in line for line in rejections)


async def test_sse_malformed_messages_are_a_400_json_rpc_error_and_a_line_each_not_a_traceback(
    sse_server: Spawned,
) -> None:
    async with (
        httpx2.AsyncClient(base_url=sse_server.base, timeout=10) as http,
        http.stream("GET", "/sse") as stream,
    ):
        events = stream.aiter_lines()  # one iterator for the stream's life: leaving it would close the stream

        async def next_data() -> str:
            while not (line := await anext(events)).startswith("data:"):
                pass
            return line[5:].strip()

        endpoint = await next_data()
        for body, code in ((b"[]", -32600), (b"null", -32600), (b"{not json", -32700), (INVALID_ID, -32600)):
            response = await http.post(endpoint, content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 400
            assert response.json()["error"]["code"] == code
        assert (await http.post(endpoint, json=INIT)).status_code == 202  # the session goes on
        assert json.loads(await next_data())["result"]["serverInfo"]["name"] == "contact-mcp"
    log = sse_server.log.read_text()
    assert "Traceback" not in log
    assert len([line for line in log.splitlines() if "answered a malformed message" in line]) == 4


@pytest.mark.parametrize(
    ("transport", "args"), [("http", ("--stateless",)), ("http", ()), ("sse", ())], ids=["stateless", "stateful", "sse"]
)
async def test_a_body_that_stops_arriving_is_answered_408_and_its_connection_closed(
    tmp_path: Path, transport: str, args: tuple[str, ...]
) -> None:
    # uvicorn has no deadline for a request body: a client that sent part of one and stopped held its connection
    # (and a task) for good; hundreds of them were as many tracebacks at shutdown.
    env = {"CONTACT_MCP_DB": str(tmp_path / "contacts.db"), "CONTACT_MCP_REQUEST_TIMEOUT": "1"}
    with spawn_http(env, tmp_path / "server.log", *args, transport=transport) as server:
        port = int(server.base.rpartition(":")[2])
        async with await anyio.connect_tcp("127.0.0.1", port) as listener:
            path = "/mcp"
            if transport == "sse":
                await listener.send(b"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                opened = b""
                while b"session_id=" not in opened:
                    opened += await listener.receive()
                path = "/messages/?session_id=" + opened.split(b"session_id=")[1].split(b"\r")[0].decode()
            head = (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                "Accept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n"
            )
            async with await anyio.connect_tcp("127.0.0.1", port) as stalled:
                await stalled.send(head.encode() + b'{"jsonrpc": "2.0", "id": 1,')  # and nothing more
                answer = b""
                with anyio.fail_after(20):
                    with suppress(anyio.EndOfStream):  # the server closes the connection after answering
                        while True:
                            answer += await stalled.receive()
        async with httpx2.AsyncClient(timeout=10) as http:
            assert (await http.get(f"{server.base}/healthz")).status_code == 200
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout", answer
    assert b"connection: close" in rest.lower()
    assert json.loads(rest.partition(b"\r\n\r\n")[2]) == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": "Request Timeout: the body did not arrive in full within 1 s"},
    }
    log = server.log.read_text()
    assert "Traceback" not in log
    assert len([line for line in log.splitlines() if "answered 408" in line]) == 1


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_a_connection_that_sends_no_request_or_half_its_headers_is_closed(tmp_path: Path, transport: str) -> None:
    # uvicorn has no header deadline: such a connection was held for good, a file descriptor each.
    env = {"CONTACT_MCP_DB": str(tmp_path / "contacts.db"), "CONTACT_MCP_REQUEST_TIMEOUT": "1"}
    with spawn_http(env, tmp_path / "server.log", transport=transport) as server:
        port = int(server.base.rpartition(":")[2])
        silent = await anyio.connect_tcp("127.0.0.1", port)
        halfway = await anyio.connect_tcp("127.0.0.1", port)
        await halfway.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
        with anyio.fail_after(20):
            for connection in (silent, halfway):
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await connection.receive()
                await connection.aclose()
        # A client that keeps its connection and asks again, within uvicorn's keep-alive, is served as before.
        async with httpx2.AsyncClient(base_url=server.base, timeout=10) as http:
            for _ in range(3):
                assert (await http.get("/healthz")).status_code == 200
                await anyio.sleep(0.6)
    assert "Traceback" not in server.log.read_text()


async def test_a_request_head_past_1_mib_is_a_431_and_a_large_body_is_not(replicas: list[Spawned]) -> None:
    # uvicorn buffered a head for as long as it came: one 200 MB header took the server from 82 to 443 MB, before the
    # bearer token (or anything of ours) could refuse it.
    port = int(replicas[0].base.rpartition(":")[2])
    async with await anyio.connect_tcp("127.0.0.1", port) as connection:
        # Just past the bound, then no more: bytes the server never reads would make its close a reset, which can
        # take the answer with it.
        await connection.send(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * MAX_HEAD_BYTES)
        answer = b""
        with anyio.fail_after(30), suppress(anyio.EndOfStream):
            while True:
                answer += await connection.receive()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]

    # A body is not a head: 3 MiB of it (under the SDK's 4 MiB) is read as ever, on a connection kept alive.
    padded = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"_meta": {"pad": "x" * 3 * 2**20}}}
    async with httpx2.AsyncClient(timeout=30) as http:
        for _ in range(3):
            response = await http.post(f"{replicas[0].base}/mcp", json=padded, headers=LEGACY)
            assert _json_rpc(response) == {"jsonrpc": "2.0", "id": 1, "result": {}}


async def test_requests_that_are_not_http_are_a_few_warning_lines_not_one_each(replicas: list[Spawned]) -> None:
    # uvicorn logs a WARNING for each one: a client sending garbage in a loop wrote 3,000 lines a second to stderr.
    port = int(replicas[0].base.rpartition(":")[2])
    before = replicas[0].log.stat().st_size
    for _ in range(20):
        async with await anyio.connect_tcp("127.0.0.1", port) as connection:
            await connection.send(b"\x00\x01 not HTTP\r\n\r\n")
            answer = b""
            with anyio.fail_after(10), suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                while True:  # answered 400 and closed, once the warning is written
                    answer += await connection.receive()
            assert answer.startswith(b"HTTP/1.1 400 "), answer
    with replicas[0].log.open("rb") as log:
        log.seek(before)
        lines = log.read().decode().splitlines()
    assert 1 <= len([line for line in lines if "Invalid HTTP request received" in line]) <= 5


async def test_healthz_says_how_many_connections_are_open_and_the_cap(tmp_path: Path) -> None:
    env = {"CONTACT_MCP_DB": str(tmp_path / "contacts.db"), "CONTACT_MCP_MAX_CONNECTIONS": "50"}
    with spawn_http(env, tmp_path / "server.log") as server:
        port = int(server.base.rpartition(":")[2])
        held = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(3)]
        seen: list[dict[str, Any]] = []
        try:

            async def counted() -> bool:  # the idle three, and the probe's own
                async with httpx2.AsyncClient(base_url=server.base, timeout=10) as http:
                    seen.append((await http.get("/healthz")).json()["connections"])
                return seen[-1]["open"] >= 4

            await eventually(counted)
        finally:
            for connection in held:
                await connection.aclose()
    assert seen[-1]["max"] == 50
    assert seen[-1]["saturated"] is False


async def test_connections_past_max_connections_are_answered_503_and_closed_at_once(tmp_path: Path) -> None:
    # uvicorn took every connection it was offered, until the process ran out of file descriptors: there, uvloop's
    # accept failed in a loop (100% CPU) once a thread had taken its reserve descriptor, and the process could open
    # no file or provider connection of its own for as long as the connections were held.
    cap = 2
    env = {
        "CONTACT_MCP_DB": str(tmp_path / "contacts.db"),
        "CONTACT_MCP_MAX_CONNECTIONS": str(cap),
        "CONTACT_MCP_REQUEST_TIMEOUT": "600",  # the idle connections are not closed for the test's length
    }
    with spawn_http(env, tmp_path / "server.log") as server:
        port = int(server.base.rpartition(":")[2])
        held: list[anyio.abc.SocketStream] = []
        answer = b""
        try:
            with anyio.fail_after(60):
                while not answer:  # idle connections, one after another, until one is answered
                    connection = await anyio.connect_tcp("127.0.0.1", port)
                    held.append(connection)
                    with anyio.move_on_after(1):
                        answer = await connection.receive()
                with suppress(anyio.EndOfStream):  # then closed by the server, at once (not in 600 s)
                    while True:
                        answer += await held[-1].receive()
        finally:
            for connection in held:
                await connection.aclose()
        assert len(held) >= cap

        async def served() -> bool:
            with suppress(httpx2.TransportError):
                async with httpx2.AsyncClient(base_url=server.base, timeout=10) as http:
                    return (await http.get("/healthz")).status_code == 200
            return False

        await eventually(served)  # once the idle connections are gone, clients are served again
        async with httpx2.AsyncClient(base_url=server.base, timeout=10) as http:
            assert _json_rpc(await http.post("/mcp", json=INIT, headers=LEGACY))["result"]["serverInfo"]
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *headers = head.decode().lower().split("\r\n")
    assert status_line == "http/1.1 503 service unavailable", answer
    assert {"retry-after: 5", "connection: close"} <= set(headers)
    message = f"Service Unavailable: {cap} connections are open, the most this server keeps"
    assert json.loads(body) == {"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": message}}
    log = server.log.read_text()
    assert "Traceback" not in log
    assert 1 <= len([line for line in log.splitlines() if "a new one answered 503" in line]) <= 5


def _open_files_limit(pid: int) -> tuple[str, str]:
    line = next(line for line in Path(f"/proc/{pid}/limits").read_text().splitlines() if "open files" in line)
    soft, hard = line.split()[3:5]
    return soft, hard


async def test_the_open_files_limit_is_raised_to_the_hard_one_and_a_low_one_lowers_the_connection_cap(
    tmp_path: Path,
) -> None:
    # systemd starts a service with a soft limit of 1,024 (its hard one is 524,288): about 1,000 idle connections
    # locked every client out.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # A hard limit of the test's own, which a process may always lower its own to: whatever the machine's is.
    ceiling = 512 if hard == resource.RLIM_INFINITY else min(hard, 512)
    assert ceiling > 256, f"the open-files hard limit here is {hard}: the server needs more than 256"
    env = {"CONTACT_MCP_DB": str(tmp_path / "contacts.db")}

    def soft_256() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, ceiling))

    few = {**env, "CONTACT_MCP_MAX_CONNECTIONS": "100"}  # well within 512 less the quarter kept
    with spawn_http(few, tmp_path / "raised.log", preexec_fn=soft_256) as server:
        assert _open_files_limit(server.proc.pid) == (str(ceiling), str(ceiling))
    assert "open-files limit" not in (tmp_path / "raised.log").read_text()

    def both_256() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    with spawn_http(env, tmp_path / "low.log", preexec_fn=both_256) as server:
        assert _open_files_limit(server.proc.pid) == ("256", "256")
    # a quarter of the descriptors stays for the process's own files
    assert "at most 192 connections, not CONTACT_MCP_MAX_CONNECTIONS=10000" in (tmp_path / "low.log").read_text()


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_bodies_still_awaited_when_the_server_stops_are_answered_503_without_a_traceback(
    tmp_path: Path, transport: str
) -> None:
    # uvicorn waited out its grace period for each, then cancelled it with a traceback of its own (hundreds of them).
    env = {"CONTACT_MCP_DB": str(tmp_path / "contacts.db")}
    with spawn_http(env, tmp_path / "server.log", transport=transport) as s:
        port = int(s.base.rpartition(":")[2])
        path = "/mcp" if transport == "http" else "/messages/?session_id=" + "0" * 32
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            "Accept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n"
        )
        stalled = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(5)]
        for connection in stalled:
            await connection.send(head.encode() + b'{"jsonrpc": "2.0",')  # and nothing more
        await anyio.sleep(2)  # their headers are complete: each request is in the app, awaiting its body
        s.proc.send_signal(signal.SIGTERM)
        answers: list[bytes] = []
        with anyio.fail_after(30):
            for connection in stalled:
                answer = b""
                with suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                    while True:
                        answer += await connection.receive()
                answers.append(answer)
                await connection.aclose()
        assert s.proc.wait(timeout=30) == 0
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        assert b"the server is stopping" in answer
    assert "Traceback" not in s.log.read_text()


async def test_sse_streams_are_capped_at_max_sessions_and_one_more_is_a_503_until_one_closes(tmp_path: Path) -> None:
    # The SDK kept every SSE stream a client opened (about 97 KB each), with no cap.
    env = {"CONTACT_MCP_DB": str(tmp_path / "contacts.db"), "CONTACT_MCP_MAX_SESSIONS": "2"}
    with spawn_http(env, tmp_path / "server.log", transport="sse") as server:
        async with httpx2.AsyncClient(base_url=server.base, timeout=10) as http:

            async def health() -> dict[str, Any]:
                return (await http.get("/healthz")).json()["sessions"]

            async with http.stream("GET", "/sse") as first, http.stream("GET", "/sse") as second:
                assert (first.status_code, second.status_code) == (200, 200)
                assert await health() == {"open": 2, "max": 2, "saturated": True}
                refused = await http.get("/sse")
            assert (refused.status_code, refused.headers["retry-after"]) == (503, "5")
            assert refused.json()["error"]["code"] == -32000

            async def room() -> bool:
                return (await health())["open"] == 0

            await eventually(room)
            async with http.stream("GET", "/sse") as again:
                assert again.status_code == 200
                assert (await health())["saturated"] is False
    assert "Traceback" not in server.log.read_text()


def _open_database_files(pid: int, db: Path) -> int:
    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(db))


async def test_sse_connections_share_the_one_open_store(sse_server: Spawned, tmp_path: Path) -> None:
    """The SDK's SSE app enters the server lifespan per connection: a database connection (and every provider's
    HTTP client) per stream, which is what kept 600 streams' memory. Ours opens the providers once."""
    db = (tmp_path / "contacts.db").resolve()
    before = _open_database_files(sse_server.proc.pid, db)
    async with Client(sse_client(f"{sse_server.base}/sse")) as one, Client(sse_client(f"{sse_server.base}/sse")) as two:
        for client in (one, two):
            assert (await client.call_tool("find_contacts", {})).is_error is False
        # One store: the SQLite backend holds its writer, its reader, its on-loop reader and its history appender
        # connection, whatever the streams.
        assert _open_database_files(sse_server.proc.pid, db) == before == 4
