"""Start-up on PostgreSQL: migrations applied once however many replicas start together, a newer database
refused, and every unusable CONTACT_MCP_DB a one-line `ConfigError` naming the variable, its password masked."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from mcp import Client

from contact_mcp import ConfigError, build_server, load_settings
from contact_mcp.store import postgres
from contact_mcp.store.migrations.postgres import SCHEMA_VERSION
from contact_mcp.tools.table import TOOL_NAMES
from tests.fakes.harness import free_port
from tests.store.postgres.calls import scalar
from tests.test_cli import exit_code, run_cli

pytestmark = pytest.mark.anyio

PASSWORD = "s3cret-Pw-9f2c"


def with_password(url: str) -> str:
    """`url` naming a password (the suite's server trusts loopback, so it is accepted and ignored)."""
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@", 1)


def test_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    """Eight preflights at once on an empty database: without the advisory lock, all but one would fail creating
    tables that another had just created."""
    settings = load_settings(db=postgres_url)
    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(postgres.preflight, settings) for _ in range(8)]:
            future.result()

    assert scalar(postgres_url, "SELECT version FROM contact_mcp_schema") == SCHEMA_VERSION
    assert scalar(postgres_url, "SELECT count(*) FROM contact_mcp_schema") == 1
    assert scalar(postgres_url, "SELECT count(*) FROM contacts") == 0


async def test_a_migrated_database_serves_every_tool(postgres_url: str) -> None:
    settings = load_settings(db=postgres_url)
    async with Client(build_server(settings)) as client:
        upserted = await client.call_tool("upsert_contact", {"email": "ann@example.com"})
        tools = await client.list_tools()
    assert not upserted.is_error
    assert [tool.name for tool in tools.tools] == list(TOOL_NAMES)
    assert scalar(postgres_url, "SELECT count(*) FROM contacts") == 1


def test_a_database_newer_than_the_code_is_a_start_up_error(postgres_url: str) -> None:
    settings = load_settings(db=with_password(postgres_url))
    postgres.preflight(settings)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE contact_mcp_schema SET version = %s", (SCHEMA_VERSION + 1,))

    with pytest.raises(ConfigError) as caught:
        build_server(settings)

    message = str(caught.value)
    assert message.startswith("CONTACT_MCP_DB=postgresql://***@127.0.0.1")
    assert f"schema version {SCHEMA_VERSION + 1}, newer than this contact-mcp understands" in message
    assert PASSWORD not in message


@pytest.mark.slow
def test_an_unreachable_database_is_one_line_naming_the_variable_without_the_password() -> None:
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/contacts"
    done = run_cli("serve", env={"CONTACT_MCP_DB": url, "CONTACT_MCP_CONNECT_TIMEOUT": "2"})

    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("contact-mcp: CONTACT_MCP_DB=postgresql://***@127.0.0.1:")
    assert "cannot connect to PostgreSQL" in lines[0]
    assert PASSWORD not in done.stderr


@pytest.mark.parametrize(
    ("change", "says"),
    [
        pytest.param(("/postgres?", "/no_such_database?"), "cannot connect", id="missing-database"),
        pytest.param(("postgresql://postgres", "postgresql://nobody_here"), "cannot connect", id="unknown-role"),
        pytest.param(("?options", "?sslmode=bogus&options"), "invalid sslmode", id="bad-parameter"),
    ],
)
def test_a_misconfigured_url_is_a_config_error_naming_the_variable(
    postgres_url: str, change: tuple[str, str], says: str
) -> None:
    url = with_password(postgres_url).replace(*change)
    with pytest.raises(ConfigError) as caught:
        build_server(load_settings(db=url))

    message = str(caught.value)
    assert message.startswith("CONTACT_MCP_DB=postgresql://")
    assert says in message
    assert "\n" not in message
    assert PASSWORD not in message


ENCODED = "p%40ss%2fWord-9f2c"  # as written in the URL: PostgreSQL reads p@ss/Word-9f2c


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"postgresql://postgres:{ENCODED}@[::1:5432/contacts", id="unclosed-ipv6-bracket"),
        pytest.param(f"postgresql://postgres:{ENCODED}%@127.0.0.1:5432/contacts", id="bad-percent-escape"),
    ],
)
def test_a_percent_encoded_password_is_masked_as_written_too(url: str) -> None:
    """libpq's errors quote the URL as written: masking only the decoded password printed an encoded one whole."""
    with pytest.raises(ConfigError) as caught:
        postgres.preflight(load_settings(db=url))

    message = str(caught.value)
    assert message.startswith("CONTACT_MCP_DB=")
    assert "p%40ss" not in message.lower()
    assert "p@ss" not in message
    assert "Word-9f2c" not in message


def test_a_scheme_in_capitals_connects(postgres_url: str) -> None:
    # Schemes are case-insensitive (RFC 3986), and the setting took POSTGRESQL:// as PostgreSQL; libpq reads only
    # lower case, so it took the URL for a "key=value" string and refused it ('missing "=" after ...').
    settings = load_settings(db=postgres_url.replace("postgresql://", "POSTGRESQL://", 1))
    postgres.preflight(settings)

    assert settings.db.startswith("postgresql://")


def test_a_database_the_role_cannot_write_is_refused_unless_read_only(postgres_url: str) -> None:
    postgres.preflight(load_settings(db=postgres_url))
    read_only = postgres_url.replace("options=", "options=-cdefault_transaction_read_only%3Don%20", 1)

    with pytest.raises(ConfigError) as caught:
        postgres.preflight(load_settings(db=read_only))
    postgres.preflight(load_settings(db=read_only, read_only=True))

    assert "cannot be written" in str(caught.value)
    assert "CONTACT_MCP_READ_ONLY" in str(caught.value)


def test_doctor_masks_the_password_and_probes_the_database(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONTACT_MCP_DB", with_password(postgres_url))
    assert exit_code(["doctor"]) == 0
    out, err = capsys.readouterr()

    assert PASSWORD not in out + err
    assert "postgresql://***@127.0.0.1" in out
    probe = next(line for line in out.splitlines() if line.strip().startswith("local"))
    assert "ok" in probe
    assert "PostgreSQL" in probe
    assert "0 contact(s)" in probe
