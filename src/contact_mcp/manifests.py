"""The tool manifests: our MCP tools rendered for other tool-calling APIs, from the server's own `tools/list`.

One source: the tools a server built on the local store lists over a real (in-memory) MCP session. From those
entries come `mcp_tools.json` (the wire form), `anthropic.json` (tool use; the portable input schema as is),
`openai.json` (function calling in strict mode) and `gemini.json` (function declarations, an OpenAPI 3.0 subset).
The two rewrites follow their target's rules: strict mode wants every property required, optional ones nullable,
`additionalProperties: false` on every object and no `default`; Gemini wants uppercase type names and an OBJECT
with at least one property. Neither can say "an object with any keys", so a free-form map (`custom_fields`) is
published there as a string holding a JSON object, which the SDK parses back before validation.
Files are deterministic (sorted keys, 2-space indent, trailing newline) so a test can catch drift.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import anyio
from mcp import Client

from contact_mcp.schemas import JsonSchema
from contact_mcp.server import build_server
from contact_mcp.settings import load_settings

WireTool = dict[str, Any]

MCP_FILE = "mcp_tools.json"
OPENAI_FILE = "openai.json"
ANTHROPIC_FILE = "anthropic.json"
GEMINI_FILE = "gemini.json"
FILES = (MCP_FILE, OPENAI_FILE, ANTHROPIC_FILE, GEMINI_FILE)

# Keywords each target accepts on a scalar, beyond type/description/enum (OpenAI: the documented strict-mode
# subset; Gemini: the Schema object's fields). Length limits never reach here: the portable schema drops them.
_OPENAI_SCALAR_KEYS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "pattern",
    "format",
)
_GEMINI_SCALAR_KEYS = ("minimum", "maximum", "format")
_GEMINI_TYPES = {
    "string": "STRING",
    "number": "NUMBER",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "array": "ARRAY",
    "object": "OBJECT",
}


class ManifestError(Exception):
    """A schema shape a target cannot express; the renderer must learn it before the manifests can be written."""


# ---------- the source: tools/list ----------


async def list_wire_tools() -> list[WireTool]:
    """The `tools/list` entries of a local-store server, as a client receives them (camelCase, no nulls)."""
    with tempfile.TemporaryDirectory(prefix="contact-mcp-manifest-") as tmp:
        # The full local plan whatever the environment selects, so the files do not depend on who ran it.
        settings = load_settings(
            providers="local", db=str(Path(tmp) / "contacts.db"), tools=(), exclude_tools=(), read_only=False
        )
        async with Client(build_server(settings)) as client:
            result = await client.list_tools()
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in result.tools]


# ---------- shared helpers ----------


def _properties(node: Mapping[str, Any]) -> dict[str, JsonSchema]:
    return cast(dict[str, JsonSchema], node.get("properties") or {})


def _required(node: Mapping[str, Any]) -> list[str]:
    return cast(list[str], node.get("required") or [])


def _is_free_form_map(node: Mapping[str, Any]) -> bool:
    return node.get("type") == "object" and not node.get("properties")


def _described(node: Mapping[str, Any], *extra: str) -> str | None:
    """The property's own description, with any notes the target needs appended as sentences."""
    own = str(node["description"]) if node.get("description") else ""
    if not extra:
        return own or None
    return " ".join([own.rstrip(".") + "." if own else "", *(note + "." for note in extra)]).strip()


def _default_note(node: Mapping[str, Any]) -> tuple[str, ...]:
    return (f"Default {json.dumps(node['default'])}",) if "default" in node else ()


def _json_string_note(node: Mapping[str, Any]) -> str | None:
    return _described(node, 'A JSON object sent as a string, e.g. {"plan": "pro"}')


def _scalar_type(node: Mapping[str, Any], where: str) -> str:
    kind = node.get("type")
    if not isinstance(kind, str):
        raise ManifestError(f"{where}: no single JSON type; teach contact_mcp.manifests how to render it")
    return kind


# ---------- OpenAI function calling, strict mode ----------


def _openai_node(node: Mapping[str, Any], where: str, *, nullable: bool) -> JsonSchema:
    kind = _scalar_type(node, where)
    out: JsonSchema
    if _is_free_form_map(node):
        out = {"type": "string"}
        description = _json_string_note(node)
    elif kind == "object":
        out = _openai_object(node, where)
        description = _described(node)
    elif kind == "array":
        out = {"type": "array", "items": _openai_node(node.get("items") or {}, f"{where}[]", nullable=False)}
        out.update({k: node[k] for k in ("minItems", "maxItems") if k in node})
        description = _described(node, *_default_note(node))
    else:
        out = {"type": kind, **{k: node[k] for k in _OPENAI_SCALAR_KEYS if k in node}}
        if "enum" in node:
            out["enum"] = list(node["enum"])
        description = _described(node, *_default_note(node))
    if description:
        out["description"] = description
    if nullable:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _openai_object(node: Mapping[str, Any], where: str) -> JsonSchema:
    """Every property required; one the caller may leave out becomes nullable (the server reads null as "not
    given", so a default applies; the description names it)."""
    required = set(_required(node))
    properties = {
        name: _openai_node(sub, f"{where}.{name}", nullable=name not in required)
        for name, sub in _properties(node).items()
    }
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def render_openai(tools: Iterable[WireTool]) -> list[JsonSchema]:
    return [
        {
            "type": "function",
            "function": {
                "name": tool["name"],
                "description": tool.get("description", ""),
                "parameters": _openai_object(tool["inputSchema"], tool["name"]),
                "strict": True,
            },
        }
        for tool in tools
    ]


# ---------- Anthropic tool use ----------


def render_anthropic(tools: Iterable[WireTool]) -> list[JsonSchema]:
    return [
        {"name": tool["name"], "description": tool.get("description", ""), "input_schema": tool["inputSchema"]}
        for tool in tools
    ]


# ---------- Gemini function declarations ----------


def _gemini_node(node: Mapping[str, Any], where: str) -> JsonSchema:
    kind = _scalar_type(node, where)
    out: JsonSchema
    if _is_free_form_map(node):
        out = {"type": "STRING"}
        description = _json_string_note(node)
    elif kind == "object":
        out = _gemini_object(node, where)
        description = _described(node)
    elif kind == "array":
        out = {"type": "ARRAY", "items": _gemini_node(node.get("items") or {}, f"{where}[]")}
        out.update({k: node[k] for k in ("minItems", "maxItems") if k in node})
        description = _described(node, *_default_note(node))
    elif kind in _GEMINI_TYPES:
        out = {"type": _GEMINI_TYPES[kind], **{k: node[k] for k in _GEMINI_SCALAR_KEYS if k in node}}
        if "enum" in node:
            if kind != "string":
                raise ManifestError(f"{where}: Gemini allows enum on strings only")
            out["enum"] = list(node["enum"])
        description = _described(node, *_default_note(node))
    else:
        raise ManifestError(f"{where}: Gemini has no type {kind!r}")
    if description:
        out["description"] = description
    return out


def _gemini_object(node: Mapping[str, Any], where: str) -> JsonSchema:
    properties = {name: _gemini_node(sub, f"{where}.{name}") for name, sub in _properties(node).items()}
    out: JsonSchema = {"type": "OBJECT", "properties": properties}
    required = [name for name in _required(node) if name in properties]
    if required:
        out["required"] = required
    return out


def render_gemini(tools: Iterable[WireTool]) -> JsonSchema:
    declarations: list[JsonSchema] = []
    for tool in tools:
        declaration: JsonSchema = {"name": tool["name"], "description": tool.get("description", "")}
        # Gemini refuses an OBJECT without properties: a tool without arguments declares no parameters.
        if _properties(tool["inputSchema"]):
            declaration["parameters"] = _gemini_object(tool["inputSchema"], tool["name"])
        declarations.append(declaration)
    return {"function_declarations": declarations}


# ---------- files ----------


def dumps(document: object) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_all(tools: list[WireTool]) -> dict[str, str]:
    """File name -> file text, for every manifest."""
    return {
        MCP_FILE: dumps({"tools": tools}),
        OPENAI_FILE: dumps(render_openai(tools)),
        ANTHROPIC_FILE: dumps(render_anthropic(tools)),
        GEMINI_FILE: dumps(render_gemini(tools)),
    }


def rendered() -> dict[str, str]:
    return render_all(anyio.run(list_wire_tools))


def write(directory: Path, files: Mapping[str, str]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def drifted(directory: Path, files: Mapping[str, str]) -> list[str]:
    """Names of the manifests in `directory` that are missing or differ from `files`."""
    stale: list[str] = []
    for name, text in files.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale
