"""The examples: the host configuration snippets launch our console script, and both client scripts run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import httpx2
import pytest

from contact_mcp.tools.table import TOOL_NAMES

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TOKEN = "example-test-token-5678"


def load(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text())


@pytest.mark.parametrize(
    ("name", "servers_key"),
    [
        pytest.param("claude_desktop_config.json", "mcpServers", id="claude-desktop"),
        pytest.param("cursor_mcp.json", "mcpServers", id="cursor"),
        pytest.param("vscode_mcp.json", "servers", id="vscode"),
    ],
)
def test_host_config_launches_the_console_script_with_a_database(name: str, servers_key: str) -> None:
    config = load(name)
    assert list(config) == [servers_key]
    (server,) = config[servers_key].values()
    assert server["command"].endswith("/.venv/bin/contact-mcp")  # absolute: tests/test_readme.py checks every snippet
    assert server["args"] == ["serve"]
    assert server["env"]["CONTACT_MCP_DB"].endswith(".db")
    if servers_key == "servers":  # VS Code's format names the transport
        assert server["type"] == "stdio"


def test_the_configured_command_is_our_console_script() -> None:
    (script,) = entry_points(group="console_scripts", name="contact-mcp")
    assert script.value == "contact_mcp.__main__:main"


def run_example(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.mark.slow
def test_stdio_client_upserts_and_finds_a_contact(tmp_path: Path) -> None:
    done = run_example("stdio_client.py", {"CONTACT_MCP_DB": str(tmp_path / "contacts.db")})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "upsert_contact: ok" in done.stdout
    assert "find_contacts: ok: Found 1 contact(s)" in done.stdout
    assert "grace@example.com" in done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(base: str, server: subprocess.Popen[str], *, attempts: int = 300) -> None:
    for _ in range(attempts):
        if server.poll() is not None:
            raise AssertionError(f"the server exited with {server.returncode}")
        try:
            if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base}/healthz never answered")


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module's client runs: each run only reads, and a launch costs a second or two."""
    port = free_port()
    db = tmp_path_factory.mktemp("http-example") / "contacts.db"
    env = {**os.environ, "CONTACT_MCP_DB": str(db), "CONTACT_MCP_HTTP_TOKEN": TOKEN}
    command = [sys.executable, "-m", "contact_mcp", "serve", "--transport", "http", "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_healthy(base, server)
        yield f"{base}/mcp"
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.slow
def test_http_client_lists_tools_and_calls_one(http_server: str) -> None:
    done = run_example("http_client.py", {"CONTACT_MCP_URL": http_server, "CONTACT_MCP_HTTP_TOKEN": TOKEN})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(TOOL_NAMES)} tools at {http_server}" in done.stdout
    assert "find_contacts: ok" in done.stdout


@pytest.mark.slow
def test_http_client_without_the_token_says_401_and_which_variable_to_set(http_server: str) -> None:
    env = {"CONTACT_MCP_URL": http_server, "CONTACT_MCP_HTTP_TOKEN": ""}
    done = run_example("http_client.py", env)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"http_client: could not talk to {http_server}: the server requires a token (401): "
        "set CONTACT_MCP_HTTP_TOKEN to the token the server runs with"
    )


@pytest.mark.slow
def test_http_client_with_a_wrong_token_says_it_was_refused(http_server: str) -> None:
    done = run_example("http_client.py", {"CONTACT_MCP_URL": http_server, "CONTACT_MCP_HTTP_TOKEN": "not-the-token"})
    assert done.returncode == 1
    assert "the server refused the token (401): set CONTACT_MCP_HTTP_TOKEN" in done.stderr
    assert "not-the-token" not in done.stderr
    assert "ExceptionGroup" not in done.stderr


@pytest.mark.slow
def test_http_client_with_nothing_listening_says_how_to_start_a_server() -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    done = run_example("http_client.py", {"CONTACT_MCP_URL": url, "CONTACT_MCP_HTTP_TOKEN": TOKEN})
    assert done.returncode == 1
    assert f"could not talk to {url}: nothing answers there: start a server" in done.stderr
    assert "CONTACT_MCP_URL" in done.stderr
