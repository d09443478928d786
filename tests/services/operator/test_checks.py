"""The operator's own spec checks (services/operator/checks.py)."""

from __future__ import annotations

import pytest

from services.operator.checks import reference_problems, spec_problems
from services.operator.model import SecretKeyRef, parse_spec

GOOD = {"image": "stockstream:dev"}

CASES = [
    ({"dataflow": {"processes": 4, "workersPerProcess": 2}, "broker": {"partitions": 6}},
     "exceeds broker.partitions"),
    ({"windows": {"lengthsSeconds": [60, 95], "slideSeconds": 10}}, "not multiples"),
    ({"windows": {"slideSeconds": 15}}, "multiple of 10"),
    ({"windows": {"maxPriceWindowSeconds": 25}}, "maxPriceWindowSeconds"),
    ({"dataflow": {"processes": 5, "recovery": {"partitions": 4}}, "broker": {"partitions": 6}},
     "recovery.partitions"),
    ({"feed": {"provider": "finnhub_quote"}}, "tokenSecret"),
    ({"feed": {"provider": "ingest-replay", "symbols": ["A"],
               "symbolsConfigMap": {"name": "s"}}}, "not both"),
    ({"feed": {"provider": "replay", "replicas": 2}}, "one producer"),
    ({"redis": {"url": "http://x"}}, "redis://"),
    ({"image": ""}, "image is empty"),
]


@pytest.mark.parametrize(("patch", "expected"), CASES)
def test_bad_spec_is_explained(patch: dict[str, object], expected: str) -> None:
    problems = spec_problems(parse_spec({**GOOD, **patch}))
    assert any(expected in p for p in problems), problems


def test_defaults_are_valid() -> None:
    assert spec_problems(parse_spec(GOOD)) == []


def test_missing_references_are_named() -> None:
    spec = parse_spec({**GOOD, "redis": {"passwordSecret": {"name": "redis-auth"}},
                       "feed": {"provider": "ingest-replay",
                                "symbolsConfigMap": {"name": "syms"}}})
    seen: list[tuple[str, SecretKeyRef]] = []

    def exists(kind: str, ref: SecretKeyRef) -> bool:
        seen.append((kind, ref))
        return kind == "ConfigMap"

    problems = reference_problems(spec, exists)
    assert seen == [("Secret", SecretKeyRef("redis-auth", "password")),
                    ("ConfigMap", SecretKeyRef("syms", "symbols.txt"))]
    assert len(problems) == 1 and "'redis-auth'" in problems[0] and "'password'" in problems[0]
