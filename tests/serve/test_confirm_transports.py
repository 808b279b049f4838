"""Confirmation over the transports a deployment uses: stdio (a subprocess, as a desktop host starts it) and
streamable HTTP on real loopback sockets (legacy elicitation hangs over an in-process ASGI transport), stateful
and stateless, on both protocol eras; and a question answered on another replica (two stateless processes sharing
the request-state key and server name, a 2026-07-28 client whose retry goes to the other one).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Literal

import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from tests.confirming import ERAS, User, clearing, error_of, phone_over, seed_over
from tests.http_server import Spawned, spawn_http
from tests.stdio_server import server_params

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # servers in child processes

TOKEN = "confirm-test-token-" + "x" * 24
Mode = Literal["auto", "legacy"]


# ---------- stdio ----------


@pytest.mark.parametrize("mode", list(ERAS))
async def test_over_stdio_decline_needs_confirm_and_accept(tmp_path: Path, mode: Mode) -> None:
    params = server_params({"CONTACT_MCP_DB": str(tmp_path / "contacts.db")})
    with (tmp_path / "stderr.log").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode=mode) as plain:
            assert plain.protocol_version == ERAS[mode]
            contact_id = await seed_over(plain)
            refused = await plain.call_tool("set_verification", clearing(contact_id))
        assert error_of(refused)["code"] == "confirmation_required"

        no = User(action="decline")
        async with Client(stdio_client(params, errlog=errlog), mode=mode, elicitation_callback=no) as asking:
            declined = await asking.call_tool("set_verification", clearing(contact_id, confirm=True))
            assert (await phone_over(asking, contact_id))["verified"] is True
        assert error_of(declined)["code"] == "declined"
        assert len(no.asked) == 1
        assert "Ada Lovelace" in no.asked[0]

        yes = User()
        async with Client(stdio_client(params, errlog=errlog), mode=mode, elicitation_callback=yes) as asking:
            accepted = await asking.call_tool("set_verification", clearing(contact_id))
            assert (await phone_over(asking, contact_id))["verified"] is False
        assert not accepted.is_error, accepted.content
        assert len(yes.asked) == 1


# ---------- HTTP ----------


class Replicas(httpx2.AsyncBaseTransport):
    """A load balancer in the client: the n-th `tools/call` goes to `ports[n % len(ports)]` (everything else to the
    first), and each call's port and whether it carried a request state are recorded."""

    def __init__(self, *ports: int) -> None:
        self.ports = ports
        self.calls: list[tuple[int, bool]] = []
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = request.content
        port = self.ports[0]
        if b'"tools/call"' in body:
            port = self.ports[len(self.calls) % len(self.ports)]
            self.calls.append((port, b'"requestState"' in body))
        request.url = request.url.copy_with(port=port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@asynccontextmanager
async def over_http(
    base: str, mode: Mode, user: User | None = None, transport: httpx2.AsyncBaseTransport | None = None
) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30, transport=transport) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=mode, elicitation_callback=user) as c,
    ):
        assert c.protocol_version == ERAS[mode]
        yield c


def _port(spawned: Spawned) -> int:
    return int(spawned.base.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Spawned]]:
    """On one database: a stateful server; two stateless replicas sharing a request-state key and a server name
    ("a", "b"); and a stateless replica with the same name but another key ("stranger")."""
    tmp = tmp_path_factory.mktemp("confirm")
    shared = secrets.token_hex(32)
    base_env = {"CONTACT_MCP_DB": str(tmp / "contacts.db"), "CONTACT_MCP_HTTP_TOKEN": TOKEN}
    replica_env = base_env | {"CONTACT_MCP_SERVER_NAME": "contacts-eu"}
    with ExitStack() as stack:
        yield {
            "stateful": stack.enter_context(spawn_http(base_env, tmp / "stateful.log")),
            "a": stack.enter_context(
                spawn_http(replica_env | {"CONTACT_MCP_REQUEST_STATE_KEY": shared}, tmp / "a.log", "--stateless")
            ),
            "b": stack.enter_context(
                spawn_http(replica_env | {"CONTACT_MCP_REQUEST_STATE_KEY": shared}, tmp / "b.log", "--stateless")
            ),
            "stranger": stack.enter_context(
                spawn_http(
                    replica_env | {"CONTACT_MCP_REQUEST_STATE_KEY": secrets.token_hex(32)},
                    tmp / "stranger.log",
                    "--stateless",
                )
            ),
        }


async def _seed(base: str) -> str:
    async with over_http(base, "auto") as plain:
        return await seed_over(plain, email=f"ada+{secrets.token_hex(4)}@example.com")


async def _verified(base: str, contact_id: str) -> bool:
    async with over_http(base, "auto") as plain:
        return bool((await phone_over(plain, contact_id))["verified"])


@pytest.mark.parametrize(
    ("where", "mode"),
    [("stateful", "auto"), ("stateful", "legacy"), ("a", "auto")],
    ids=["stateful-2026", "stateful-2025", "stateless-2026"],  # stateless 2025: the next test but one
)
async def test_http_a_client_that_can_be_asked_is_asked(servers: dict[str, Spawned], where: str, mode: Mode) -> None:
    base = servers[where].base
    contact_id = await _seed(base)

    no = User(action="decline")
    async with over_http(base, mode, no) as asking:
        declined = await asking.call_tool("set_verification", clearing(contact_id, confirm=True))
    assert error_of(declined)["code"] == "declined"
    assert len(no.asked) == 1
    assert await _verified(base, contact_id) is True

    yes = User()
    async with over_http(base, mode, yes) as asking:
        accepted = await asking.call_tool("set_verification", clearing(contact_id))
    assert not accepted.is_error, accepted.content
    assert len(yes.asked) == 1
    assert f"(id {contact_id})" in yes.asked[0]
    assert await _verified(base, contact_id) is False


@pytest.mark.parametrize("mode", list(ERAS))
async def test_http_a_client_without_elicitation_needs_confirm(servers: dict[str, Spawned], mode: Mode) -> None:
    base = servers["stateful"].base
    contact_id = await _seed(base)
    async with over_http(base, mode) as plain:
        refused = await plain.call_tool("set_verification", clearing(contact_id))
        assert (await phone_over(plain, contact_id))["verified"] is True
        done = await plain.call_tool("set_verification", clearing(contact_id, confirm=True))
    assert error_of(refused)["code"] == "confirmation_required"
    assert not done.is_error, done.content
    assert await _verified(base, contact_id) is False


async def test_http_stateless_legacy_clients_cannot_be_asked(servers: dict[str, Spawned]) -> None:
    """A 2025 client on stateless HTTP declared elicitation but has no back-channel: it takes the confirm path."""
    base = servers["a"].base
    contact_id = await _seed(base)
    user = User()
    async with over_http(base, "legacy", user) as asking:
        refused = await asking.call_tool("set_verification", clearing(contact_id))
        assert (await phone_over(asking, contact_id))["verified"] is True
        done = await asking.call_tool("set_verification", clearing(contact_id, confirm=True))
    assert user.asked == []
    assert error_of(refused)["code"] == "confirmation_required"
    assert not done.is_error, done.content
    assert await _verified(base, contact_id) is False


async def test_a_question_asked_by_one_replica_is_answered_on_another(servers: dict[str, Spawned]) -> None:
    contact_id = await _seed(servers["a"].base)
    balancer = Replicas(_port(servers["a"]), _port(servers["b"]))
    user = User()
    async with over_http(servers["a"].base, "auto", user, transport=balancer) as asking:
        result = await asking.call_tool("set_verification", clearing(contact_id))

    assert not result.is_error, result.content
    assert len(user.asked) == 1
    assert balancer.calls == [(_port(servers["a"]), False), (_port(servers["b"]), True)]
    assert await _verified(servers["a"].base, contact_id) is False


async def test_a_replica_with_another_key_refuses_the_answer_and_nothing_changes(servers: dict[str, Spawned]) -> None:
    contact_id = await _seed(servers["a"].base)
    balancer = Replicas(_port(servers["a"]), _port(servers["stranger"]))
    user = User()
    async with over_http(servers["a"].base, "auto", user, transport=balancer) as asking:
        with pytest.raises(MCPError, match="requestState"):
            await asking.call_tool("set_verification", clearing(contact_id))

    assert len(user.asked) == 1
    assert [port for port, _ in balancer.calls] == [_port(servers["a"]), _port(servers["stranger"])]
    assert await _verified(servers["a"].base, contact_id) is True
