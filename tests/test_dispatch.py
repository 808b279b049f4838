"""The step every call goes through: `null` is "not given" for every optional argument of every tool, one rule
refuses control characters in any text, the size limits of custom fields and roles, results within 100 KB, and
arguments that are not an object get a tool result rather than a JSON-RPC error."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client

from contact_mcp.errors import InvalidArgument
from contact_mcp.limits import (
    MAX_CUSTOM_FIELD_KEYS,
    MAX_CUSTOM_KEY_LENGTH,
    MAX_CUSTOM_VALUE_LENGTH,
    MAX_RESULT_BYTES,
    MAX_ROLE_LENGTH,
    MAX_ROLES,
)
from contact_mcp.models import ContactPage, ContactSummary, DuplicateGroup, DuplicatePage
from contact_mcp.tools.render import success
from tests.results import error_of, json_text
from tests.stdio_server import server_params

pytestmark = pytest.mark.anyio

PHONE = "+12025550143"
FULL_UPSERT: dict[str, Any] = {
    "email": "ann@example.com",
    "user_id": "u-ann",
    "name": "Ann",
    "phone": PHONE,
    "locale": "en",
    "profile_picture": "https://example.com/ann.png",
    "companies": [{"id": "c1", "name": "Acme"}],
    "custom_fields": {"plan": "pro"},
    "roles": ["admin"],
    "subscribed_to_changelog": True,
}


async def ok(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert result.is_error is not True, (tool, arguments, result.content)
    return json_text(result)


async def _base_arguments(client: Client) -> dict[str, dict[str, Any]]:
    """For each tool, arguments that make a valid call on a store holding one contact (and one to merge into it)."""
    created = await ok(client, "create_contact", {"username": "grace", "phone_number": PHONE})
    cid = created["id"]
    other = (await ok(client, "create_contact", {"username": "grace-h", "phone_number": PHONE}))["id"]
    return {
        "attach_contact": {"end_user_id": cid, "channel": "email", "value": "grace@example.com"},
        "attach_identity": {"contact_id": cid, "identifier": PHONE},
        "set_verification": {"contact_id": cid, "type": "phone", "value": PHONE, "verified": True},
        "upsert_contact": {"email": "grace@example.com"},
        "create_contact": {"username": "lin", "phone_number": "+12025550199"},
        "get_contact": {"contact_id": cid},
        "find_contacts": {},
        # The erasure tools answer alike twice only when they change nothing: a contact or value that is not there.
        "delete_contact": {"contact_id": "6f1c2a0e-8a3b-4c5d-9e7f-0a1b2c3d4e5f"},
        "detach_identity": {"contact_id": cid, "identifier": "nobody@example.com"},
        "detach_contact": {"contact_id": cid, "channel": "email", "value": "nobody@example.com"},
        "find_duplicates": {},
        "merge_contacts": {"survivor_id": cid, "duplicate_ids": [other], "confirm": True},
    }


# `changes`: the first of two equivalent calls changes the contact, the second finds nothing left to change; so
# a merge done by the first call leaves the second nothing to merge: what it did differs, not its shape.
_MERGE_DONE = ("merged_ids", "filled", "moved_methods", "moved_identities", "conflicts")
_VOLATILE = (
    "created_at", "updated_at", "verified_at", "id", "username", "created", "outcome", "phone_shared_with", "changes",
    *_MERGE_DONE,
)  # fmt: skip


def _stable(data: dict[str, Any]) -> dict[str, Any]:
    """What two equivalent calls answer alike (a created contact's display name defaults to its own username)."""
    if data.get("display_name") is not None and data.get("display_name") == data.get("username"):
        data = {**data, "display_name": "<username>"}
    return {key: value for key, value in data.items() if key not in _VOLATILE}


async def test_null_means_not_given_for_every_optional_argument_of_every_tool(client: Client) -> None:
    """Each optional argument, sent as null, gets the answer the same call gets without it (success or error)."""
    bases = await _base_arguments(client)
    tools = (await client.list_tools()).tools
    checked: list[str] = []
    for tool in tools:
        required = set(tool.input_schema.get("required", []))
        for name in tool.input_schema["properties"]:
            if name in required:
                continue
            absent = {key: value for key, value in bases[tool.name].items() if key != name}
            if tool.name == "create_contact":
                absent["username"] = f"user-{name}-null"
            with_null = await client.call_tool(tool.name, {**absent, name: None})
            if tool.name == "create_contact":
                absent["username"] = f"user-{name}-absent"
            without = await client.call_tool(tool.name, absent)
            assert with_null.is_error == without.is_error, f"{tool.name}.{name}: {with_null.content}"
            if without.is_error:
                assert with_null.structured_content == without.structured_content, f"{tool.name}.{name}"
            else:
                assert _stable(json_text(with_null)) == _stable(json_text(without)), f"{tool.name}.{name}"
            checked.append(f"{tool.name}.{name}")
    assert len(checked) >= 20, checked  # every optional argument of the seven tools


async def test_null_never_clears_a_stored_value(client: Client) -> None:
    first = await ok(client, "upsert_contact", FULL_UPSERT)
    before = await ok(client, "get_contact", {"contact_id": first["id"]})
    for name in FULL_UPSERT:
        if name == "email":
            continue
        again = await ok(client, "upsert_contact", {"email": FULL_UPSERT["email"], name: None})
        assert again["outcome"] == "unchanged", name
    after = await ok(client, "get_contact", {"contact_id": first["id"]})
    assert after == before


async def test_null_for_a_required_argument_is_a_missing_argument(client: Client) -> None:
    error = error_of(await client.call_tool("get_contact", {"contact_id": None}))
    assert (error["code"], error["field"]) == ("invalid_argument", "contact_id")


async def test_null_for_an_undeclared_argument_is_still_refused(client: Client) -> None:
    error = error_of(await client.call_tool("get_contact", {"contact_id": "x", "contactid": None}))
    assert (error["code"], error["field"]) == ("invalid_argument", "contactid")


# ---------- control characters ----------

CONTROL_CASES = [
    ("upsert_contact", {"email": "a@example.com", "name": "Ann\x00"}, "name"),
    ("upsert_contact", {"user_id": "u\x00"}, "user_id"),
    ("upsert_contact", {"email": "a@example.com", "custom_fields": {"plan": "pro\x1b[31m"}}, "custom_fields.plan"),
    ("upsert_contact", {"email": "a@example.com", "custom_fields": {"pl\x07an": "pro"}}, "custom_fields"),
    ("upsert_contact", {"email": "a@example.com", "roles": ["admin", "ed\x08itor"]}, "roles[1]"),
    ("upsert_contact", {"email": "a@example.com", "companies": [{"id": "c1", "name": "A\rcme"}]}, "companies[0].name"),
    ("create_contact", {"username": "lin\x7f", "phone_number": PHONE}, "username"),
    ("create_contact", {"username": "lin", "phone_number": PHONE, "display_name": "Lin\x85"}, "display_name"),
    ("find_contacts", {"query": "a\x00"}, "query"),
    ("attach_identity", {"contact_id": "c\x00", "identifier": PHONE}, "contact_id"),
]


@pytest.mark.parametrize(("tool", "arguments", "field"), CONTROL_CASES, ids=[c[2] for c in CONTROL_CASES])
async def test_a_control_character_in_any_text_is_an_invalid_argument(
    client: Client, tool: str, arguments: dict[str, Any], field: str
) -> None:
    error = error_of(await client.call_tool(tool, arguments))
    assert (error["code"], error["field"]) == ("invalid_argument", field)
    assert "control character" in error["message"]
    assert (await ok(client, "find_contacts", {}))["contacts"] == []


async def test_tab_and_newline_are_ordinary_text(client: Client) -> None:
    done = await ok(
        client, "upsert_contact", {"email": "a@example.com", "name": "Ann\tLee", "custom_fields": {"n": "a\nb"}}
    )
    contact = await ok(client, "get_contact", {"contact_id": done["id"]})
    assert (contact["name"], contact["custom_fields"]) == ("Ann\tLee", {"n": "a\nb"})


# ---------- limits on custom_fields and roles ----------

LIMIT_CASES = [
    ("key-length", {"custom_fields": {"k" * (MAX_CUSTOM_KEY_LENGTH + 1): 1}}, "custom_fields", MAX_CUSTOM_KEY_LENGTH),
    (
        "value-length",
        {"custom_fields": {"k": "v" * (MAX_CUSTOM_VALUE_LENGTH + 1)}},
        "custom_fields.k",
        MAX_CUSTOM_VALUE_LENGTH,
    ),
    (
        "key-count",
        {"custom_fields": {f"k{n}": n for n in range(MAX_CUSTOM_FIELD_KEYS + 1)}},
        "custom_fields",
        MAX_CUSTOM_FIELD_KEYS,
    ),
    ("role-count", {"roles": [f"r{n}" for n in range(MAX_ROLES + 1)]}, "roles", MAX_ROLES),
    ("role-length", {"roles": ["ok", "r" * (MAX_ROLE_LENGTH + 1)]}, "roles[1]", MAX_ROLE_LENGTH),
]


@pytest.mark.parametrize(("arguments", "field", "limit"), [c[1:] for c in LIMIT_CASES], ids=[c[0] for c in LIMIT_CASES])
async def test_a_limit_broken_is_an_invalid_argument_naming_the_limit(
    client: Client, arguments: dict[str, Any], field: str, limit: int
) -> None:
    error = error_of(await client.call_tool("upsert_contact", {"email": "a@example.com", **arguments}))
    assert (error["code"], error["field"]) == ("invalid_argument", field)
    assert str(limit) in error["message"] + error["hint"]
    assert (await ok(client, "find_contacts", {}))["contacts"] == []


@pytest.mark.parametrize(
    ("count", "hint"), [(0, "Send at least 1 item(s) in duplicate_ids"), (21, "Send at most 20 items in duplicate_ids")]
)
async def test_a_list_of_the_wrong_length_says_how_many_it_takes(client: Client, count: int, hint: str) -> None:
    survivor = (await ok(client, "upsert_contact", {"email": "a@example.com"}))["id"]
    duplicates = [str(uuid.uuid4()) for _ in range(count)]

    error = error_of(
        await client.call_tool(
            "merge_contacts", {"survivor_id": survivor, "duplicate_ids": duplicates, "confirm": True}
        )
    )

    assert (error["code"], error["field"], error["hint"]) == ("invalid_argument", "duplicate_ids", hint)


@pytest.mark.parametrize("tool", ["find_contacts", "find_duplicates"])
async def test_a_cursor_the_server_never_issued_is_refused_with_a_hint_for_any_paged_tool(
    client: Client, tool: str
) -> None:
    error = error_of(await client.call_tool(tool, {"cursor": "garbage!!"}))

    assert (error["code"], error["field"]) == ("invalid_argument", "cursor")
    assert error["hint"] == "Pass next_cursor from the previous page of the same call unchanged, or omit cursor"


async def test_arguments_at_the_limits_are_accepted(client: Client) -> None:
    fields = {f"{n:0{MAX_CUSTOM_KEY_LENGTH}d}": "v" * MAX_CUSTOM_VALUE_LENGTH for n in range(MAX_CUSTOM_FIELD_KEYS)}
    roles = [f"{n:0{MAX_ROLE_LENGTH}d}" for n in range(MAX_ROLES)]
    await ok(client, "upsert_contact", {"email": "a@example.com", "custom_fields": fields, "roles": roles})


# ---------- result size ----------


async def test_a_contact_larger_than_the_result_limit_comes_back_shortened_saying_what_was_cut(client: Client) -> None:
    fields = {f"{n:0{MAX_CUSTOM_KEY_LENGTH}d}": "v" * MAX_CUSTOM_VALUE_LENGTH for n in range(MAX_CUSTOM_FIELD_KEYS)}
    done = await ok(client, "upsert_contact", {"email": "a@example.com", "name": "Ann", "custom_fields": fields})
    result = await client.call_tool("get_contact", {"contact_id": done["id"]})
    contact = json_text(result)
    assert len(json.dumps(result.structured_content, separators=(",", ":")).encode()) <= MAX_RESULT_BYTES
    assert len(result.content[1].text.encode()) <= MAX_RESULT_BYTES  # type: ignore[union-attr]
    assert contact["truncated"] == ["custom_fields"]
    assert 0 < len(contact["custom_fields"]) < MAX_CUSTOM_FIELD_KEYS
    assert all(contact["custom_fields"][key] == fields[key] for key in contact["custom_fields"])
    assert (contact["name"], contact["id"]) == ("Ann", done["id"])


async def test_a_contact_within_the_limit_is_whole(client: Client) -> None:
    done = await ok(client, "upsert_contact", FULL_UPSERT)
    contact = await ok(client, "get_contact", {"contact_id": done["id"]})
    assert "truncated" not in contact


def test_a_page_larger_than_the_result_limit_is_an_invalid_limit_saying_what_fits() -> None:
    big = [ContactSummary(id=f"id-{n}", name="n" * 4_000) for n in range(50)]
    with pytest.raises(InvalidArgument) as info:
        success(ContactPage(provider="local", contacts=big))
    assert info.value.field == "limit"
    fits = int((info.value.hint or "").split("limit=")[1].split()[0])
    assert 0 < fits < 50
    assert len(success(ContactPage(provider="local", contacts=big[:fits])).content[1].text) <= MAX_RESULT_BYTES  # type: ignore[union-attr]


def test_a_page_of_duplicate_groups_larger_than_the_limit_is_an_invalid_limit_too() -> None:
    group = DuplicateGroup(
        score=0.9, contacts=[ContactSummary(id=f"id-{n}", name="n" * 1_000) for n in range(4)], evidence=[]
    )
    with pytest.raises(InvalidArgument) as info:
        success(DuplicatePage(provider="local", groups=[group] * 50))
    assert info.value.field == "limit"
    fits = int((info.value.hint or "").split("limit=")[1].split()[0])
    assert len(success(DuplicatePage(provider="local", groups=[group] * fits)).content[1].text) <= MAX_RESULT_BYTES  # type: ignore[union-attr]


# ---------- arguments that are not an object ----------


@pytest.mark.slow
async def test_arguments_that_are_not_an_object_get_a_tool_result_over_stdio(tmp_path: Path) -> None:
    """The README's promise: a tool call never ends in a JSON-RPC protocol error, even with `arguments: [1, 2]`."""
    params = server_params({"CONTACT_MCP_DB": str(tmp_path / "contacts.db")})
    argv = [params.command, *params.args]
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    with anyio.fail_after(60):
        async with await anyio.open_process(argv, env=params.env) as proc:
            assert proc.stdin is not None and proc.stdout is not None
            stdout = BufferedByteReceiveStream(proc.stdout)

            async def ask(message: dict[str, Any]) -> dict[str, Any]:
                assert proc.stdin is not None
                await proc.stdin.send(json.dumps(message).encode() + b"\n")
                while True:
                    answer = json.loads(await stdout.receive_until(b"\n", 1_000_000))
                    if answer.get("id") == message.get("id"):
                        return answer

            await ask(init)
            await proc.stdin.send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
            for request_id, arguments in ((2, [1, 2]), (3, "email=a@example.com"), (4, 7)):
                call = {"name": "upsert_contact", "arguments": arguments}
                answer = await ask({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": call})
                assert "error" not in answer, answer
                result = answer["result"]
                assert result["isError"] is True
                error = result["structuredContent"]["error"]
                assert (error["code"], error["field"]) == ("invalid_argument", "arguments")
                assert "JSON object" in result["content"][0]["text"]
            await proc.stdin.aclose()
            await proc.wait()
