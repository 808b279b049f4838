"""Three `contact-mcp serve --transport http` replicas on one PostgreSQL, through real MCP clients (streamable
HTTP on loopback): 64 concurrent writers spread over them on overlapping emails, user ids and usernames lose and
duplicate nothing, and every replica reads what any other wrote. Always on the PostgreSQL the suite started; the
replicas start once for the module (in parallel) and each test empties the database first. Counts are exact and
read back with SQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, AsyncExitStack, ExitStack, asynccontextmanager
from typing import Any

import httpx2
import psycopg
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.http_server import http_server
from tests.postgres_server import PostgresServer, create_schema, drop_schema
from tests.store.postgres.calls import counts, gather

pytestmark = pytest.mark.anyio

REPLICAS = 3
CLIENTS_PER_REPLICA = 2
EMAILS = [f"user{i}@example.com" for i in range(8)]
USER_IDS = [f"u-{i}" for i in range(8)]
PHONES = [f"+1415555010{i}" for i in range(8)]
USERNAMES = ["ann", "bob", "cy", "dee"]


@pytest.fixture(scope="module")
def replica_db(postgres_server: PostgresServer) -> Iterator[str]:
    schema = create_schema(postgres_server.url())
    yield postgres_server.url(schema=schema)
    drop_schema(postgres_server.url(), schema)


@pytest.fixture(scope="module")
def replicas(replica_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """The replicas' base URLs; started side by side (each start is mostly waiting for Python to import)."""
    logs = tmp_path_factory.mktemp("replicas")
    env = {"CONTACT_MCP_DB": replica_db, "CONTACT_MCP_DB_POOL_SIZE": "4"}
    with ExitStack() as stack:
        servers = [http_server(env, logs / f"replica{n}.log") for n in range(REPLICAS)]

        def start(server: AbstractContextManager[str]) -> str:
            return stack.enter_context(server)

        with ThreadPoolExecutor(REPLICAS) as pool:
            bases = list(pool.map(start, servers))
        yield bases


@pytest.fixture
def empty_db(replica_db: str, replicas: list[str]) -> str:
    with psycopg.connect(replica_db, autocommit=True) as conn:
        conn.execute("TRUNCATE identities, methods, contacts RESTART IDENTITY")
    return replica_db


@asynccontextmanager
async def http_clients(bases: list[str]) -> AsyncIterator[list[Client]]:
    """`CLIENTS_PER_REPLICA` MCP client sessions per replica, client c on replica c % REPLICAS."""
    async with AsyncExitStack() as stack:
        clients: list[Client] = []
        for c in range(len(bases) * CLIENTS_PER_REPLICA):
            http = await stack.enter_async_context(httpx2.AsyncClient(timeout=60))
            transport = streamable_http_client(f"{bases[c % len(bases)]}/mcp", http_client=http)
            clients.append(await stack.enter_async_context(Client(transport)))
        yield clients


def writer_call(k: int) -> tuple[str, dict[str, Any]]:
    """Call k of 64: eight people each upserted six ways (email alone, with their user id, with their phone), and
    four usernames each created four times in differing case."""
    i, mode = k % 8, (k // 8) % 4
    if mode == 0:
        return "upsert_contact", {"email": EMAILS[i], "name": f"Name {k}"}
    if mode == 1:
        return "upsert_contact", {"user_id": USER_IDS[i], "email": EMAILS[i], "name": f"Name {k}"}
    if mode == 2:
        username = USERNAMES[i % 4]
        return "create_contact", {"username": username.upper() if k % 2 else username, "phone_number": PHONES[i]}
    return "upsert_contact", {"user_id": USER_IDS[i], "email": EMAILS[i], "phone": PHONES[i]}


async def test_64_writers_over_three_replicas_lose_and_duplicate_nothing(replicas: list[str], empty_db: str) -> None:
    calls = [writer_call(k) for k in range(64)]
    async with http_clients(replicas) as clients:
        results = await gather([(clients[k % len(clients)], tool, args) for k, (tool, args) in enumerate(calls)])

    made = list(zip(calls, results, strict=True))
    upserts = [(args, r) for (tool, args), r in made if tool == "upsert_contact"]
    creates = [(args, r) for (tool, args), r in made if tool == "create_contact"]
    assert [r for _, r in upserts if "error" in r] == []
    assert sum(r["outcome"] == "created" for _, r in upserts) == 8
    ids = {email: {r["id"] for args, r in upserts if args["email"] == email} for email in EMAILS}
    assert all(len(one) == 1 for one in ids.values()), ids
    created = {args["username"].casefold(): r["id"] for args, r in creates if "error" not in r}
    assert sorted(created) == USERNAMES
    conflicts = [(args, r["error"]) for args, r in creates if "error" in r]
    assert len(conflicts) == 12
    for args, error in conflicts:
        assert (error["code"], error["existing_id"]) == ("conflict", created[args["username"].casefold()])

    # Eight people with an email and a phone each; four created contacts with a phone each.
    assert counts(empty_db) == {"contacts": 12, "methods": 8 * 2 + 4, "identities": 0}
    with psycopg.connect(empty_db, autocommit=True) as conn:
        people = conn.execute(
            "SELECT c.user_id, m.value FROM contacts c JOIN methods m ON m.contact_seq = c.seq "
            "WHERE m.kind = 'email' ORDER BY m.value"
        ).fetchall()
    assert people == list(zip(USER_IDS, EMAILS, strict=True))


async def test_every_replica_reads_what_another_wrote(replicas: list[str], empty_db: str) -> None:
    async with http_clients(replicas) as clients:
        n = len(clients)
        writes = [(clients[c], "upsert_contact", {"email": EMAILS[(c + j) % 8]}) for c in range(n) for j in range(4)]
        written = await gather(writes)
        # Client c + 1 sits on the next replica.
        reads = [(clients[(k // 4 + 1) % n], "get_contact", {"contact_id": w["id"]}) for k, w in enumerate(written)]
        read = await gather(reads)
        pages = await gather([(client, "find_contacts", {"limit": 50}) for client in clients[:REPLICAS]])

    assert sum(r["outcome"] == "created" for r in written) == 8
    ids = {email: {w["id"] for w in written if w["email"] == email} for email in EMAILS}
    assert all(len(one) == 1 for one in ids.values()), ids
    assert [(r["id"], r["methods"][0]["value"]) for r in read] == [(w["id"], w["email"]) for w in written]
    assert all(sorted(c["email"] for c in page["contacts"]) == EMAILS for page in pages)
    assert counts(empty_db) == {"contacts": 8, "methods": 8, "identities": 0}
