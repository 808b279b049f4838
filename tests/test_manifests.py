"""The tool manifests: each rendering obeys its target's rules, comes from the server's tools, and is committed
exactly as the code renders it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from contact_mcp import manifests
from contact_mcp.cli import main
from contact_mcp.tools.table import TOOL_NAMES

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[1]
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # the tool-name rule OpenAI, Anthropic and Gemini share

# OpenAI strict mode: the documented supported subset of JSON Schema (no default, no length limits, ...).
OPENAI_KEYS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "enum",
        "items",
        "anyOf",
        "description",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "pattern",
        "format",
        "minItems",
        "maxItems",
    }
)
OPENAI_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
# Gemini function declarations: the OpenAPI 3.0 subset of its Schema object that we allow ourselves.
GEMINI_KEYS = frozenset(
    {"type", "format", "description", "nullable", "enum", "properties", "required", "items", "minimum", "maximum"}
    | {"minItems", "maxItems"}
)
GEMINI_TYPES = frozenset({"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT"})


# ---------- validators: each returns the list of rule violations ----------


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def reference_problems(document: Any) -> list[str]:
    return [f"{key} present" for key, _ in walk(document) if key in ("$ref", "$defs", "definitions")]


def openai_strict_problems(node: dict[str, Any], path: str = "parameters") -> list[str]:
    problems = [f"{path}: unsupported keyword {key}" for key in node if key not in OPENAI_KEYS]
    declared = node.get("type")
    kinds: list[Any] = declared if isinstance(declared, list) else [declared]
    problems += [f"{path}: unknown type {kind!r}" for kind in kinds if kind not in OPENAI_TYPES]
    if "object" in kinds:
        properties = node.get("properties")
        if not isinstance(properties, dict):
            return [*problems, f"{path}: object without properties"]
        if node.get("additionalProperties") is not False:
            problems.append(f"{path}: additionalProperties is not false")
        if sorted(node.get("required", [])) != sorted(properties):
            problems.append(f"{path}: required does not list every property")
        for name, sub in properties.items():
            problems += openai_strict_problems(sub, f"{path}.{name}")
    if "array" in kinds:
        if not isinstance(node.get("items"), dict):
            return [*problems, f"{path}: array without items"]
        problems += openai_strict_problems(node["items"], f"{path}[]")
    if "enum" in node and "null" in kinds and None not in node["enum"]:
        problems.append(f"{path}: nullable enum without null")
    return problems


def gemini_problems(node: dict[str, Any], path: str = "parameters") -> list[str]:
    problems = [f"{path}: unsupported keyword {key}" for key in node if key not in GEMINI_KEYS]
    kind = node.get("type")
    if kind not in GEMINI_TYPES:
        return [*problems, f"{path}: type {kind!r} is not an uppercase Gemini type"]
    if "enum" in node and kind != "STRING":
        problems.append(f"{path}: enum on {kind}")
    if kind == "OBJECT":
        properties = node.get("properties")
        if not isinstance(properties, dict) or not properties:
            return [*problems, f"{path}: OBJECT without properties"]
        problems += [
            f"{path}: required {name} is not a property" for name in node.get("required", []) if name not in properties
        ]
        for name, sub in properties.items():
            problems += gemini_problems(sub, f"{path}.{name}")
    if kind == "ARRAY":
        if not isinstance(node.get("items"), dict):
            return [*problems, f"{path}: ARRAY without items"]
        problems += gemini_problems(node["items"], f"{path}[]")
    return problems


# ---------- the committed files ----------


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return manifests.rendered()


@pytest.fixture(scope="module")
def documents(rendered: dict[str, str]) -> dict[str, Any]:
    return {name: json.loads(text) for name, text in rendered.items()}


def tool_names(name: str, document: Any) -> list[str]:
    if name == manifests.MCP_FILE:
        return [tool["name"] for tool in document["tools"]]
    if name == manifests.OPENAI_FILE:
        return [entry["function"]["name"] for entry in document]
    if name == manifests.GEMINI_FILE:
        return [entry["name"] for entry in document["function_declarations"]]
    return [entry["name"] for entry in document]


def test_every_rendering_lists_the_same_tools_in_the_same_order(documents: dict[str, Any]) -> None:
    expected = tool_names(manifests.MCP_FILE, documents[manifests.MCP_FILE])
    assert expected == list(TOOL_NAMES)
    for name, document in documents.items():
        assert tool_names(name, document) == expected, name
        assert all(NAME.match(tool) for tool in expected)


@pytest.mark.parametrize("name", manifests.FILES, ids=manifests.FILES)
def test_no_rendering_uses_references(documents: dict[str, Any], name: str) -> None:
    assert reference_problems(documents[name]) == []


def test_openai_rendering_is_valid_strict_function_calling(documents: dict[str, Any]) -> None:
    for entry in documents[manifests.OPENAI_FILE]:
        assert set(entry) == {"type", "function"}
        assert entry["type"] == "function"
        function = entry["function"]
        assert set(function) == {"name", "description", "parameters", "strict"}
        assert function["strict"] is True
        assert function["description"]
        assert function["parameters"]["type"] == "object"
        assert openai_strict_problems(function["parameters"]) == [], function["name"]


def test_openai_optional_arguments_are_nullable(documents: dict[str, Any]) -> None:
    """A strict model sends every property: the ones our tools may omit admit null (which the server reads as "not
    given", so a default applies); required ones do not."""
    mcp_tools = {tool["name"]: tool["inputSchema"] for tool in documents[manifests.MCP_FILE]["tools"]}
    for entry in documents[manifests.OPENAI_FILE]:
        function = entry["function"]
        source = mcp_tools[function["name"]]
        for prop, schema in function["parameters"]["properties"].items():
            optional = prop not in source.get("required", [])
            nullable = isinstance(schema["type"], list) and "null" in schema["type"]
            assert nullable == optional, f"{function['name']}.{prop}"


def test_free_form_maps_are_json_strings_for_openai_and_gemini(documents: dict[str, Any]) -> None:
    mcp = next(t for t in documents[manifests.MCP_FILE]["tools"] if t["name"] == "upsert_contact")
    openai = next(e["function"] for e in documents[manifests.OPENAI_FILE] if e["function"]["name"] == "upsert_contact")
    gemini = next(d for d in documents[manifests.GEMINI_FILE]["function_declarations"] if d["name"] == "upsert_contact")
    assert mcp["inputSchema"]["properties"]["custom_fields"]["type"] == "object"
    assert openai["parameters"]["properties"]["custom_fields"]["type"] == ["string", "null"]
    assert gemini["parameters"]["properties"]["custom_fields"]["type"] == "STRING"
    for schema in (openai["parameters"], gemini["parameters"]):
        assert "JSON object" in schema["properties"]["custom_fields"]["description"]


def test_anthropic_rendering_carries_the_portable_input_schema(documents: dict[str, Any]) -> None:
    mcp_tools = {tool["name"]: tool for tool in documents[manifests.MCP_FILE]["tools"]}
    for entry in documents[manifests.ANTHROPIC_FILE]:
        assert set(entry) == {"name", "description", "input_schema"}
        assert entry["input_schema"]["type"] == "object"
        assert entry["input_schema"] == mcp_tools[entry["name"]]["inputSchema"]
        assert entry["description"] == mcp_tools[entry["name"]]["description"]


def test_gemini_rendering_uses_only_its_schema_subset(documents: dict[str, Any]) -> None:
    document = documents[manifests.GEMINI_FILE]
    assert set(document) == {"function_declarations"}
    for declaration in document["function_declarations"]:
        assert set(declaration) <= {"name", "description", "parameters"}
        assert declaration["parameters"]["type"] == "OBJECT"
        assert gemini_problems(declaration["parameters"]) == [], declaration["name"]


def test_mcp_rendering_is_the_wire_form(documents: dict[str, Any]) -> None:
    tools = documents[manifests.MCP_FILE]["tools"]
    assert all("inputSchema" in tool and "annotations" in tool for tool in tools)
    assert not [key for key, value in walk(tools) if value is None]


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        pytest.param(
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": []},
            "additionalProperties is not false",
            id="open-object",
        ),
        pytest.param(
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": [], "additionalProperties": False},
            "required does not list every property",
            id="optional-property",
        ),
        pytest.param(
            {
                "type": "object",
                "properties": {"a": {"type": "integer", "default": 3}},
                "required": ["a"],
                "additionalProperties": False,
            },
            "unsupported keyword default",
            id="default",
        ),
    ],
)
def test_openai_validator_catches_what_strict_mode_refuses(schema: dict[str, Any], problem: str) -> None:
    assert any(problem in found for found in openai_strict_problems(schema))


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        pytest.param({"type": "object", "properties": {"a": {"type": "STRING"}}}, "not an uppercase", id="lowercase"),
        pytest.param({"type": "OBJECT", "properties": {}}, "OBJECT without properties", id="empty-object"),
        pytest.param(
            {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}, "additionalProperties": False},
            "unsupported keyword additionalProperties",
            id="additional-properties",
        ),
    ],
)
def test_gemini_validator_catches_what_gemini_refuses(schema: dict[str, Any], problem: str) -> None:
    assert any(problem in found for found in gemini_problems(schema))


# ---------- drift ----------


def _script() -> list[str]:
    script = Path(sys.executable).with_name("contact-mcp")
    return [str(script)] if script.exists() else [sys.executable, "-m", "contact_mcp"]


@pytest.mark.slow
def test_committed_manifests_match_the_code() -> None:
    done = subprocess.run(
        [*_script(), "manifest", "--check"], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def _exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0)


def test_check_fails_after_a_manifest_is_edited(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code(["manifest", "--dir", str(tmp_path)]) == 0
    assert _exit_code(["manifest", "--check", "--dir", str(tmp_path)]) == 0
    openai = tmp_path / manifests.OPENAI_FILE
    openai.write_text(openai.read_text().replace('"strict": true', '"strict": false'))
    capsys.readouterr()
    assert _exit_code(["manifest", "--check", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert manifests.OPENAI_FILE in err
    assert manifests.GEMINI_FILE not in err


def test_check_fails_when_the_manifests_are_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code(["manifest", "--check", "--dir", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert all(name in err for name in manifests.FILES)
    assert not (tmp_path / "none").exists()


# ---------- the server accepts what the renderings invite ----------


async def test_server_accepts_openai_style_arguments_with_nulls_and_a_json_string_map(
    client: Client, documents: dict[str, Any]
) -> None:
    """A strict-mode model sends every property (null when unused) and custom_fields as a JSON string."""
    upsert = next(e["function"] for e in documents[manifests.OPENAI_FILE] if e["function"]["name"] == "upsert_contact")
    arguments: dict[str, Any] = dict.fromkeys(upsert["parameters"]["properties"])
    arguments |= {"email": "lin@example.com", "name": "Lin", "custom_fields": '{"plan": "pro", "seats": 3}'}
    result = await client.call_tool("upsert_contact", arguments)
    assert result.is_error is False, result.content
    contact_id = (result.structured_content or {})["id"]
    contact = await client.call_tool("get_contact", {"contact_id": contact_id})
    assert (contact.structured_content or {})["custom_fields"] == {"plan": "pro", "seats": 3}
