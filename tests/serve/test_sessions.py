"""Stateful streamable HTTP keeps a bounded number of sessions: at the cap the least recently active idle session
makes room, a cap of busy sessions is a 503 with Retry-After (never a lock-out for an idle timeout's length), and
/healthz says when sessions are saturated. A real server on 127.0.0.1 with a cap of 3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.http_server import Spawned, spawn_http
from tests.serve.polling import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # servers in child processes

VERSION = "2025-11-25"
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "sessions", "version": "0"}},
}


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[Spawned]:
    env = {"CONTACT_MCP_DB": str(tmp_path / "contacts.db"), "CONTACT_MCP_MAX_SESSIONS": "3"}
    with spawn_http(env, tmp_path / "server.log") as server:
        yield server


def _in(session: str) -> dict[str, str]:
    return HEADERS | {"mcp-session-id": session, "mcp-protocol-version": VERSION}


async def _open(http: httpx2.AsyncClient) -> str:
    response = await http.post("/mcp", json=INIT, headers=HEADERS)
    assert response.status_code == 200, response.text
    session = response.headers["mcp-session-id"]
    done = await http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=_in(session))
    assert done.status_code == 202
    return session


async def _list_tools(http: httpx2.AsyncClient, session: str) -> int:
    response = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=_in(session))
    return response.status_code


async def _sessions(http: httpx2.AsyncClient) -> dict[str, Any]:
    health = await http.get("/healthz")
    assert health.status_code == 200
    return health.json()["sessions"]


async def test_at_the_cap_the_least_recently_active_idle_session_makes_room(capped: Spawned) -> None:
    async with httpx2.AsyncClient(base_url=capped.base, timeout=10) as http:
        first, second, third = [await _open(http) for _ in range(3)]
        assert await _list_tools(http, first) == 200  # first is now more recent than second

        fourth = await _open(http)

        assert await _list_tools(http, second) == 404  # evicted: the spec has its client open a new session
        for kept in (first, third, fourth):
            assert await _list_tools(http, kept) == 200
        assert await _sessions(http) == {"open": 3, "max": 3, "evicted": 1, "saturated": False}


async def test_at_the_cap_a_request_that_cannot_open_a_session_evicts_none(capped: Spawned) -> None:
    # The SDK admits (and the cap evicts for) every session-less request before checking it; a refused one must not
    # end a real client's session: a foreign page's text/plain POST, refused by DNS-rebinding protection, would.
    refused: list[tuple[str, dict[str, str], bytes]] = [
        ("POST", HEADERS | {"Host": "attacker.example"}, json.dumps(INIT).encode()),
        ("POST", HEADERS | {"Origin": "http://attacker.example"}, json.dumps(INIT).encode()),
        ("POST", HEADERS | {"Content-Type": "text/plain"}, json.dumps(INIT).encode()),
        ("POST", HEADERS, json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}).encode()),
        ("POST", HEADERS, b"{not json"),
        ("GET", {"Accept": "text/event-stream"}, b""),
    ]
    async with httpx2.AsyncClient(base_url=capped.base, timeout=10) as http:
        sessions = [await _open(http) for _ in range(3)]
        for method, headers, body in refused:
            response = await http.request(method, "/mcp", headers=headers, content=body)
            assert 400 <= response.status_code < 500, (method, headers, response.status_code)

        for session in sessions:
            assert await _list_tools(http, session) == 200
        assert await _sessions(http) == {"open": 3, "max": 3, "evicted": 0, "saturated": False}
        await _open(http)  # a real client still makes room
        assert (await _sessions(http))["evicted"] == 1


async def test_with_every_session_busy_a_new_client_gets_503_with_retry_after_until_one_frees(capped: Spawned) -> None:
    async with httpx2.AsyncClient(base_url=capped.base, timeout=10) as http:
        sessions = [await _open(http) for _ in range(3)]
        async with AsyncExitStack() as streams:
            for session in sessions:  # an open GET stream is a request in flight: the session is not idle
                get = http.stream("GET", "/mcp", headers=_in(session) | {"Accept": "text/event-stream"})
                assert (await streams.enter_async_context(get)).status_code == 200

            refused = await http.post("/mcp", json=INIT, headers=HEADERS)

            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) > 0
            assert refused.json()["error"]["message"] == "Too many open sessions"
            assert (await _sessions(http))["saturated"] is True

        async def unsaturated() -> bool:  # the streams are closed: their sessions are idle again, room can be made
            return not (await _sessions(http))["saturated"]

        await eventually(unsaturated)
        assert await _open(http)
        assert [await _list_tools(http, session) for session in sessions].count(404) == 1


async def test_an_idle_session_ends_after_the_configured_timeout(tmp_path: Path) -> None:
    env = {"CONTACT_MCP_DB": str(tmp_path / "contacts.db"), "CONTACT_MCP_SESSION_IDLE_TIMEOUT": "0.5"}
    with spawn_http(env, tmp_path / "server.log") as server:
        async with httpx2.AsyncClient(base_url=server.base, timeout=10) as http:
            session = await _open(http)
            assert (await _sessions(http))["open"] == 1

            async def ended() -> bool:  # asked of /healthz: any request to the session would keep it alive
                return (await _sessions(http))["open"] == 0

            await eventually(ended)
            assert await _list_tools(http, session) == 404
