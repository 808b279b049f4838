"""The README's claims a newcomer acts on: the desktop snippets launch, every setting and secret file is documented,
the example scripts and the providers are introduced, and the quick test subset is named."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from contact_mcp import Settings
from contact_mcp.settings import HTTP_PROVIDERS, env_name, file_variables
from contact_mcp.tools.table import TOOL_NAMES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
EXAMPLES = ROOT / "examples"
HOST_VARIABLES = ("${workspaceFolder}/", "${userHome}/")  # expanded by VS Code and Cursor before launching


def section(heading: str) -> str:
    """The README's text under `## heading`, up to the next `## `."""
    start = README.index(f"\n## {heading}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def code_blocks(language: str, text: str = README) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def desktop_servers() -> list[tuple[str, dict[str, Any]]]:
    """(where, server entry) for every MCP server entry in the README's JSON and in examples/*.json."""
    configs = [("README.md", json.loads(block)) for block in code_blocks("json") if '"command"' in block]
    configs += [(path.name, json.loads(path.read_text())) for path in sorted(EXAMPLES.glob("*.json"))]
    servers = [
        (where, server)
        for where, config in configs
        for key in ("mcpServers", "servers")
        for server in config.get(key, {}).values()
    ]
    assert len(servers) >= 5  # two in the README, three host files
    return servers


@pytest.mark.parametrize(
    ("where", "server"), [pytest.param(*entry, id=f"{entry[0]}-{n}") for n, entry in enumerate(desktop_servers())]
)
def test_desktop_snippets_name_the_script_by_absolute_path(where: str, server: dict[str, Any]) -> None:
    """A desktop client starts servers without a shell or the venv on PATH: a bare `contact-mcp` is ENOENT."""
    command = str(server["command"])
    expanded = command
    for variable in HOST_VARIABLES:
        expanded = expanded.replace(variable, "/", 1) if expanded.startswith(variable) else expanded
    assert PurePosixPath(expanded).is_absolute(), f"{where}: {command!r} is not an absolute path"
    assert command.endswith("/.venv/bin/contact-mcp"), where
    assert server["args"] == ["serve"]


@pytest.mark.slow
def test_the_readme_one_liner_prints_a_script_a_desktop_client_can_launch(tmp_path: Path) -> None:
    (line,) = [line for block in code_blocks("bash") for line in block.splitlines() if " -c " in line]
    interpreter, code = re.fullmatch(r'(\S+) -c "(.*)"', line.strip()).groups()  # type: ignore[union-attr]
    assert interpreter == ".venv/bin/python"
    printed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    script = Path(printed)
    assert script.is_absolute()
    assert script.name == "contact-mcp"

    async def tool_names() -> list[str]:
        env = {"CONTACT_MCP_DB": str(tmp_path / "contacts.db")}
        async with Client(StdioServerParameters(command=str(script), args=["serve"], env=env)) as client:
            return [tool.name for tool in (await client.list_tools()).tools]

    assert "upsert_contact" in anyio.run(tool_names)


def configuration_variables() -> set[str]:
    table = [line for line in section("Configuration").splitlines() if line.startswith("| `")]
    named: set[str] = set()
    for row in table:
        for name in re.findall(r"`([A-Z0-9_<>]+)`", row.split(" | ")[0]):
            expansions = [name.replace("<P>", p.upper()) for p in HTTP_PROVIDERS] if "<P>" in name else [name]
            named.update(expansions)
    return named


def test_the_configuration_table_lists_every_settings_variable() -> None:
    missing = sorted(
        env_name(field) for field in Settings.model_fields if env_name(field) not in configuration_variables()
    )
    assert missing == []


def test_every_variable_that_may_come_from_a_file_is_named_with_the_file_convention() -> None:
    configuration = section("Configuration")
    assert "`<VAR>_FILE`" in configuration
    assert [variable for variable in file_variables() if f"`{variable}`" not in configuration] == []


@pytest.mark.parametrize("script", sorted(path.name for path in EXAMPLES.glob("*.py")))
def test_the_readme_says_how_to_run_each_example_script(script: str) -> None:
    commands = [line for block in code_blocks("bash") for line in block.splitlines()]
    assert any(re.search(rf"\bpython examples/{re.escape(script)}\b", line) for line in commands)


@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
def test_each_provider_is_introduced_with_a_link(provider: str) -> None:
    bullets = section("Providers").split("\n- **")[1:]  # each bullet with its continuation lines
    (bullet,) = [text for text in bullets if text.lower().lstrip("[").startswith(provider)]
    assert re.search(r"\]\((https://[^)]+|tests/fakes/[a-z]+\.py)\)", bullet), bullet


@pytest.mark.parametrize("command", ["import", "export"])
def test_the_export_and_import_section_states_every_exit_code_of_each_command(command: str) -> None:
    # 130 (Ctrl-C), which both commands return (`cli.main`), went unmentioned; export's codes were not given at all.
    bullets = section("Export and import").split("\n- **")[1:]
    (bullet,) = [text for text in bullets if text.startswith(f"Exit codes of {command}**")]
    assert re.findall(r"`(\d+)`", bullet) == ["0", "1", "2", "130"]


def test_the_development_section_names_the_quick_subset_the_markers_define() -> None:
    development = "".join(code_blocks("bash", section("Development")))
    assert "python -m pytest -m quick" in development
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert any(marker.startswith("quick:") for marker in markers)
    assert any(marker.startswith("slow:") for marker in markers)


@pytest.mark.slow
def test_the_readme_commands_for_the_example_scripts_run_as_written(tmp_path: Path) -> None:
    """The block that runs both scripts, verbatim but for the port (a free one, which the client is told) and the
    database path."""
    (block,) = [block for block in code_blocks("bash") if "python examples/http_client.py" in block]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = block.replace("8000", str(port)).replace("/tmp/example.db", str(tmp_path / "example.db"))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # the venv, as if active
        "CONTACT_MCP_URL": f"http://127.0.0.1:{port}/mcp",
    }
    shell = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a server left behind by a failing line is stopped below
    )
    try:
        stdout, stderr = shell.communicate(timeout=90)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)
        shell.wait()
    assert shell.returncode == 0, stdout + stderr
    assert "upsert_contact: ok" in stdout
    assert f"{len(TOOL_NAMES)} tools at http://127.0.0.1:{port}/mcp" in stdout
    assert "find_contacts: ok" in stdout
