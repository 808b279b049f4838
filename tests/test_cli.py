"""The command line: the demo end to end, doctor's report, one-line configuration errors, manifest writing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client

from contact_mcp import manifests
from contact_mcp.cli import main
from contact_mcp.models import Operation
from tests.stdio_server import server_params

pytestmark = pytest.mark.anyio

SECRET = "some-long-secret-value-1234"


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """`python -m contact_mcp ...` in a child, with our (cleaned) environment plus `env`."""
    return subprocess.run(
        [sys.executable, "-m", "contact_mcp", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0)


# ---------- demo ----------


@pytest.mark.slow
def test_demo_calls_every_tool_and_shows_the_deliberate_error() -> None:
    done = run_cli("demo")
    assert done.returncode == 0, done.stdout + done.stderr
    for operation in Operation:
        assert f"{operation.value} {{" in done.stdout, operation
    assert "error (expected)" in done.stdout
    assert '"code": "invalid_argument"' in done.stdout
    assert '"code": "confirmation_required"' in done.stdout
    assert "UNEXPECTED" not in done.stdout
    assert "Traceback" not in done.stderr


# ---------- serve ----------


@pytest.mark.slow
async def test_serve_is_the_default_command(db_path: Path) -> None:
    params = server_params({"CONTACT_MCP_DB": str(db_path)})
    params.args = ["-m", "contact_mcp"]
    with anyio.fail_after(60):
        async with Client(params) as client:
            tools = await client.list_tools()
    assert [tool.name for tool in tools.tools] == [op.value for op in Operation]


# ---------- doctor ----------


def test_doctor_masks_secrets_and_shows_which_provider_serves_each_tool(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONTACT_MCP_HTTP_TOKEN", SECRET)
    monkeypatch.setenv("CONTACT_MCP_DB", str(db_path))
    assert exit_code(["doctor"]) == 0
    out, err = capsys.readouterr()
    assert "****1234" in out
    assert SECRET not in out + err
    assert str(db_path) in out
    for operation in Operation:
        line = next(line for line in out.splitlines() if line.strip().startswith(operation.value))
        assert "local" in line, line
    assert "Probes:" in out


def test_doctor_never_shows_a_short_secret(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONTACT_MCP_HTTP_TOKEN", "abcd1234")
    monkeypatch.setenv("CONTACT_MCP_DB", str(db_path))
    assert exit_code(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "1234" not in out
    assert "CONTACT_MCP_HTTP_TOKEN" in out


def test_doctor_fails_when_a_provider_probe_fails(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listens on port 9 of 127.0.0.1: the probe's error is reported as a line, not a traceback."""
    monkeypatch.setenv("CONTACT_MCP_DB", str(db_path))
    monkeypatch.setenv("CONTACT_MCP_PROVIDERS", "feather")
    monkeypatch.setenv("FEATHER_API_KEY", SECRET)
    monkeypatch.setenv("FEATHER_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CONTACT_MCP_RETRY_ATTEMPTS", "1")
    assert exit_code(["doctor"]) == 1
    out, err = capsys.readouterr()
    assert "feather" in out
    assert "FAIL" in out
    assert "Traceback" not in out + err
    assert SECRET not in out + err


def test_doctor_masks_the_userinfo_and_query_of_a_base_url(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONTACT_MCP_DB", str(db_path))
    monkeypatch.setenv("CONTACT_MCP_PROVIDERS", "feather")
    monkeypatch.setenv("FEATHER_API_KEY", SECRET)
    monkeypatch.setenv("FEATHER_BASE_URL", "http://ops:userinfo-secret-77@127.0.0.1:9/api?key=query-secret-55")
    monkeypatch.setenv("CONTACT_MCP_RETRY_ATTEMPTS", "1")
    assert exit_code(["doctor"]) == 1
    out, err = capsys.readouterr()
    line = next(line for line in out.splitlines() if line.strip().startswith("FEATHER_BASE_URL"))
    assert line.split()[-1] == "http://***@127.0.0.1:9/api?***"
    for secret in ("userinfo-secret-77", "query-secret-55", "ops:"):
        assert secret not in out + err


# ---------- configuration errors ----------


_UNKNOWN_PROVIDER = {"CONTACT_MCP_PROVIDERS": "nope"}
_BAD_REGION = {"CONTACT_MCP_DEFAULT_REGION": "XX"}
_MISSING_KEY = {"CONTACT_MCP_PROVIDERS": "feather", "FEATHER_BASE_URL": "http://127.0.0.1:9"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "env", "variable"),
    [
        pytest.param(["serve"], _UNKNOWN_PROVIDER, "CONTACT_MCP_PROVIDERS", id="serve-unknown-provider"),
        pytest.param(["serve"], _BAD_REGION, "CONTACT_MCP_DEFAULT_REGION", id="serve-bad-region"),
        pytest.param(["serve"], _MISSING_KEY, "FEATHER_API_KEY", id="serve-missing-key"),
        pytest.param([], _UNKNOWN_PROVIDER, "CONTACT_MCP_PROVIDERS", id="default-command-unknown-provider"),
        pytest.param(["doctor"], _UNKNOWN_PROVIDER, "CONTACT_MCP_PROVIDERS", id="doctor-unknown-provider"),
        pytest.param(["doctor"], _BAD_REGION, "CONTACT_MCP_DEFAULT_REGION", id="doctor-bad-region"),
        pytest.param(["doctor"], _MISSING_KEY, "FEATHER_API_KEY", id="doctor-missing-key"),
        pytest.param(["manifest", "--check"], _BAD_REGION, "CONTACT_MCP_DEFAULT_REGION", id="manifest-bad-region"),
    ],
)
def test_a_configuration_error_is_one_line_naming_the_variable_and_exit_2(
    args: list[str], env: dict[str, str], variable: str
) -> None:
    done = run_cli(*args, env=env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("contact-mcp: ")
    assert variable in lines[0]
    assert "Traceback" not in done.stderr


# ---------- manifest ----------


def test_manifest_writes_every_file_into_the_given_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out"
    assert exit_code(["manifest", "--dir", str(target)]) == 0
    assert sorted(path.name for path in target.iterdir()) == sorted(manifests.FILES)
    for name in manifests.FILES:
        text = (target / name).read_text()
        assert text.endswith(("}\n", "]\n"))
        json.loads(text)
    out = capsys.readouterr().out
    assert all(name in out for name in manifests.FILES)


# ---------- start-up: the collector is off while the process builds, frozen and back on when it serves ----------

_ENTRY_PROBE = """
import gc, sys
import anyio
import contact_mcp.__main__ as entry

assert "mcp" not in sys.modules, "importing the package or the entry loaded the SDK"
seen = {}

def serve(*_args, **_kwargs):
    seen["serving"] = (gc.isenabled(), gc.get_freeze_count())

anyio.run = serve
import contact_mcp.serve.stdio as stdio  # the heavy imports, as main() would do them
built = stdio.build_server

def build(settings):
    seen["building"] = gc.isenabled()
    return built(settings)

stdio.build_server = build
sys.argv = ["contact-mcp", "serve"]
try:
    entry.main()
except SystemExit:
    pass
print(seen["building"], *seen["serving"])
"""


@pytest.mark.slow
def test_start_up_runs_without_the_collector_and_serving_runs_with_it(db_path: Path) -> None:
    env = {**os.environ, "CONTACT_MCP_DB": str(db_path)}
    done = subprocess.run(
        [sys.executable, "-c", _ENTRY_PROBE], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr[-2000:]
    building, serving, frozen = done.stdout.split()
    assert (building, serving) == ("False", "True")
    assert int(frozen) > 10_000


def probe_lines(source: str) -> list[str]:
    """What a fresh interpreter running `source` prints, by line (what a command imports is seen from outside)."""
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.splitlines()


@pytest.mark.slow
def test_importing_the_package_loads_nothing_heavy_and_keeps_its_public_names() -> None:
    probe = (
        "import sys, contact_mcp\n"
        "print(sorted(m for m in ('mcp', 'pydantic', 'pydantic_settings') if m in sys.modules))\n"
        "print(contact_mcp.build_server.__module__, contact_mcp.ConfigError.__name__)"
    )
    assert probe_lines(probe) == ["[]", "contact_mcp.server.build ConfigError"]


def test_an_unknown_package_attribute_is_an_attribute_error() -> None:
    import contact_mcp

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = contact_mcp.nope  # pyright: ignore[reportAttributeAccessIssue]


@pytest.mark.parametrize("transport", ["stdio", "sse"])
def test_stateless_applies_to_streamable_http_only(transport: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--transport", transport, "--stateless"])
    assert exited.value.code == 2
    assert "--stateless applies to --transport http only" in capsys.readouterr().err
