"""The spec model's building blocks, and its JSON schema as a CRD's structural schema.

CEL rules are written once. A `Rule` is a CEL expression, the message the API server returns
when it fails, and the same rule as a Python predicate. The CRD carries the expression
(`x-kubernetes-validations`), so the API server refuses a bad resource before the operator
sees it; the operator checks the predicate when it parses a spec and reports the same message
(a CRD installed without CEL, an older API server, or a unit test). Transition rules
(`oldSelf`) have no predicate: the operator does not see the previous object. A rule on a
field is `Annotated` metadata of its type (`Annotated[str, Rule(...)]`); rules on an object are
the `rules` class variable of its `SpecModel`.

`structural(model)`: Kubernetes wants every node typed and self-contained, so `$ref`s are
inlined, an `Optional[X]` (`anyOf: [X, null]`) becomes plain X (the field is omitted when
unset; a `null` default is dropped), titles are dropped, `x-kubernetes-preserve-unknown-fields`
replaces `additionalProperties`, a typed map (`Mapping[str, X]`) keeps `additionalProperties`
(X's schema) and `maxProperties`, an `x-kubernetes-int-or-string` node (a quantity) has no
`type`, and an object's default is the defaults of its properties:
the API server checks CEL rules against a default as written, before nested defaults apply,
so an empty or partial default would fail the rules. Anything else is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

Schema = dict[str, Any]

RULES_KEY = "x-kubernetes-validations"
INT_OR_STRING = "x-kubernetes-int-or-string"
ERROR_TYPE = "cel"  # the pydantic error type of a failed rule


@dataclass(frozen=True)
class Rule:
    """One `x-kubernetes-validations` entry and its Python twin (`holds(self) -> bool`)."""

    rule: str
    message: str
    holds: Callable[[Any], bool] | None = None

    def entry(self) -> dict[str, str]:
        return {"rule": self.rule, "message": self.message}

    def check(self, value: Any) -> Any:
        """`value` when the rule holds; a validation error with the rule's message if not."""
        if self.holds is not None and not self.holds(value):
            raise PydanticCustomError(ERROR_TYPE, "{message}", {"message": self.message})
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = handler(schema)
        out.setdefault(RULES_KEY, []).append(self.entry())
        return out


def immutable(path: str) -> Rule:
    """A transition rule: the field cannot change once set."""
    return Rule("self == oldSelf", f"{path} is immutable")


def _object_rules(schema: dict[str, Any], cls: type[Any]) -> None:
    rules: tuple[Rule, ...] = getattr(cls, "rules", ())
    if rules:
        schema[RULES_KEY] = [r.entry() for r in rules]


class SpecModel(BaseModel):
    """A frozen part of the spec: camelCase aliases (the CRD's names) of snake_case
    attributes, unknown keys ignored (the API server prunes them), `rules` checked after the
    fields."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        json_schema_extra=_object_rules,
    )

    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        failed = [r.message for r in self.rules if r.holds is not None and not r.holds(self)]
        if failed:
            raise PydanticCustomError(ERROR_TYPE, "{message}", {"message": "; ".join(failed)})
        return self


ALLOWED = frozenset(
    {
        "type",
        "description",
        "default",
        "properties",
        "items",
        "required",
        "enum",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "pattern",
        "maxProperties",
        "additionalProperties",
        "x-kubernetes-validations",
        "x-kubernetes-preserve-unknown-fields",
        INT_OR_STRING,
    }
)
FIRST = ("type", "description", "required", "default")  # key order of a node in the YAML


def structural(model: type[BaseModel]) -> Schema:
    """The structural schema of `model` (camelCase aliases as property names)."""
    schema = model.model_json_schema(by_alias=True)
    defs = schema.pop("$defs", {})
    return _node(schema, defs, "")


def _node(node: Schema, defs: Schema, path: str) -> Schema:
    node = dict(node)
    if node.get("default", ...) is None:
        del node["default"]
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"{path or '.'}: only Optional[X] unions are structural")
        return _node(_merge(options[0], node), defs, path)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        return _node(_merge(target, node), defs, path)
    node.pop("title", None)
    if node.get("x-kubernetes-preserve-unknown-fields"):
        node.pop("additionalProperties", None)
    unknown = set(node) - ALLOWED
    if unknown or ("type" not in node and not node.get(INT_OR_STRING)):
        raise ValueError(f"{path or '.'}: not structural (type missing or {sorted(unknown)})")
    if "additionalProperties" in node:
        if not isinstance(node["additionalProperties"], dict) or "properties" in node:
            raise ValueError(f"{path or '.'}: only a map's additionalProperties is structural")
        node["additionalProperties"] = _node(node["additionalProperties"], defs, f"{path}[*]")
    if "properties" in node:
        node["properties"] = {
            k: _node(v, defs, f"{path}.{k}") for k, v in node["properties"].items()
        }
        if isinstance(node.get("default"), dict):
            node["default"] = {
                k: v["default"] for k, v in node["properties"].items() if "default" in v
            }
    if "items" in node:
        node["items"] = _node(node["items"], defs, f"{path}[]")
    return {
        **{k: node[k] for k in FIRST if k in node},
        **{k: v for k, v in node.items() if k not in FIRST},
    }


def _merge(inner: Schema, outer: Schema) -> Schema:
    """`inner` (a definition or union member) with the field's own keys on top; CEL rules of
    both are kept."""
    rules = inner.get("x-kubernetes-validations", []) + outer.get("x-kubernetes-validations", [])
    merged = {**inner, **outer}
    if rules:
        merged["x-kubernetes-validations"] = rules
    return merged


def descriptionless(schema: Any) -> Any:
    """`schema` without its descriptions (to compare the shape of two schemas)."""
    if isinstance(schema, dict):
        return {k: descriptionless(v) for k, v in schema.items() if k != "description"}
    if isinstance(schema, list):
        return [descriptionless(v) for v in schema]
    return schema


def undescribed(schema: Schema, path: str = "") -> list[str]:
    """Paths of the properties of `schema` (at any depth) without a description."""
    missing: list[str] = []
    for name, prop in schema.get("properties", {}).items():
        if not str(prop.get("description", "")).strip():
            missing.append(f"{path}.{name}")
        missing += undescribed(prop, f"{path}.{name}")
    if "items" in schema:
        missing += undescribed(schema["items"], f"{path}[]")
    return missing
