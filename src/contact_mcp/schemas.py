"""Rendering Pydantic's JSON Schemas into the portable, compact forms we publish.

Pydantic stays the validator; what clients are shown is the same contract rewritten so that every host can read
it: one self-contained object schema, no `$ref`/`$defs`, no `anyOf`/`oneOf`/`allOf`, no type arrays (optional
means "not required"), no titles. Output schemas keep only the names and types of the fields
programs key on (`Result.keys`): they cost tokens on every turn, and results never carry nulls.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import NoneType, UnionType
from typing import Any, Literal, Union, cast, get_args, get_origin

from pydantic import BaseModel

JsonSchema = dict[str, Any]

# Length and count limits are enforced server-side and explained in the error that breaks them; published, they
# would cost tokens on every turn.
_INPUT_DROP = ("title", "maxLength", "minLength", "maxItems", "maxProperties", "additionalProperties")


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        mapping = cast(dict[str, Any], node)
        ref = mapping.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = defs[ref.removeprefix("#/$defs/")]
            merged = {**cast(dict[str, Any], target), **{k: v for k, v in mapping.items() if k != "$ref"}}
            return _resolve(merged, defs)
        return {k: _resolve(v, defs) for k, v in mapping.items() if k != "$defs"}
    if isinstance(node, list):
        return [_resolve(item, defs) for item in cast(list[Any], node)]
    return node


def _non_null(options: list[Any]) -> list[dict[str, Any]]:
    return [cast(dict[str, Any], o) for o in options if not (isinstance(o, dict) and o.get("type") == "null")]  # pyright: ignore[reportUnknownMemberType]


def _portable(node: Any) -> Any:
    if isinstance(node, list):
        return [_portable(item) for item in cast(list[Any], node)]
    if not isinstance(node, dict):
        return node
    mapping = dict(cast(dict[str, Any], node))
    options = mapping.pop("anyOf", None)
    if options is not None:
        kept = _non_null(options)
        if len(kept) == 1:
            mapping = {**kept[0], **mapping}
        # A union of scalars has no portable spelling: the type stays open and the description and the
        # server-side validator carry it.
    if mapping.get("default", 0) is None:
        mapping.pop("default")
    for key in _INPUT_DROP:
        mapping.pop(key, None)
    result: dict[str, Any] = {}
    for key, value in mapping.items():
        if key == "properties":
            result[key] = {name: _portable(sub) for name, sub in cast(dict[str, Any], value).items()}
        else:
            result[key] = _portable(value)
    return result


def portable_input_schema(schema: JsonSchema) -> JsonSchema:
    """Inline every reference and rewrite to the portable subset; the top level is always an object."""
    defs = cast(dict[str, Any], schema.get("$defs", {}))
    out = cast(JsonSchema, _portable(_resolve(schema, defs)))
    out["type"] = "object"
    out.setdefault("properties", {})
    ordered: JsonSchema = {"type": "object", "properties": out["properties"]}
    if out.get("required"):
        ordered["required"] = out["required"]
    return ordered


_JSON_SCALARS: dict[object, str] = {bool: "boolean", str: "string", int: "integer", float: "number"}


def json_type(annotation: object) -> str | None:
    """The JSON type a field's values always have, or None when they may have several (the type stays open)."""
    if isinstance(annotation, UnionType) or get_origin(annotation) is Union:
        kinds = {json_type(arg) for arg in get_args(annotation) if arg is not NoneType}
        return kinds.pop() if len(kinds) == 1 else None
    if get_origin(annotation) is Literal:
        kinds = {_JSON_SCALARS.get(cast(object, type(value))) for value in get_args(annotation)}
        return kinds.pop() if len(kinds) == 1 else None
    origin = cast(object, get_origin(annotation) or annotation)
    if origin is list or origin is tuple:
        return "array"
    if origin is dict or (isinstance(origin, type) and issubclass(origin, BaseModel)):
        return "object"
    return _JSON_SCALARS.get(cast(object, origin))


def compact_output_schema(model: type[BaseModel], keys: Sequence[str]) -> JsonSchema:
    """Only the `keys` fields, with their JSON types: a true statement about every result (other fields may appear),
    and a few dozen characters instead of hundreds. Read off the declared field types, so no JSON Schema of the
    whole result is generated at start-up."""
    properties: dict[str, Any] = {}
    for name in keys:
        kind = json_type(model.model_fields[name].annotation)
        properties[name] = {"type": kind} if kind else {}
    return {"type": "object", "properties": properties}
