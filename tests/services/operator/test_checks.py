"""The operator's own spec checks (services/operator/checks.py)."""

from __future__ import annotations

import re

import pytest

from services.operator import crd
from services.operator.checks import reference_problems, spec_problems
from services.operator.model import InvalidSpecError, SecretKeyRef, parse_spec

GOOD = {"image": "stockstream:dev"}

# one case per CEL rule (its message, as the API server returns it) and per kind of bound
CASES = [
    (
        {"dataflow": {"processes": 4, "workersPerProcess": 2}, "broker": {"partitions": 6}},
        "dataflow.processes x dataflow.workersPerProcess must not exceed broker.partitions",
    ),
    (
        {"windows": {"lengthsSeconds": [60, 95], "slideSeconds": 10}},
        "every windows.lengthsSeconds must be a multiple of windows.slideSeconds",
    ),
    ({"windows": {"slideSeconds": 15}}, "windows.slideSeconds must be a multiple of 10"),
    (
        {"windows": {"maxPriceWindowSeconds": 25}},
        "windows.maxPriceWindowSeconds must be a multiple of 10",
    ),
    (
        {"dataflow": {"processes": 5, "recovery": {"partitions": 4}}, "broker": {"partitions": 6}},
        "dataflow.processes must not exceed dataflow.recovery.partitions",
    ),
    ({"feed": {"provider": "finnhub_quote"}}, "finnhub providers need feed.finnhub.tokenSecret"),
    (
        {
            "feed": {
                "provider": "ingest-replay",
                "symbols": ["A"],
                "symbolsConfigMap": {"name": "s"},
            }
        },
        "give feed.symbols or feed.symbolsConfigMap, not both",
    ),
    (
        {"feed": {"provider": "replay", "replicas": 2}},
        "the replay provider runs one producer (replicas 1)",
    ),
    ({"redis": {"url": "http://x"}}, "redis.url must start with redis://"),
    ({"image": ""}, "spec.image: String should have at least 1 character"),
    ({"dataflow": {"processes": 0}}, "spec.dataflow.processes: Input should be greater than"),
    ({"feed": {"provider": "kafka"}}, "spec.feed.provider: Input should be 'replay'"),
]


@pytest.mark.parametrize(("patch", "expected"), CASES)
def test_bad_spec_is_explained(patch: dict[str, object], expected: str) -> None:
    problems = spec_problems({**GOOD, **patch})
    assert any(expected in p for p in problems), problems


def test_parse_spec_raises_the_problems() -> None:
    with pytest.raises(InvalidSpecError) as err:
        parse_spec({**GOOD, "redis": {"url": "http://x"}})
    assert err.value.problems == ["redis.url must start with redis://"]


def test_every_checked_rule_is_a_crd_rule() -> None:
    """The operator's messages are the CEL rules' own (one place per rule)."""
    crd_messages = set(re.findall(r"message: (.*)", crd.render()))
    for _, expected in CASES:
        if not expected.startswith("spec."):
            assert any(m.startswith(expected) for m in crd_messages), expected


def test_defaults_are_valid() -> None:
    assert spec_problems(GOOD) == []


def test_missing_references_are_named() -> None:
    spec = parse_spec(
        {
            **GOOD,
            "redis": {"passwordSecret": {"name": "redis-auth"}},
            "feed": {"provider": "ingest-replay", "symbolsConfigMap": {"name": "syms"}},
        }
    )
    seen: list[tuple[str, SecretKeyRef]] = []

    def exists(kind: str, ref: SecretKeyRef) -> bool:
        seen.append((kind, ref))
        return kind == "ConfigMap"

    problems = reference_problems(spec, exists)
    assert [(kind, ref.name, ref.key) for kind, ref in seen] == [
        ("Secret", "redis-auth", "password"),
        ("ConfigMap", "syms", "symbols.txt"),
    ]
    assert len(problems) == 1 and "'redis-auth'" in problems[0] and "'password'" in problems[0]
