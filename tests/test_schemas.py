"""The published output schemas: read off the result models' declared field types, and always what Pydantic says."""

from __future__ import annotations

from typing import Any, Literal, Optional, cast

import pytest
from mcp import Client
from pydantic import BaseModel

from contact_mcp import models
from contact_mcp.models import Result, UpsertResult
from contact_mcp.schemas import compact_output_schema, json_type
from contact_mcp.server import result_model
from contact_mcp.tools import TOOLS

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
    node = cast(dict[str, Any], model.model_json_schema()["properties"][field])
    options = [o for o in node.get("anyOf", [node]) if o.get("type") != "null"]
    kinds = {o.get("type", "object" if "$ref" in o else None) for o in options}
    return kinds.pop() if len(kinds) == 1 else None


@pytest.mark.parametrize("model", RESULTS, ids=[m.__name__ for m in RESULTS])
def test_every_published_key_has_the_type_pydantic_gives_it(model: type[Result]) -> None:
    schema = compact_output_schema(model, model.keys)

    assert list(schema["properties"]) == list(model.keys)
    for key in model.keys:
        assert schema["properties"][key] == {"type": _pydantic_type(model, key)}


def test_a_tool_without_a_declared_result_is_refused() -> None:
    async def bare() -> None:
        return None

    with pytest.raises(TypeError, match="Annotated\\[CallToolResult"):
        result_model(bare)


@pytest.mark.anyio
async def test_a_result_that_breaks_its_model_is_not_sent_as_success(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The published schema is compact, so the server still checks each result against the whole model."""

    def bogus(self: UpsertResult) -> dict[str, object]:
        return {"provider": "local", "outcome": "merged", "id": self.id}  # "merged" is no Outcome

    monkeypatch.setattr(UpsertResult, "structured", bogus)
    result = await client.call_tool("upsert_contact", {"email": "ann@example.com"})

    assert result.is_error
