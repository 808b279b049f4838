"""Rendering Pydantic's JSON Schemas into the portable, compact forms we publish.

Pydantic stays the validator; what clients are shown is the same contract rewritten so that every host can read
it: one self-contained object schema, no `$ref`/`$defs`, no `anyOf`/`oneOf`/`allOf`, no type arrays (optional
means "not required"), no titles. Output schemas describe every field a result can carry (results never carry
nulls, so a field that may be None is simply not required).
"""

from __future__ import annotations

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
    default = mapping.get("default", ...)
    if default is None or (default is False and mapping.get("type") == "boolean"):
        # Left out, an argument is "not given" (None) or off (a flag whose default is false): saying so costs tokens.
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


def _without_none(annotation: object) -> tuple[object, bool]:
    """(the annotation less `None`, whether it admitted `None`)."""
    if isinstance(annotation, UnionType) or get_origin(annotation) is Union:
        members = [arg for arg in get_args(annotation) if arg is not NoneType]
        optional = len(members) < len(get_args(annotation))
        if len(members) == 1:
            return members[0], optional
        return Union[tuple(members)], optional  # noqa: UP007 - built at runtime from a tuple
    return annotation, False


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


def _value_schema(annotation: object) -> JsonSchema:
    bare, _ = _without_none(annotation)
    kind = json_type(bare)
    node: JsonSchema = {"type": kind} if kind else {}
    if get_origin(bare) is Literal:
        node["enum"] = list(get_args(bare))
    elif kind == "array":
        items = get_args(bare)
        node["items"] = _value_schema(items[0]) if items else {}
    elif kind == "object" and isinstance(bare, type) and issubclass(bare, BaseModel):
        node.update(output_schema(bare))
    return node


def output_schema(model: type[BaseModel]) -> JsonSchema:
    """The complete, portable schema of what a result model serialises to: every field, nested models inline,
    `required` for the fields always present (a result leaves out only fields that are None, so those are the
    fields whose type does not admit None). Read off the declared field types, so a field added to a model later
    is published without further work, and no `$ref`, `anyOf` or type array can appear."""
    properties: dict[str, JsonSchema] = {}
    required: list[str] = []
    for name, info in model.model_fields.items():
        node = _value_schema(info.annotation)
        if info.description:
            node["description"] = info.description
        properties[name] = node
        if not _without_none(info.annotation)[1]:
            required.append(name)
    schema: JsonSchema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema
