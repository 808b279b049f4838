"""PostgreSQL stopped and started again under a running `contact-mcp serve` (stdio, a real MCP client): calls while
it is down are a retryable `provider_unavailable`, and the server recovers by itself when it is back (the pool
reconnects in the background), within the few seconds its errors promise. On the PostgreSQL the suite started, which
these tests stop. And a statement the database fails on a working connection is not called an outage."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import anyio
import psycopg
import pytest
from mcp import Client

from contact_mcp.errors import ProviderUnavailable
from contact_mcp.store import LocalStore
from tests.postgres_server import PostgresServer
from tests.stdio_server import server_params
from tests.store.postgres.calls import counts

pytestmark = pytest.mark.anyio


async def test_the_server_rides_out_a_database_outage(
    postgres_server: PostgresServer, started_postgres_url: str
) -> None:
    env = {"CONTACT_MCP_DB": started_postgres_url, "CONTACT_MCP_CONNECT_TIMEOUT": "1"}
    async with Client(server_params(env)) as client:
        before = await client.call_tool("upsert_contact", {"email": "ann@example.com"})
        assert before.structured_content is not None and not before.is_error
        ann = before.structured_content["id"]

        postgres_server.stop()
        try:
            down = [
                await client.call_tool("upsert_contact", {"email": "bob@example.com"}),
                await client.call_tool("get_contact", {"contact_id": ann}),
                await client.call_tool("find_contacts", {}),
            ]
        finally:
            postgres_server.start()

        for result in down:
            assert result.is_error
            assert result.structured_content is not None
            error = result.structured_content["error"]
            assert (error["code"], error["retryable"]) == ("provider_unavailable", True), error
        with anyio.fail_after(60):  # the pool reconnects in the background, with backoff
            while (back := await client.call_tool("get_contact", {"contact_id": ann})).is_error:
                assert back.structured_content is not None
                assert back.structured_content["error"]["code"] == "provider_unavailable"
                await anyio.sleep(0.2)
        after = await client.call_tool("upsert_contact", {"email": "bob@example.com"})

    assert after.structured_content is not None and not after.is_error, after.content
    assert after.structured_content["outcome"] == "created"
    assert counts(started_postgres_url) == {"contacts": 2, "methods": 2, "identities": 0}


async def test_readiness_fails_while_the_database_is_down_and_returns_with_it(
    postgres_server: PostgresServer, started_postgres_url: str
) -> None:
    store = LocalStore.open(started_postgres_url)
    try:
        await store.ready()
        postgres_server.stop()
        try:
            with pytest.raises(ProviderUnavailable):
                await store.ready()
        finally:
            postgres_server.start()
        with anyio.fail_after(60):
            while True:
                try:
                    await store.ready()
                    break
                except ProviderUnavailable:
                    await anyio.sleep(0.2)
    finally:
        await store.aclose()


async def test_after_a_long_outage_a_caller_retrying_as_told_is_served_within_a_few_seconds(
    postgres_server: PostgresServer,
    started_postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # psycopg_pool's reconnection backoff doubled up to 300 s: 20 s down with a call a second, the database was
    # served again only about 10 s after it was back, while every error said "retry in a few seconds".
    monkeypatch.setenv("CONTACT_MCP_CONNECT_TIMEOUT", "1")
    # The rate limit lives on the logger, for the process: a fresh one, not what earlier tests here left of it.
    monkeypatch.setattr(logging.getLogger("psycopg.pool"), "filters", [])
    store = LocalStore.open(started_postgres_url)
    try:
        await store.ready()
        postgres_server.stop()
        try:
            down_until = anyio.current_time() + 20
            while anyio.current_time() < down_until:
                with pytest.raises(ProviderUnavailable) as down:
                    await store.ready()
                assert (down.value.hint or "").endswith("retry in a few seconds"), down.value.hint
                await anyio.sleep(1)
        finally:
            postgres_server.start()
        failed = 0
        while failed < 4:  # "a few seconds": four retries, a second apart
            try:
                await store.ready()
                break
            except ProviderUnavailable:
                failed += 1
                await anyio.sleep(1)
    finally:
        await store.aclose()
    assert failed < 4, "still unavailable after four retries a second apart"
    # The pool warns at each failed attempt (a few a second at times): rate-limited to a few lines a minute.
    pool_warnings = [r for r in caplog.records if r.name == "psycopg.pool" and r.levelno >= logging.WARNING]
    assert 1 <= len(pool_warnings) <= 6, [r.getMessage() for r in pool_warnings]


async def test_a_lock_timeout_is_retryable_and_not_called_an_outage(started_postgres_url: str) -> None:
    # The schema's `options` parameter comes last in the URL: a lock timeout joins it.
    env = {"CONTACT_MCP_DB": started_postgres_url + quote(" -clock_timeout=200")}
    async with Client(server_params(env)) as client:
        created = await client.call_tool("upsert_contact", {"email": "ann@example.com", "phone": "+14155550101"})
        assert created.structured_content is not None and not created.is_error
        ann = created.structured_content["id"]
        verify = {"contact_id": ann, "type": "phone", "value": "+14155550101", "verified": True}
        with psycopg.connect(started_postgres_url) as holder:  # a transaction holding ann's row
            holder.execute("SELECT 1 FROM contacts WHERE id = %s FOR UPDATE", (ann,))
            blocked = await client.call_tool("set_verification", verify)
        after = await client.call_tool("set_verification", verify)

    assert blocked.is_error and blocked.structured_content is not None
    error = blocked.structured_content["error"]
    assert (error["code"], error["retryable"]) == ("provider_unavailable", True), error
    assert "lock timeout" in error["message"]
    assert "unreachable" not in error["message"] and "reconnects" not in error["hint"], error
    assert not after.is_error, after.content


def test_an_export_the_database_leaves_part_way_stops_in_one_line(
    postgres_server: PostgresServer, started_postgres_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "CONTACT_MCP_DB": started_postgres_url, "CONTACT_MCP_CONNECT_TIMEOUT": "1"}
    people = tmp_path / "people.csv"
    people.write_text("email\n" + "".join(f"p{n}@example.com\n" for n in range(1_200)))
    subprocess.run([sys.executable, "-m", "contact_mcp", "import", str(people)], env=env, check=True, timeout=120)
    export = subprocess.Popen(
        [sys.executable, "-m", "contact_mcp", "export"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # Unread, the pipe fills long before the first page of 500 is written: the export waits there for its reader.
    assert export.stdout is not None and export.stdout.readline()
    postgres_server.stop()
    try:
        out, err = export.communicate(timeout=120)
    finally:
        postgres_server.start()

    assert export.returncode == 1
    lines = err.decode().strip().splitlines()
    assert not any("Traceback" in line for line in lines)  # the pool's rate-limited warnings may come first
    assert lines[-1].startswith("contact-mcp: export stopped: ") and "stdout holds the contacts exported" in lines[-1]
    assert 1 + len(out.splitlines()) < 1_200
