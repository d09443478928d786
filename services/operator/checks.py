"""The operator's own checks of a spec, after the API server's schema and CEL rules.

They repeat the CEL rules (a CRD installed without them, or an older API server, still gets a
clear message) and check what CEL cannot see: referenced Secrets and ConfigMaps. Each problem
is one sentence a person can act on; an empty list means the spec is usable.
"""

from __future__ import annotations

from collections.abc import Callable

from services.operator.model import PROVIDERS, SecretKeyRef, StockStreamSpec

# exists(kind, ref) -> whether the Secret/ConfigMap `ref.name` with key `ref.key` exists
RefExists = Callable[[str, SecretKeyRef], bool]


def spec_problems(spec: StockStreamSpec) -> list[str]:  # noqa: PLR0912 - one branch per rule
    """Problems of the spec alone (the CEL rules and the schema's bounds)."""
    problems: list[str] = []
    d, w, b, f = spec.dataflow, spec.windows, spec.broker, spec.feed
    if not spec.image:
        problems.append("spec.image is empty")
    if d.processes < 1 or d.workers_per_process < 1:
        problems.append("dataflow.processes and dataflow.workersPerProcess must be >= 1")
    if d.processes * d.workers_per_process > b.partitions:
        problems.append(
            f"dataflow.processes x workersPerProcess = {d.processes * d.workers_per_process} "
            f"exceeds broker.partitions = {b.partitions}: raise the partitions or lower the "
            "processes"
        )
    if d.processes > d.recovery.partitions:
        problems.append(
            f"dataflow.processes = {d.processes} exceeds dataflow.recovery.partitions = "
            f"{d.recovery.partitions}"
        )
    if w.slide_s <= 0 or w.slide_s % 10:
        problems.append(f"windows.slideSeconds = {w.slide_s} is not a positive multiple of 10")
    else:
        bad = [length for length in w.lengths_s if length <= 0 or length % w.slide_s]
        if bad:
            problems.append(
                f"windows.lengthsSeconds {bad} are not multiples of slideSeconds = {w.slide_s}"
            )
    if w.max_price_window_s <= 0 or w.max_price_window_s % 10:
        problems.append("windows.maxPriceWindowSeconds must be a positive multiple of 10")
    if f.provider not in PROVIDERS:
        problems.append(f"feed.provider {f.provider!r} is not one of {', '.join(PROVIDERS)}")
    if f.provider.startswith("finnhub") and f.finnhub_token_secret is None:
        problems.append("finnhub providers need feed.finnhub.tokenSecret")
    if f.symbols and f.symbols_config_map is not None:
        problems.append("give feed.symbols or feed.symbolsConfigMap, not both")
    if f.provider == "replay" and f.replicas != 1:
        problems.append("the replay provider runs one producer; use ingest-replay to shard")
    if not spec.redis.url.startswith("redis://"):
        problems.append("redis.url must start with redis://")
    return problems


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
