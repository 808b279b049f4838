"""The published output schemas: complete (every field, nested models inline, `required` for what is always
there), portable, read off the result models' declared field types, and what Pydantic says about each field."""

from __future__ import annotations

import json
from typing import Any, Literal, Optional, cast, get_args

import pytest
from mcp import Client
from pydantic import BaseModel, TypeAdapter

from contact_mcp import models
from contact_mcp.models import Result, UpsertResult
from contact_mcp.schemas import json_type, output_schema
from contact_mcp.tools.table import TOOLS, result_model

RESULTS: list[type[Result]] = [result_model(spec.fn) for spec in TOOLS]


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (str, "string"),
        (bool, "boolean"),
        (int, "integer"),
        (float, "number"),
        (str | None, "string"),
        (Optional[bool], "boolean"),  # noqa: UP045 - the typing.Union spelling must work too
        (Literal["created", "updated"], "string"),
        (Literal["a", 1], None),
        (list[str], "array"),
        (tuple[str, ...], "array"),
        (dict[str, int], "object"),
        (models.Company, "object"),
        (str | int, None),
        (models.CustomValue, None),
        (bytes, None),
    ],
)
def test_json_type(annotation: Any, expected: str | None) -> None:
    assert json_type(annotation) == expected


def _pydantic_type(model: type[BaseModel], field: str) -> str | None:
    """The JSON type Pydantic's own schema gives a field (asked of the field's type, not of our result model,
    whose schema is ours)."""
    node = cast(dict[str, Any], TypeAdapter[Any](cast(Any, model.model_fields[field].annotation)).json_schema())
    options = [o for o in node.get("anyOf", [node]) if o.get("type") != "null"]
    kinds = {o.get("type", "object" if "$ref" in o else None) for o in options}
    return kinds.pop() if len(kinds) == 1 else None


def _admits_none(model: type[BaseModel], field: str) -> bool:
    return type(None) in get_args(model.model_fields[field].annotation)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _models_below(model: type[BaseModel]) -> list[type[BaseModel]]:
    """`model` and every model its fields hold, at any depth."""
    found = [model]
    for info in model.model_fields.values():
        for sub in _models_in(info.annotation):
            found.extend(m for m in _models_below(sub) if m not in found)
    return found


@pytest.mark.parametrize("model", RESULTS, ids=[m.__name__ for m in RESULTS])
def test_every_field_is_published_with_the_type_pydantic_gives_it(model: type[Result]) -> None:
    schema = output_schema(model)

    assert list(schema["properties"]) == list(model.model_fields)
    for name, node in schema["properties"].items():
        assert node.get("type") == _pydantic_type(model, name), f"{model.__name__}.{name}"
    assert schema["required"] == [name for name in model.model_fields if not _admits_none(model, name)]


def _objects(node: Any, path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        mapping = cast(dict[str, Any], node)
        found.append((path, mapping))
        for name, sub in cast(dict[str, Any], mapping.get("properties", {})).items():
            found.extend(_objects(sub, f"{path}.{name}"))
        if "items" in mapping:
            found.extend(_objects(mapping["items"], f"{path}[]"))
    return found


@pytest.mark.parametrize("model", RESULTS, ids=[m.__name__ for m in RESULTS])
def test_output_schemas_are_portable_and_describe_nested_models(model: type[Result]) -> None:
    schema = output_schema(model)
    text = json.dumps(schema)
    for banned in ("$ref", "$defs", "anyOf", "oneOf", "allOf", '"title"'):
        assert banned not in text
    for path, node in _objects(schema):
        assert not isinstance(node.get("type"), list), f"type array at {path}"
        if node.get("type") == "array":
            assert "items" in node, f"{path}: an array says what it holds"
    # Nested models are spelled out, with their own required fields.
    nested = {path: node for path, node in _objects(schema) if "properties" in node and path != "$"}
    for sub in _models_below(model)[1:]:
        matches = [node for node in nested.values() if list(node["properties"]) == list(sub.model_fields)]
        assert matches, f"{sub.__name__} is not described inside {model.__name__}'s schema"
        required = [name for name in sub.model_fields if not _admits_none(sub, name)]
        assert all(node.get("required", []) == required for node in matches)


def test_a_field_added_to_a_result_model_is_published_without_further_work() -> None:
    class Extended(UpsertResult):
        merged_from: list[str]
        note: str | None = None

    schema = output_schema(Extended)
    assert schema["properties"]["merged_from"] == {"type": "array", "items": {"type": "string"}}
    assert schema["properties"]["note"] == {"type": "string"}
    assert "merged_from" in schema["required"]
    assert "note" not in schema["required"]


def test_a_tool_without_a_declared_result_is_refused() -> None:
    async def bare() -> None:
        return None

    with pytest.raises(TypeError, match="Annotated\\[CallToolResult"):
        result_model(bare)


@pytest.mark.anyio
async def test_each_tool_publishes_its_result_models_schema(client: Client) -> None:
    listed = {tool.name: tool.output_schema for tool in (await client.list_tools()).tools}
    for spec in TOOLS:
        assert listed[spec.name] == output_schema(result_model(spec.fn)), spec.name


@pytest.mark.anyio
async def test_a_result_that_breaks_its_model_is_not_sent_as_success(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server checks each result against its whole model before it is sent."""

    def bogus(self: UpsertResult) -> dict[str, object]:
        return {"provider": "local", "outcome": "merged", "id": self.id}  # "merged" is no Outcome

    monkeypatch.setattr(UpsertResult, "structured", bogus)
    result = await client.call_tool("upsert_contact", {"email": "ann@example.com"})

    assert result.is_error
