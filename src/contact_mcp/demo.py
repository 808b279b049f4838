"""`contact-mcp demo`: a newcomer's first run, every tool once through a real MCP client over stdio.

It starts `python -m contact_mcp serve` as a subprocess on a throw-away database, the way a desktop host does,
tells a short story with the tools (each call using ids the previous ones returned), makes one deliberate
mistake to show what an error looks like, and prints every call and its result. The exit code says whether
every call behaved as expected, so the demo doubles as an end-to-end smoke test.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import anyio
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult, TextContent

from contact_mcp.errors import ErrorCode

_TIMEOUT_S = 60


class _Unexpected(Exception):
    """A call did not behave as the story expects; later calls would need its result, so the story stops."""


class _Runner:
    def __init__(self, client: Client, out: TextIO) -> None:
        self._client = client
        self._out = out
        self.calls = 0

    async def call(
        self, tool: str, arguments: Mapping[str, Any], *, expect_error: ErrorCode | None = None
    ) -> dict[str, Any]:
        self.calls += 1
        self._print(f"{self.calls}. {tool} {json.dumps(arguments, ensure_ascii=False)}")
        result = await self._client.call_tool(tool, dict(arguments))
        structured: dict[str, Any] = dict(result.structured_content or {})
        code = structured.get("error", {}).get("code") if result.is_error else None
        as_expected = bool(result.is_error) == (expect_error is not None) and code == (
            expect_error.value if expect_error else None
        )
        marker = "error" if result.is_error else "ok"
        if result.is_error and as_expected:
            marker = "error (expected)"
        if not as_expected:
            marker += " UNEXPECTED"
        self._print(f"   {marker:<17} {_text(result)}")
        self._print(f"   {'':<17} {json.dumps(structured, ensure_ascii=False)}\n")
        if not as_expected:
            raise _Unexpected(tool)
        return structured

    def _print(self, line: str) -> None:
        print(line, file=self._out, flush=True)


def _id(structured: Mapping[str, Any], tool: str) -> str:
    value = structured.get("id")
    if not isinstance(value, str):
        raise _Unexpected(f"{tool} (its result carries no id)")
    return value


def _text(result: CallToolResult) -> str:
    texts = [block.text for block in result.content if isinstance(block, TextContent)]
    return " ".join(texts) or "(no text)"


async def _story(run: _Runner) -> None:
    created = await run.call(
        "create_contact",
        {"username": "ada", "phone_number": "+44 20 7946 0958", "display_name": "Ada Lovelace"},
    )
    contact_id = _id(created, "create_contact")
    await run.call("attach_contact", {"end_user_id": contact_id, "channel": "email", "value": "Ada@Example.com"})
    await run.call(
        "attach_identity", {"contact_id": contact_id, "identifier": "+44 20 7946 0958", "channel_type": "whatsapp"}
    )
    await run.call(
        "set_verification",
        {
            "contact_id": contact_id,
            "type": "phone",
            "value": "+442079460958",
            "verified": True,
            "verification_source": "demo",
        },
    )
    await run.call(
        "upsert_contact",
        {
            "email": "ada@example.com",
            "user_id": "ada-1815",
            "name": "Ada King, Countess of Lovelace",
            "custom_fields": {"plan": "analytical", "engines": 1},
        },
    )
    await run.call("get_contact", {"contact_id": contact_id})
    await run.call("find_contacts", {"email": "ada@example.com"})
    # A second record of the same person, as agents and imports leave behind: found, then merged away.
    twin = await run.call("upsert_contact", {"email": "ada+engines@example.com", "name": "Ada Lovelace"})
    await run.call("find_duplicates", {})
    await run.call(
        "merge_contacts",
        {"survivor_id": contact_id, "duplicate_ids": [_id(twin, "upsert_contact")], "confirm": True},
    )
    # Undoing: an attach taken back, then the person erased (the contact, its methods and identities).
    await run.call("detach_identity", {"contact_id": contact_id, "identifier": "+442079460958"})
    await run.call("detach_contact", {"contact_id": contact_id, "channel": "email", "value": "ada@example.com"})
    # Deleting cannot be undone: this client cannot ask its user, so the call says what it would do and needs confirm.
    await run.call("delete_contact", {"contact_id": contact_id}, expect_error=ErrorCode.CONFIRMATION_REQUIRED)
    await run.call("delete_contact", {"contact_id": contact_id, "confirm": True})
    # The deliberate mistake: no country code, and no CONTACT_MCP_DEFAULT_REGION to assume one.
    await run.call(
        "create_contact",
        {"username": "charles", "phone_number": "020 7946 0959"},
        expect_error=ErrorCode.INVALID_ARGUMENT,
    )


def _server_env(db: Path) -> dict[str, str]:
    env = {"CONTACT_MCP_DB": str(db), "CONTACT_MCP_PROVIDERS": "local", "CONTACT_MCP_LOG_LEVEL": "WARNING"}
    # A source checkout run without installing needs its import path in the child too.
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in exc.exceptions)  # pyright: ignore[reportUnknownVariableType, reportUnknownMemberType, reportUnknownArgumentType]
    return f"{type(exc).__name__}: {exc}"


async def run_demo(out: TextIO = sys.stdout) -> int:
    """Run the story against a fresh server; 0 when every call behaved as expected, else 1."""
    with tempfile.TemporaryDirectory(prefix="contact-mcp-demo-") as tmp:
        db = Path(tmp) / "contacts.db"
        params = StdioServerParameters(command=sys.executable, args=["-m", "contact_mcp", "serve"], env=_server_env(db))
        print(f"contact-mcp demo: serving over stdio on a temporary database ({db})\n", file=out, flush=True)
        stopped_at: str | None = None
        calls = 0
        try:
            with anyio.fail_after(_TIMEOUT_S):
                async with Client(params) as client:
                    runner = _Runner(client, out)
                    try:
                        await _story(runner)
                    except _Unexpected as exc:
                        stopped_at = str(exc)
                    calls = runner.calls
        except Exception as exc:
            print(f"Stopped: could not talk to the server ({_describe(exc)}).", file=out)
            return 1
    if stopped_at is not None:
        print(f"Stopped: {stopped_at} did not behave as expected.", file=out)
        return 1
    print(f"All {calls} calls behaved as expected.", file=out)
    return 0
