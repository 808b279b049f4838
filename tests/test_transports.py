"""The transports end to end: stdio and HTTP/SSE servers in real subprocesses on 127.0.0.1, plus the HTTP app's
security (bearer token, DNS-rebinding protection, refusal to serve beyond loopback without a token) in process."""

from __future__ import annotations

import gc
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx2
import mcp_types
import pytest
import uvicorn
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from contact_mcp.errors import ConfigError
from contact_mcp.serve import run
from contact_mcp.serve.http import build_http_app
from contact_mcp.server import build_server
from contact_mcp.settings import Settings, load_settings
from tests.stdio_server import server_params

pytestmark = pytest.mark.anyio

TOKEN = "test-token-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STARTUP_TIMEOUT_S = 20
INIT: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "transport-tests", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
_OUR_ENV_PREFIXES = ("CONTACT_MCP_", "FEATHER_", "TETHERAI_", "BLOOIO_", "FEATUREBASE_", "PROTOCOL_")


# ---------- starting real servers ----------


def _serve_argv(*args: str) -> list[str]:
    """The real command line, as an operator or a desktop MCP host starts it."""
    return [sys.executable, "-m", "contact_mcp", "serve", *args]


def _child_env(**extra: str) -> dict[str, str]:
    """The parent's environment without any of our settings, so the developer's shell cannot leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OUR_ENV_PREFIXES)}
    return {**env, **extra}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class RunningServer:
    proc: subprocess.Popen[bytes]
    base: str
    stdout: Path
    stderr: Path


def _wait_healthy(server: RunningServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with httpx2.Client(timeout=2) as http:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                pytest.fail(f"server exited with {server.proc.returncode}: {server.stderr.read_text()[-2000:]}")
            try:
                if http.get(f"{server.base}/healthz").status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.05)
    pytest.fail(f"no answer on /healthz within {STARTUP_TIMEOUT_S} s: {server.stderr.read_text()[-2000:]}")


@contextmanager
def _spawned(transport: Literal["sse", "http"], workdir: Path) -> Iterator[RunningServer]:
    """The server in a subprocess on a free 127.0.0.1 port with a token, logging at DEBUG; stopped on exit."""
    port = _free_port()
    out, err = workdir / "stdout.log", workdir / "stderr.log"
    env = _child_env(
        CONTACT_MCP_DB=str(workdir / "contacts.db"), CONTACT_MCP_HTTP_TOKEN=TOKEN, CONTACT_MCP_LOG_LEVEL="DEBUG"
    )
    argv = _serve_argv("--transport", transport, "--host", "127.0.0.1", "--port", str(port))
    with out.open("wb") as out_file, err.open("wb") as err_file:
        proc = subprocess.Popen(argv, env=env, stdout=out_file, stderr=err_file)
        try:
            yield RunningServer(proc, f"http://127.0.0.1:{port}", out, err)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningServer]]:
    """One streamable-HTTP and one SSE server for the module, started side by side to halve the wait."""
    with ExitStack() as stack:
        running = {t: stack.enter_context(_spawned(t, tmp_path_factory.mktemp(t))) for t in ("http", "sse")}
        for server in running.values():
            _wait_healthy(server)
        yield running


@pytest.fixture
def http_server(servers: dict[str, RunningServer]) -> RunningServer:
    return servers["http"]


@pytest.fixture
def sse_server(servers: dict[str, RunningServer]) -> RunningServer:
    return servers["sse"]


async def _round_trip(client: Client, email: str) -> None:
    """upsert_contact then get_contact on what it created: the whole stack answered."""
    upserted = await client.call_tool("upsert_contact", {"email": email, "name": "Ada Lovelace"})
    assert upserted.is_error is False, upserted.content
    assert upserted.structured_content is not None
    contact_id = upserted.structured_content["id"]
    fetched = await client.call_tool("get_contact", {"contact_id": contact_id})
    assert fetched.is_error is False, fetched.content
    assert fetched.structured_content is not None
    assert fetched.structured_content["id"] == contact_id
    assert fetched.structured_content["name"] == "Ada Lovelace"


# ---------- stdio ----------


@pytest.mark.slow
async def test_stdio_client_lists_tools_and_round_trips_a_contact(tmp_path: Path) -> None:
    params = server_params({"CONTACT_MCP_DB": str(tmp_path / "contacts.db")})
    with anyio.fail_after(30):
        async with Client(params) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert {"upsert_contact", "get_contact", "find_contacts"} <= names
            await _round_trip(client, "ada@example.com")


@pytest.mark.slow
async def test_stdio_stdout_carries_only_json_rpc_even_with_debug_logs(tmp_path: Path) -> None:
    env = _child_env(CONTACT_MCP_DB=str(tmp_path / "contacts.db"), CONTACT_MCP_LOG_LEVEL="DEBUG")
    stderr_path = tmp_path / "stderr.log"
    lines: list[bytes] = []
    with anyio.fail_after(30), stderr_path.open("wb") as stderr_file:
        async with await anyio.open_process(_serve_argv(), env=env, stderr=stderr_file) as proc:
            assert proc.stdin is not None and proc.stdout is not None
            stdout = BufferedByteReceiveStream(proc.stdout)

            async def send(message: dict[str, Any]) -> None:
                assert proc.stdin is not None
                await proc.stdin.send(json.dumps(message).encode() + b"\n")

            async def response_to(request_id: int) -> dict[str, Any]:
                while True:  # bounded by fail_after; notifications the server sends are kept and checked too
                    line = await stdout.receive_until(b"\n", 4_000_000)
                    lines.append(line)
                    message = json.loads(line)
                    if message.get("id") == request_id:
                        return message

            await send(INIT)
            assert (await response_to(1))["result"]["serverInfo"]["name"] == "contact-mcp"
            await send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            await send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
            assert any(tool["name"] == "get_contact" for tool in (await response_to(2))["result"]["tools"])
            await send(
                {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "get_contact", "arguments": {}}}
            )
            bad = (await response_to(3))["result"]
            assert bad["isError"] is True
            assert bad["structuredContent"]["error"]["code"] == "invalid_argument"
            assert bad["structuredContent"]["error"]["field"] == "contact_id"
            upsert = {"name": "upsert_contact", "arguments": {"email": "grace@example.com"}}
            await send({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": upsert})
            good = (await response_to(4))["result"]
            assert good.get("isError") is not True
            assert good["structuredContent"]["outcome"] == "created"

            await proc.stdin.aclose()  # EOF: the server shuts down; anything it still writes is checked below
            assert await proc.wait() == 0
            rest = b""
            async for chunk in proc.stdout:
                rest += chunk
            lines.extend(line for line in rest.split(b"\n") if line)

    for line in lines:
        message = mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        assert message.jsonrpc == "2.0"
    assert b" DEBUG " in stderr_path.read_bytes()  # the logs were produced, and went to stderr


_DIVERSION_SCRIPT = """
import os, sys
from contact_mcp.serve.stdio import wire
with wire() as (stdin, stdout):
    print("start-up print")
    os.write(1, b"fd write\\n")
    print("fd 0 reads", repr(os.read(0, 100)), file=sys.stderr)
    stdout.write(stdin.readline().upper())
    stdout.flush()
    print("still buffered at the end")
"""


@pytest.mark.slow
def test_stdio_wire_is_private_and_everything_else_goes_to_stderr() -> None:
    """While serving, prints, raw fd writes and leftover buffers land on stderr, fd 0 reads nothing, and only the
    private wire carries protocol."""
    # Block-buffered stdout, as in a deployment: the prints sit in sys.stdout's buffer until someone flushes.
    env = {k: v for k, v in _child_env().items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run(
        [sys.executable, "-c", _DIVERSION_SCRIPT],
        env=env,
        input=b"from the client\n",
        capture_output=True,
        timeout=30,
        check=True,
    )
    assert done.stdout == b"FROM THE CLIENT\n"
    for text in (b"start-up print", b"fd write", b"fd 0 reads b''", b"still buffered at the end"):
        assert text in done.stderr


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_start_up_objects_are_frozen_before_serving(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, transport: Literal["stdio", "http"]
) -> None:
    """What start-up built is out of the collector's reach by the time the first request can arrive."""
    frozen_when_serving: list[int] = []

    def serve(*_args: object, **_kwargs: object) -> None:
        frozen_when_serving.append(gc.get_freeze_count())

    monkeypatch.setattr(anyio, "run", serve)
    monkeypatch.setattr(uvicorn.Server, "run", serve)
    gc.unfreeze()
    try:
        run(settings, transport=transport, port=_free_port())
    finally:
        gc.unfreeze()
    assert len(frozen_when_serving) == 1
    assert frozen_when_serving[0] > 10_000  # the SDK's and our modules, classes and schemas


# ---------- streamable HTTP over a socket ----------


@pytest.mark.slow
async def test_http_probes_answer_without_a_token(http_server: RunningServer) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        health = await http.get(f"{http_server.base}/healthz")
        ready = await http.get(f"{http_server.base}/readyz")
    assert health.status_code == 200
    assert health.json()["ok"] is True
    assert health.json()["sessions"]["saturated"] is False
    assert (ready.status_code, ready.json()) == (200, {"ready": True})


@pytest.mark.slow
@pytest.mark.parametrize(
    "authorization",
    [None, f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer"],
    ids=["missing", "wrong-token", "wrong-scheme", "no-scheme", "scheme-only"],
)
async def test_http_without_the_bearer_token_is_401(http_server: RunningServer, authorization: str | None) -> None:
    headers = MCP_HEADERS | ({"Authorization": authorization} if authorization else {})
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(f"{http_server.base}/mcp", json=INIT, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "unauthorized"
    assert TOKEN not in response.text


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["auto", "legacy"], ids=["auto", "legacy"])
async def test_http_client_with_the_token_calls_tools(
    http_server: RunningServer, mode: Literal["auto", "legacy"]
) -> None:
    with anyio.fail_after(30):
        async with httpx2.AsyncClient(headers=AUTH, timeout=httpx2.Timeout(10, read=30)) as http:
            transport = streamable_http_client(f"{http_server.base}/mcp", http_client=http)
            async with Client(transport, mode=mode) as client:
                await _round_trip(client, f"{mode}@example.com")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("headers", "status", "text"),
    [
        ({"Host": "evil.example"}, 421, "Invalid Host header"),
        ({"Host": "evil.example:80"}, 421, "Invalid Host header"),
        ({"Origin": "https://evil.example"}, 403, "Invalid Origin header"),
        ({"Origin": "http://localhost.evil.example:8000"}, 403, "Invalid Origin header"),
    ],
    ids=["foreign-host", "foreign-host-with-port", "foreign-origin", "lookalike-origin"],
)
async def test_http_dns_rebinding_protection_rejects_foreign_host_and_origin(
    http_server: RunningServer, headers: dict[str, str], status: int, text: str
) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(f"{http_server.base}/mcp", json=INIT, headers=MCP_HEADERS | AUTH | headers)
    assert (response.status_code, response.text) == (status, text)


@pytest.mark.slow
async def test_http_accepts_a_loopback_origin(http_server: RunningServer) -> None:
    origin = {"Origin": http_server.base}
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(f"{http_server.base}/mcp", json=INIT, headers=MCP_HEADERS | AUTH | origin)
    assert response.status_code == 200


@pytest.mark.slow
async def test_http_logs_go_to_stderr_and_never_show_the_token(http_server: RunningServer) -> None:
    marker, secret = uuid.uuid4().hex, uuid.uuid4().hex
    async with httpx2.AsyncClient(timeout=10) as http:
        await http.post(f"{http_server.base}/mcp?access_token={secret}", json=INIT, headers=MCP_HEADERS | AUTH)
        await http.get(f"{http_server.base}/healthz/{marker}?access_token={secret}")
    for _ in range(200):  # the access log line is written after the response: wait up to ~10 s for it
        if marker in http_server.stderr.read_text():
            break
        await anyio.sleep(0.05)
    else:
        pytest.fail("no access log line on stderr")
    assert http_server.stdout.read_bytes() == b""
    logged = http_server.stderr.read_text()
    assert TOKEN not in logged
    assert secret not in logged  # a query string may hold a token: access lines drop it


# ---------- SSE over a socket ----------


@pytest.mark.slow
async def test_sse_client_with_the_token_calls_tools(sse_server: RunningServer) -> None:
    with anyio.fail_after(30):
        async with Client(sse_client(f"{sse_server.base}/sse", headers=AUTH)) as client:
            await _round_trip(client, "sse@example.com")


@pytest.mark.slow
async def test_sse_without_the_token_is_401(sse_server: RunningServer) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.get(f"{sse_server.base}/sse")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.slow
async def test_sse_rejects_a_foreign_host(sse_server: RunningServer) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.get(f"{sse_server.base}/sse", headers=AUTH | {"Host": "evil.example"})
    assert (response.status_code, response.text) == (421, "Invalid Host header")


# ---------- the HTTP app in process: binding beyond loopback ----------

PUBLIC_HOSTS = ["0.0.0.0", "::", "192.168.1.10", "mcp.example.com", ""]
PUBLIC_IDS = ["any-ipv4", "any-ipv6", "lan-address", "hostname", "empty"]


@pytest.mark.parametrize("transport", ["http", "sse"], ids=["http", "sse"])
@pytest.mark.parametrize("host", PUBLIC_HOSTS, ids=PUBLIC_IDS)
def test_public_bind_without_a_token_is_refused(
    settings: Settings, host: str, transport: Literal["http", "sse"]
) -> None:
    with pytest.raises(ConfigError, match="CONTACT_MCP_HTTP_TOKEN"):
        build_http_app(build_server(settings), settings, transport=transport, host=host)
    with pytest.raises(ConfigError, match="CONTACT_MCP_HTTP_TOKEN"):
        run(settings, transport=transport, host=host, port=_free_port())


@pytest.mark.parametrize("token", ["", "   "], ids=["empty", "blank"])
def test_blank_token_is_refused_even_on_loopback(db_path: Path, token: str) -> None:
    settings = load_settings(db=str(db_path), http_token=token)
    with pytest.raises(ConfigError, match="CONTACT_MCP_HTTP_TOKEN") as caught:
        build_http_app(build_server(settings), settings, transport="http", host="127.0.0.1")
    assert "empty" in str(caught.value)


@pytest.mark.parametrize("token", ["x", "y" * 31], ids=["one-char", "31-chars"])
def test_a_short_token_is_refused_off_loopback_and_accepted_on_it(db_path: Path, token: str) -> None:
    settings = load_settings(db=str(db_path), http_token=token)
    with pytest.raises(ConfigError, match="at least 32") as caught:
        build_http_app(build_server(settings), settings, transport="http", host="0.0.0.0")
    assert token not in str(caught.value).replace("at least 32", "")
    build_http_app(build_server(settings), settings, transport="http", host="127.0.0.1")


def test_a_32_character_token_serves_off_loopback(db_path: Path) -> None:
    settings = load_settings(db=str(db_path), http_token="z" * 32)
    build_http_app(build_server(settings), settings, transport="http", host="0.0.0.0")


async def test_the_configured_token_is_stripped_like_the_presented_one(db_path: Path) -> None:
    """An env file often leaves a trailing newline: the token still matches what clients send."""
    settings = load_settings(db=str(db_path), http_token=f"  {TOKEN}\n")
    async with _asgi(settings, host="0.0.0.0", base_url="http://127.0.0.1:8000") as http:
        assert (await _post_init(http, **AUTH)).status_code == 200
        assert (await _post_init(http, Authorization=f"Bearer {TOKEN}x")).status_code == 401


@asynccontextmanager
async def _asgi(settings: Settings, *, host: str, base_url: str) -> AsyncIterator[httpx2.AsyncClient]:
    """The streamable-HTTP app without a socket; ASGITransport sends no lifespan, so run the session manager here."""
    server = build_server(settings)
    app = build_http_app(server, settings, transport="http", host=host)
    transport = httpx2.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=transport, base_url=base_url, timeout=10) as http,
    ):
        yield http


async def _post_init(http: httpx2.AsyncClient, **headers: str) -> httpx2.Response:
    return await http.post("/mcp", json=INIT, headers=MCP_HEADERS | headers)


async def test_public_bind_with_a_token_still_rejects_a_foreign_host(db_path: Path) -> None:
    settings = load_settings(db=str(db_path), http_token=TOKEN)
    async with _asgi(settings, host="0.0.0.0", base_url="http://evil.example") as http:
        response = await _post_init(http, **AUTH)
        assert (response.status_code, response.text) == (421, "Invalid Host header")
        assert (await _post_init(http, **AUTH, Host="localhost:8000")).status_code == 200
        assert (await _post_init(http, Host="localhost:8000")).status_code == 401


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "mcp.example.com"}, 200),
        ({"Host": "mcp.example.com:8443"}, 200),
        ({"Host": "api.example.org:443"}, 200),
        ({"Host": "api.example.org:444"}, 421),
        ({"Host": "mcp.example.com", "Origin": "https://mcp.example.com"}, 200),
        ({"Host": "mcp.example.com", "Origin": "https://evil.example"}, 403),
        ({"Host": "10.1.2.3:8000"}, 421),
    ],
    ids=[
        "allowed-name",
        "allowed-name-any-port",
        "allowed-name-exact-port",
        "allowed-name-other-port",
        "allowed-origin",
        "foreign-origin",
        "unlisted-address",
    ],
)
async def test_allowed_hosts_setting_extends_the_host_allowlist(
    db_path: Path, headers: dict[str, str], status: int
) -> None:
    settings = load_settings(db=str(db_path), http_token=TOKEN, allowed_hosts="mcp.example.com, api.example.org:443")
    async with _asgi(settings, host="0.0.0.0", base_url="http://127.0.0.1:8000") as http:
        assert (await _post_init(http, **AUTH, **headers)).status_code == status


@pytest.mark.parametrize(
    ("host", "host_header"),
    [("10.1.2.3", "10.1.2.3:8000"), ("fd00::7", "[fd00::7]:8000"), ("MCP.Example.com", "mcp.example.com")],
    ids=["ipv4", "ipv6", "hostname"],
)
async def test_the_bound_host_is_allowed(db_path: Path, host: str, host_header: str) -> None:
    settings = load_settings(db=str(db_path), http_token=TOKEN)
    async with _asgi(settings, host=host, base_url="http://127.0.0.1:8000") as http:
        assert (await _post_init(http, **AUTH, Host=host_header)).status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"], ids=["v4", "v4-range", "name", "v6"])
async def test_loopback_bind_needs_no_token(settings: Settings, host: str) -> None:
    async with _asgi(settings, host=host, base_url="http://127.0.0.1:8000") as http:
        assert (await _post_init(http)).status_code == 200
        assert (await _post_init(http, Host="evil.example")).status_code == 421
