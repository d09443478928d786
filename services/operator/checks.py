"""The operator's own checks of a spec, after the API server's schema and CEL rules.

The schema's bounds and the CEL rules are the spec model's (`spec.py`, `schema.Rule`): the same
rule and message at the API server and in `parse_spec`, so nothing is coded twice here.
`spec_problems` reports them for a raw spec; what CEL cannot see, the referenced Secrets and
ConfigMaps, is checked here. Each problem is one sentence a person can act on; an empty list
means the spec is usable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from services.operator.model import InvalidSpecError, SecretKeyRef, StockStreamSpec, parse_spec

# exists(kind, ref) -> whether the Secret/ConfigMap `ref.name` with key `ref.key` exists
RefExists = Callable[[str, SecretKeyRef], bool]


def spec_problems(spec: Mapping[str, Any]) -> list[str]:
    """Problems of a raw spec alone (the schema's bounds and the CEL rules)."""
    try:
        parse_spec(spec)
    except InvalidSpecError as e:
        return e.problems
    return []


def referenced(spec: StockStreamSpec) -> list[tuple[str, SecretKeyRef]]:
    """Every (kind, ref) the pipeline's pods would mount or read."""
    refs: list[tuple[str, SecretKeyRef]] = []
    if spec.redis.password_secret:
        refs.append(("Secret", spec.redis.password_secret))
    if spec.broker.config_secret:
        refs.append(("Secret", spec.broker.config_secret))
    if spec.feed.finnhub_token_secret and spec.feed.provider.startswith("finnhub"):
        refs.append(("Secret", spec.feed.finnhub_token_secret))
    if spec.feed.symbols_config_map:
        refs.append(("ConfigMap", spec.feed.symbols_config_map))
    return refs


def reference_problems(spec: StockStreamSpec, exists: RefExists) -> list[str]:
    """Missing Secrets/ConfigMaps (or keys): pods would not start, so nothing is created."""
    return [
        f"{kind} {ref.name!r} with key {ref.key!r} not found in the namespace: create it "
        "first (the pods would not start without it)"
        for kind, ref in referenced(spec)
        if not exists(kind, ref)
    ]
