"""SQLite only: a database file this process cannot write.

Start-up proves it can write, so a read-only file is a one-line start-up error naming CONTACT_MCP_DB (not a
generic error on every write, and an exit 1 at shutdown losing an in-flight reply). A server started with
CONTACT_MCP_READ_ONLY may run on such a file: it reads, a write that reaches the store anyway is a structured
`provider_unavailable` naming CONTACT_MCP_DB, and shutdown succeeds.

Root writes any file whatever its mode. When the suite runs as root, the server runs as root without the
capabilities that override file modes (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH dropped from its bounding set before
exec, Linux `prctl`), so a file whose mode forbids writing is read-only to it, as to any user.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from contact_mcp.models import UpsertContactInput
from contact_mcp.store import LocalStore

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# prctl(PR_CAPBSET_DROP, cap): CAP_DAC_OVERRIDE (1) and CAP_DAC_READ_SEARCH (2), then exec the command.
_BOUND_BY_FILE_MODES = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for cap in (1, 2):
    if libc.prctl(24, cap, 0, 0, 0) != 0:
        sys.exit("prctl(PR_CAPBSET_DROP) failed: " + os.strerror(ctypes.get_errno()))
os.execv(sys.argv[1], sys.argv[1:])
"""


def bound_by_file_modes(argv: list[str]) -> list[str]:
    """`argv` run so that file modes bind it (as is, unless we are root)."""
    return [sys.executable, "-c", _BOUND_BY_FILE_MODES, *argv] if os.geteuid() == 0 else argv


async def _one_contact(db_path: Path) -> None:
    store = LocalStore.open(db_path)
    created = await store.upsert_contact(UpsertContactInput(email="ann@example.com", user_id="u1"))
    assert created.outcome == "created"
    await store.aclose()


@pytest.fixture
def read_only_db(db_path: Path) -> Path:
    """A contact database holding one contact (user_id u1), its file mode read-only; its folder stays writable
    (as a user's data folder is), so only the file's mode stops writes."""
    anyio.run(_one_contact, db_path)
    for leftover in db_path.parent.iterdir():  # -wal/-shm: a read-only copy arrives as the bare file
        if leftover != db_path:
            leftover.unlink()
    db_path.chmod(0o444)
    return db_path


def child_env(db: Path, **extra: str) -> dict[str, str]:
    keep = {name: value for name, value in os.environ.items() if name in ("PATH", "SYSTEMROOT", "LANG", "HOME")}
    return {**keep, "CONTACT_MCP_DB": str(db), "CONTACT_MCP_LOG_LEVEL": "WARNING", **extra}


def test_a_read_only_file_is_a_one_line_start_up_error_naming_the_variable(read_only_db: Path) -> None:
    done = subprocess.run(
        bound_by_file_modes([sys.executable, "-m", "contact_mcp", "serve"]),
        env=child_env(read_only_db),
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "CONTACT_MCP_DB" in line
    assert "cannot be written" in line
    assert "CONTACT_MCP_READ_ONLY" in line


INIT: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "ro-test", "version": "0"}},
}


async def test_a_read_only_server_reads_a_read_only_file_and_shuts_down_cleanly(
    read_only_db: Path, tmp_path: Path
) -> None:
    argv = bound_by_file_modes([sys.executable, "-m", "contact_mcp", "serve"])
    stderr_path = tmp_path / "stderr.log"
    with anyio.fail_after(60), stderr_path.open("wb") as stderr_file:
        env = child_env(read_only_db, CONTACT_MCP_READ_ONLY="1")
        async with await anyio.open_process(argv, env=env, stderr=stderr_file) as proc:
            assert proc.stdin is not None and proc.stdout is not None
            stdout = BufferedByteReceiveStream(proc.stdout)

            async def ask(request_id: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
                assert proc.stdin is not None
                message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
                await proc.stdin.send(json.dumps(message).encode() + b"\n")
                while True:
                    answer = json.loads(await stdout.receive_until(b"\n", 4_000_000))
                    if answer.get("id") == request_id:
                        result: dict[str, Any] = answer["result"]
                        return result

            await ask(1, INIT["method"], INIT["params"])
            await proc.stdin.send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
            page = await ask(2, "tools/call", {"name": "find_contacts", "arguments": {"user_id": "u1"}})
            (found,) = page["structuredContent"]["contacts"]
            contact = await ask(3, "tools/call", {"name": "get_contact", "arguments": {"contact_id": found["id"]}})
            await proc.stdin.aclose()
            code = await proc.wait()

    assert contact["structuredContent"]["user_id"] == "u1"
    assert code == 0
    assert stderr_path.read_text().strip() == ""


_WRITE_THROUGH_THE_STORE = """
import json, sys, anyio
from contact_mcp.errors import ContactError
from contact_mcp.models import FindContactsInput, UpsertContactInput
from contact_mcp.settings import load_settings
from contact_mcp.store import LocalStore

async def main() -> None:
    settings = load_settings(db=sys.argv[1], read_only=True)
    LocalStore.preflight(settings)
    store = LocalStore.from_settings(settings)
    for _ in range(20):  # reads that leave PRAGMA optimize something it would like to write at close
        await store.find_contacts(FindContactsInput(email="ann@example.com"))
    try:
        await store.upsert_contact(UpsertContactInput(email="bob@example.com", user_id=None))
        outcome = {"error": None}
    except ContactError as exc:
        outcome = {"error": exc.info().model_dump(mode="json", exclude_none=True)}
    await store.aclose()
    print(json.dumps(outcome))

anyio.run(main)
"""


def test_a_write_on_a_read_only_file_is_a_structured_provider_unavailable(read_only_db: Path) -> None:
    done = subprocess.run(
        bound_by_file_modes([sys.executable, "-c", _WRITE_THROUGH_THE_STORE, str(read_only_db)]),
        env=child_env(read_only_db),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "provider_unavailable"
    assert "CONTACT_MCP_DB" in error["message"]
    assert error["retryable"] is False
    assert done.stderr == ""
