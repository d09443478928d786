"""The CRD's spec schema is generated from the pydantic model (services/operator/spec.py via
services/operator/schema.py): structural, fully described, and the same API as before."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
import yaml
from pydantic import BaseModel, Field

from services.operator import crd
from services.operator.schema import Rule, SpecModel, descriptionless, structural, undescribed
from services.operator.spec import StockStreamSpec

# deploy/kustomize/operator/install/crd.yaml as hand-written in crd.py before the spec model
BEFORE = Path(__file__).parent / "fixtures/crd_before_spec_model.yaml"


def _schema(doc: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def changed_since(before: Any, now: Any, path: str = "") -> list[str]:
    """Where `now` breaks what `before` allowed: a value changed or a key removed. New
    properties (fields added since) are not changes; everything else must be equal."""
    if isinstance(before, dict) and isinstance(now, dict):
        out = [f"{path}.{k}: removed" for k in before if k not in now]
        for k in before:
            if k in now:
                out += changed_since(before[k], now[k], f"{path}.{k}")
        extra = set(now) - set(before)
        if extra and not path.endswith(".properties"):
            out.append(f"{path}: new keys {sorted(extra)}")
        return out
    if isinstance(before, list) and isinstance(now, list) and len(before) == len(now):
        return [
            d
            for i, (b, n) in enumerate(zip(before, now, strict=True))
            for d in changed_since(b, n, f"{path}[{i}]")
        ]
    return [] if before == now else [f"{path}: {before!r} -> {now!r}"]


def test_crd_keeps_every_field_of_the_former_crd() -> None:
    """Field names, types, defaults, bounds, enums, required fields, CEL rules, markers,
    subresources and printer columns of the CRD as it was hand-written are unchanged (a
    resource valid then is valid now, and means the same); fields were only added."""
    before = yaml.safe_load(BEFORE.read_text())
    assert changed_since(descriptionless(before), descriptionless(crd.crd())) == []


@pytest.mark.parametrize(
    ("before", "now", "expected"),
    [
        ({"properties": {"a": 1}}, {"properties": {"a": 1, "b": 2}}, []),
        ({"properties": {"a": 1}}, {"properties": {}}, [".properties.a: removed"]),
        ({"minimum": 1}, {"minimum": 2}, [".minimum: 1 -> 2"]),
        ({"type": "object"}, {"type": "object", "required": ["x"]}, [": new keys ['required']"]),
        ({"enum": ["a", "b"]}, {"enum": ["a"]}, [".enum: ['a', 'b'] -> ['a']"]),
        ({"items": [{"a": 1}]}, {"items": [{"a": 2}]}, [".items[0].a: 1 -> 2"]),
    ],
)
def test_changed_since_finds_what_breaks_old_resources(
    before: Any, now: Any, expected: list[str]
) -> None:
    assert changed_since(before, now) == expected


def test_every_field_is_described() -> None:
    """Except the root `metadata`: the API server refuses anything there but name and
    generateName rules (kubectl explain shows ObjectMeta's own descriptions)."""
    assert undescribed(_schema(crd.crd())) == [".metadata"]


def test_undescribed_finds_nested_fields() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "object", "description": "A.", "properties": {"b": {"type": "string"}}},
            "c": {
                "type": "array",
                "description": " ",
                "items": {"type": "object", "properties": {"d": {"type": "integer"}}},
            },
        },
    }
    assert undescribed(schema) == [".a.b", ".c", ".c[].d"]


def _walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [node]
    for child in node.get("properties", {}).values():
        nodes += _walk(child)
    if "items" in node:
        nodes += _walk(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        nodes += _walk(node["additionalProperties"])
    return nodes


def test_spec_schema_is_structural() -> None:
    """Every node is typed (a quantity is int-or-string, which has no type)."""
    for node in _walk(structural(StockStreamSpec)):
        assert "type" in node or node.get("x-kubernetes-int-or-string") is True, node
        assert not {"$ref", "anyOf", "oneOf", "allOf", "title", "$defs"} & set(node), node


class _Inner(SpecModel):
    rules = (Rule("self.low <= self.high", "low must not exceed high", lambda m: m.low <= m.high),)
    low: int = Field(1, ge=0, description="Low.")
    high: int = Field(2, description="High.")
    note: str | None = Field(None, max_length=5, description="A note.")


class _Outer(SpecModel):
    name: Annotated[str, Rule("self != 'x'", "name must not be x", lambda v: v != "x")] = Field(
        description="Name."
    )
    inner: _Inner = Field(_Inner(), description="Inner.")
    maybe: _Inner | None = Field(None, description="Maybe.")


def test_converter_inlines_refs_drops_nulls_and_fills_defaults() -> None:
    inner = {
        "type": "object",
        "description": "Inner.",
        "default": {"low": 1, "high": 2},
        "properties": {
            "low": {"type": "integer", "description": "Low.", "default": 1, "minimum": 0},
            "high": {"type": "integer", "description": "High.", "default": 2},
            "note": {"type": "string", "description": "A note.", "maxLength": 5},
        },
        "x-kubernetes-validations": [
            {"rule": "self.low <= self.high", "message": "low must not exceed high"}
        ],
    }
    maybe = {k: v for k, v in inner.items() if k != "default"} | {"description": "Maybe."}
    assert structural(_Outer) == {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {
                "type": "string",
                "description": "Name.",
                "x-kubernetes-validations": [
                    {"rule": "self != 'x'", "message": "name must not be x"}
                ],
            },
            "inner": inner,
            "maybe": maybe,
        },
    }


def test_rules_check_in_python_with_the_cel_message() -> None:
    with pytest.raises(ValueError, match="low must not exceed high"):
        _Outer.model_validate({"name": "a", "inner": {"low": 3}})
    with pytest.raises(ValueError, match="name must not be x"):
        _Outer.model_validate({"name": "x"})


def test_non_structural_types_are_refused() -> None:
    class Union(BaseModel):
        value: int | str = Field(description="Either.")

    with pytest.raises(ValueError, match=r"\.value: only Optional"):
        structural(Union)
