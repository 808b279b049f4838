"""Arbitrary JSON arguments, driven through a real MCP client session into every tool.

Whatever an agent sends: no crash, no protocol error, every failure an `isError` result with a known code, every
success a result that matches its schema — and afterwards the store is still consistent.
"""

from __future__ import annotations

import inspect
import sqlite3
from pathlib import Path
from typing import Any

import anyio.from_thread
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from contact_mcp import build_server, load_settings
from contact_mcp.errors import ErrorCode
from contact_mcp.tools.table import TOOLS

TOOL_NAMES = [spec.operation.value for spec in TOOLS]
# Every argument any tool declares (the signature is the contract), so fuzzed keys hit real parameters.
ARGUMENT_NAMES = sorted({name for spec in TOOLS for name in inspect.signature(spec.fn).parameters if name != "ctx"})
KNOWN_CODES = {code.value for code in ErrorCode}

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
# Plausible values hit deeper paths than random text does.
plausible = st.sampled_from(
    [
        "+14155550123",
        "+442071838750",
        "4155550123",
        "+1415555012",
        "ann@example.com",
        "ANN@Example.com",
        "bad@",
        "ct_123",
        "6f1c2a0e-8a3b-4c5d-9e7f-0a1b2c3d4e5f",
        "email",
        "phone",
        "whatsapp",
        "slack",
        "amb",
        "blooio",
        "2026-05-20T15:04:01Z",
        "https://example.com/a.png",
        "",
        " ",
        "x" * 600,
    ]
)
arguments = st.dictionaries(st.sampled_from(ARGUMENT_NAMES) | st.text(max_size=8), plausible | json_values, max_size=8)


def _consistent(db: Path) -> None:
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        con.close()


def test_any_arguments_to_any_tool_get_a_structured_answer(tmp_path: Path) -> None:
    db = tmp_path / "fuzz.db"
    server = build_server(load_settings(db=str(db)))
    with (
        anyio.from_thread.start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(Client(server)) as client,
    ):
        seen_codes: set[str] = set()
        successes = 0

        @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(name=st.sampled_from(TOOL_NAMES), args=arguments)
        def call(name: str, args: dict[str, Any]) -> None:
            nonlocal successes
            result = portal.call(client.call_tool, name, args)  # an MCPError (protocol error) would raise here
            text = result.content[0].text if result.content and result.content[0].type == "text" else ""
            assert "Error executing tool" not in text, f"crash on {name}({args!r}): {text}"
            if result.is_error:
                assert result.structured_content is not None
                seen_codes.add(result.structured_content["error"]["code"])
                assert result.structured_content["error"]["code"] in KNOWN_CODES
            else:
                successes += 1
                assert result.structured_content is not None
                assert result.structured_content["provider"] == "local"

        call()

        # The fuzzer must have reached both sides of the tools, or it proved nothing.
        assert successes > 0
        assert "invalid_argument" in seen_codes

        page = portal.call(client.call_tool, "find_contacts", {"limit": 50})
        assert page.structured_content is not None
        for summary in page.structured_content["contacts"]:
            contact = portal.call(client.call_tool, "get_contact", {"contact_id": summary["id"]})
            assert not contact.is_error
            assert contact.structured_content is not None
            keys = [(m["channel"], m["value"]) for m in contact.structured_content.get("methods", [])]
            assert len(keys) == len(set(keys)), "a contact method is duplicated"
    _consistent(db)
