"""The plan: which provider serves which tool, and the selection (flags and environment) the server, `doctor` and
`manifest` share. Unit checks on `make_plan`, then the same rules seen through a real MCP client and the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from contact_mcp import ConfigError, build_server, load_settings
from contact_mcp.models import Operation
from contact_mcp.providers.feather import FeatherClient
from contact_mcp.tools.plan import make_plan
from contact_mcp.tools.table import TOOL_NAMES, TOOLS
from tests.stdio_server import server_params
from tests.test_cli import exit_code, run_cli

pytestmark = pytest.mark.anyio

READS = ["get_contact", "find_contacts"]
"""The reads every provider can serve (with several, they take a `provider` argument)."""
WRITES = [spec.name for spec in TOOLS if not spec.read_only]
KEYS: dict[str, Any] = {
    "feather_api_key": "fk-1234",
    "tetherai_api_key": "tk-1234",
    "tetherai_base_url": "http://127.0.0.1:9",
    "blooio_api_key": "bk-1234",
    "featurebase_api_key": "sk_test_1234",
    "protocol_api_key": "pk-1234",
    "protocol_base_url": "http://127.0.0.1:9",
}


def routes(providers: str, **selection: Any) -> dict[str, tuple[str, ...]]:
    settings = load_settings(providers=providers, **KEYS, **selection)
    return {route.spec.name: route.providers for route in make_plan(settings).routes}


# ---------- serving ----------


def test_local_alone_serves_every_tool() -> None:
    assert routes("local") == dict.fromkeys(TOOL_NAMES, ("local",))


def test_local_beside_a_provider_serves_the_writes_the_provider_does_not_and_shares_the_reads() -> None:
    assert routes("local,blooio") == {
        "attach_contact": ("local",),
        "attach_identity": ("blooio",),
        "set_verification": ("local",),
        "upsert_contact": ("local",),
        "create_contact": ("local",),
        "delete_contact": ("local", "blooio"),
        "detach_identity": ("blooio",),
        "detach_contact": ("local",),
        "get_contact": ("local", "blooio"),
        "find_contacts": ("local", "blooio"),
        "find_duplicates": ("local",),
        "merge_contacts": ("local",),
    }


def test_three_providers_side_by_side_each_serve_their_writes_and_all_serve_the_reads() -> None:
    assert routes("featurebase,blooio,tetherai") == {
        "attach_identity": ("blooio",),
        "set_verification": ("tetherai",),
        "upsert_contact": ("featurebase",),
        "delete_contact": ("featurebase", "blooio"),
        "detach_identity": ("blooio",),
        "get_contact": ("featurebase", "blooio", "tetherai"),
        "find_contacts": ("featurebase", "blooio", "tetherai"),
    }


def test_every_provider_that_deletes_serves_delete_contact_together() -> None:
    """Four APIs document deleting a contact; enabling all of them stays valid (delete_contact takes `provider`),
    unlike a write two HTTP providers serve."""
    served = routes("feather,tetherai,blooio,featurebase,protocol")
    assert served["delete_contact"] == ("feather", "blooio", "featurebase", "protocol")
    assert served["detach_identity"] == ("blooio",)
    assert "detach_contact" not in served  # no provider API documents taking one value off a contact


def test_two_http_providers_for_one_write_tool_is_a_start_up_error_naming_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No two of today's providers share a write; one declaring another's write must be refused, not routed."""
    monkeypatch.setattr(FeatherClient, "operations", FeatherClient.operations | {Operation.UPSERT_CONTACT})
    with pytest.raises(ConfigError) as info:
        routes("feather,featurebase")
    assert all(word in str(info.value) for word in ("feather", "featurebase", "upsert_contact"))
    # Selected away, the clash no longer matters.
    assert "upsert_contact" not in routes("feather,featurebase", exclude_tools="upsert_contact")


# ---------- selection ----------


def test_tools_keeps_only_the_named_tools() -> None:
    assert list(routes("local", tools="find_contacts,upsert_contact")) == ["upsert_contact", "find_contacts"]


def test_exclude_tools_drops_the_named_tools() -> None:
    assert list(routes("local", exclude_tools="create_contact, set_verification")) == [
        "attach_contact",
        "attach_identity",
        "upsert_contact",
        "delete_contact",
        "detach_identity",
        "detach_contact",
        "get_contact",
        "find_contacts",
        "find_duplicates",
        "merge_contacts",
    ]


def test_read_only_wins_over_everything() -> None:
    assert list(routes("local", read_only=True, tools="upsert_contact,get_contact")) == ["get_contact"]
    assert list(routes("local,blooio", read_only=True)) == [*READS, "find_duplicates"]


def test_read_only_never_serves_a_tool_that_deletes_even_when_named() -> None:
    erasure = "delete_contact,detach_identity,detach_contact"
    assert list(routes("local,blooio,featurebase", read_only=True, tools=f"{erasure},get_contact")) == ["get_contact"]
    with pytest.raises(ConfigError, match="no tool is left"):
        routes("local", read_only=True, tools=erasure)


@pytest.mark.parametrize("field", ["tools", "exclude_tools"])
def test_an_unknown_tool_name_is_a_start_up_error_listing_the_names(field: str) -> None:
    with pytest.raises(ConfigError) as info:
        routes("local", **{field: "get_contact,delete_everything"})
    message = str(info.value)
    assert "delete_everything" in message
    assert all(name in message for name in TOOL_NAMES)
    assert f"CONTACT_MCP_{field.upper()}" in message


def test_a_selection_that_leaves_no_tool_is_a_start_up_error() -> None:
    with pytest.raises(ConfigError, match="no tool is left"):
        routes("local", tools="get_contact", exclude_tools="get_contact")
    with pytest.raises(ConfigError, match="no tool is left"):
        routes("protocol", tools="attach_identity")  # not served by the enabled provider


def test_the_environment_variables_select(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTACT_MCP_TOOLS", "get_contact,find_contacts,upsert_contact")
    monkeypatch.setenv("CONTACT_MCP_EXCLUDE_TOOLS", "find_contacts")
    assert list(routes("local")) == ["upsert_contact", "get_contact"]
    monkeypatch.setenv("CONTACT_MCP_READ_ONLY", "true")
    assert list(routes("local")) == ["get_contact"]


# ---------- the same plan through a client, doctor and manifest ----------


async def test_a_read_served_by_several_providers_takes_a_required_provider_enum(db_path: Path) -> None:
    settings = load_settings(providers="local,blooio", db=str(db_path), **KEYS)
    async with Client(build_server(settings)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in [*READS, "delete_contact"]:
        schema = tools[name].input_schema
        assert schema["properties"]["provider"]["enum"] == ["local", "blooio"]
        assert schema["properties"]["provider"]["type"] == "string"
        assert "provider" in schema["required"]
        assert (tools[name].description or "").endswith("Provider: local, Blooio.")
        hints = tools[name].annotations
        assert hints is not None and hints.open_world_hint is True
    assert "provider" not in tools["upsert_contact"].input_schema["properties"]


async def test_read_only_lists_no_tool_that_writes_or_deletes(db_path: Path) -> None:
    settings = load_settings(providers="local,blooio,featurebase", db=str(db_path), read_only=True, **KEYS)
    async with Client(build_server(settings)) as client:
        listed = [tool.name for tool in (await client.list_tools()).tools]
    assert listed == [*READS, "find_duplicates"]


async def test_a_read_served_by_one_provider_has_no_provider_argument(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in READS:
        assert "provider" not in tools[name].input_schema["properties"]


async def test_a_read_without_its_provider_is_an_invalid_argument_naming_it(db_path: Path) -> None:
    settings = load_settings(providers="local,blooio", db=str(db_path), **KEYS)
    async with Client(build_server(settings)) as client:
        for arguments in (
            {"contact_id": "x"},
            {"contact_id": "x", "provider": None},
            {"contact_id": "x", "provider": "feather"},
        ):
            result = await client.call_tool("get_contact", arguments)
            assert result.is_error
            error = (result.structured_content or {})["error"]
            assert (error["code"], error["field"]) == ("invalid_argument", "provider")


@pytest.mark.slow
async def test_serve_flags_select_over_stdio(db_path: Path) -> None:
    params = server_params({"CONTACT_MCP_DB": str(db_path), "CONTACT_MCP_TOOLS": "upsert_contact"})
    params.args = [
        *params.args,
        "--tools",
        "get_contact,upsert_contact,find_contacts",
        "--exclude-tools",
        "find_contacts",
    ]
    with anyio.fail_after(60):
        async with Client(params) as client:
            assert [tool.name for tool in (await client.list_tools()).tools] == ["upsert_contact", "get_contact"]
    params.args = [*params.args, "--read-only"]
    with anyio.fail_after(60):
        async with Client(params) as client:
            assert [tool.name for tool in (await client.list_tools()).tools] == ["get_contact"]


@pytest.mark.slow
def test_serve_with_an_unknown_tool_exits_2_listing_the_names() -> None:
    done = run_cli("serve", "--tools", "get_contact,nope")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "nope" in line and "find_contacts" in line


def test_doctor_prints_the_plan_with_the_selection(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONTACT_MCP_DB", str(db_path))
    monkeypatch.setenv("CONTACT_MCP_READ_ONLY", "1")
    assert exit_code(["doctor"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip() and line.split()[0] in TOOL_NAMES}
    assert "local" in lines["get_contact"] and "local" in lines["find_contacts"]
    for name in WRITES:
        assert "not selected" in lines[name]


@pytest.mark.slow
def test_manifest_renders_the_full_local_plan_whatever_the_environment_selects(tmp_path: Path) -> None:
    done = run_cli(
        "manifest", "--check", env={"CONTACT_MCP_READ_ONLY": "true", "CONTACT_MCP_EXCLUDE_TOOLS": "get_contact"}
    )
    assert done.returncode == 0, done.stderr


def test_the_plan_in_words_says_why_a_tool_is_missing() -> None:
    settings = load_settings(providers="local,blooio", exclude_tools="create_contact", **KEYS)
    lines = {line.split()[0]: line for line in make_plan(settings).lines()}
    assert lines["attach_identity"].split()[1:] == ["blooio", "(Blooio)"]
    assert lines["get_contact"].endswith("local, blooio (Blooio)  (provider argument)")
    assert lines["create_contact"].endswith("not selected")
    alone = {line.split()[0]: line for line in make_plan(load_settings(providers="blooio", **KEYS)).lines()}
    assert alone["create_contact"].endswith("not served by an enabled provider")
