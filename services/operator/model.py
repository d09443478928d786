"""The `StockStream` API: its names, and the spec parsed from a resource.

The spec model itself (fields, defaults, bounds, descriptions, CEL rules) is `spec.py`;
`parse_spec` validates a resource's `spec` against it, so the pure functions work on any dict
(unit tests, a CRD installed without defaults or CEL) with the same defaults and messages as
the API server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from services.operator.schema import ERROR_TYPE
from services.operator.spec import (
    PROVIDERS,
    SSE_FILE,
    Broker,
    Dataflow,
    Feed,
    Monitoring,
    Recovery,
    Redis,
    SecretKeyRef,
    StockStreamSpec,
    Windows,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "PROVIDERS",
    "SSE_FILE",
    "VERSION",
    "Broker",
    "Dataflow",
    "Feed",
    "InvalidSpecError",
    "Monitoring",
    "Recovery",
    "Redis",
    "SecretKeyRef",
    "StockStreamSpec",
    "Windows",
    "parse_spec",
]

GROUP = "stockstream.io"
VERSION = "v1alpha1"
PLURAL = "stockstreams"
KIND = "StockStream"
API_VERSION = f"{GROUP}/{VERSION}"


class InvalidSpecError(ValueError):
    """The spec breaks the schema or a CEL rule; `problems` are one sentence each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def problems_of(error: ValidationError) -> list[str]:
    """One sentence per error: a CEL rule's own message (it names its fields), else the
    field's path (camelCase, as in the resource) and pydantic's message."""
    out: list[str] = []
    for e in error.errors():
        if e["type"] == ERROR_TYPE:
            out.append(e["msg"])
        else:
            path = ".".join(str(p) for p in e["loc"])
            out.append(f"spec.{path}: {e['msg']}" if path else e["msg"])
    return out


def parse_spec(spec: Mapping[str, Any]) -> StockStreamSpec:
    """`StockStreamSpec.model_validate(spec)` (camelCase keys, defaults filled); raises
    `InvalidSpecError` with one sentence per problem."""
    try:
        return StockStreamSpec.model_validate(spec)
    except ValidationError as e:
        raise InvalidSpecError(problems_of(e)) from e
