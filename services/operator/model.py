"""The `StockStream` spec as typed, frozen dataclasses, parsed from the resource's `spec`.

The API server applies the CRD's defaults (`crd.py`) before the operator sees a resource;
`parse_spec` applies the same defaults again so that the pure functions work on any dict
(unit tests, a CRD installed without defaults).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

GROUP = "stockstream.io"
VERSION = "v1alpha1"
PLURAL = "stockstreams"
KIND = "StockStream"
API_VERSION = f"{GROUP}/{VERSION}"

PROVIDERS = ("replay", "ingest-replay", "simulate", "finnhub_quote", "finnhub_trades", "none")

SSE_FILE = "/app/data/marketdata/sse-30-stocks/sse_snapshot_30stocks_20211201.csv.gz"


@dataclass(frozen=True)
class SecretKeyRef:
    """A key of a Secret (or ConfigMap) in the resource's namespace."""

    name: str
    key: str


@dataclass(frozen=True)
class Recovery:
    storage_size: str = "1Gi"
    storage_class_name: str | None = None
    partitions: int = 12
    delete_volumes_on_delete: bool = False


@dataclass(frozen=True)
class Dataflow:
    processes: int = 2
    workers_per_process: int = 1
    snapshot_interval_s: int = 10
    resources: Mapping[str, Any] = field(
        default_factory=lambda: {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "768Mi"},
        }
    )
    recovery: Recovery = Recovery()


@dataclass(frozen=True)
class Windows:
    lengths_s: tuple[int, ...] = (60, 300, 900)
    slide_s: int = 10
    lateness_s: int = 5
    top_n: int = 3
    max_price_window_s: int = 300
    history_ttl_s: int = 3600


@dataclass(frozen=True)
class Broker:
    bootstrap_servers: str = "redpanda:9092"
    topic: str = "ticks"
    partitions: int = 6
    allow_partition_increase: bool = False
    dlq_topic: str = "ticks.dlq"
    dlq_partitions: int = 1
    replication_factor: int = 1
    config_secret: SecretKeyRef | None = None


@dataclass(frozen=True)
class Redis:
    url: str = "redis://redis:6379/0"
    username: str | None = None  # an ACL user (e.g. `writer`); None: the default user
    password_secret: SecretKeyRef | None = None


@dataclass(frozen=True)
class Feed:
    """Where ticks come from. `replay`: services.replay (a Deployment when it loops, else a
    Job); the others: the services.ingest StatefulSet with that provider (`ingest-replay` is
    its replay provider), `replicas` pods sharding the symbols; `none`: an external feed."""

    provider: str = "replay"
    replicas: int = 1
    replay_file: str = SSE_FILE
    replay_speed: float = 1.0
    replay_loop: bool = True
    replay_from: str | None = None
    replay_limit: int | None = None
    simulate_rate: float = 1000.0
    simulate_symbols: int = 50
    finnhub_token_secret: SecretKeyRef | None = None
    symbols: tuple[str, ...] = ()
    symbols_config_map: SecretKeyRef | None = None


@dataclass(frozen=True)
class Monitoring:
    stale_after_s: int = 120


@dataclass(frozen=True)
class StockStreamSpec:
    image: str
    image_pull_policy: str = "IfNotPresent"
    suspend: bool = False
    dataflow: Dataflow = Dataflow()
    windows: Windows = Windows()
    broker: Broker = Broker()
    redis: Redis = Redis()
    feed: Feed = Feed()
    monitoring: Monitoring = Monitoring()


def _ref(raw: Any, default_key: str) -> SecretKeyRef | None:
    if not raw:
        return None
    return SecretKeyRef(name=str(raw["name"]), key=str(raw.get("key", default_key)))


def parse_spec(spec: Mapping[str, Any]) -> StockStreamSpec:
    """A `StockStreamSpec` from the resource's `spec` (camelCase keys, defaults filled)."""
    d = spec.get("dataflow", {}) or {}
    rec = d.get("recovery", {}) or {}
    w = spec.get("windows", {}) or {}
    b = spec.get("broker", {}) or {}
    r = spec.get("redis", {}) or {}
    f = spec.get("feed", {}) or {}
    m = spec.get("monitoring", {}) or {}
    dd, dw, db, dr, df = Dataflow(), Windows(), Broker(), Redis(), Feed()
    dr_rec = Recovery()
    replay = f.get("replay", {}) or {}
    simulate = f.get("simulate", {}) or {}
    finnhub = f.get("finnhub", {}) or {}
    return StockStreamSpec(
        image=str(spec.get("image", "")),
        image_pull_policy=str(spec.get("imagePullPolicy", "IfNotPresent")),
        suspend=bool(spec.get("suspend", False)),
        dataflow=Dataflow(
            processes=int(d.get("processes", dd.processes)),
            workers_per_process=int(d.get("workersPerProcess", dd.workers_per_process)),
            snapshot_interval_s=int(d.get("snapshotIntervalSeconds", dd.snapshot_interval_s)),
            resources=d.get("resources") or dd.resources,
            recovery=Recovery(
                storage_size=str(rec.get("storageSize", dr_rec.storage_size)),
                storage_class_name=rec.get("storageClassName"),
                partitions=int(rec.get("partitions", dr_rec.partitions)),
                delete_volumes_on_delete=bool(rec.get("deleteVolumesOnDelete", False)),
            ),
        ),
        windows=Windows(
            lengths_s=tuple(int(x) for x in w.get("lengthsSeconds", dw.lengths_s)),
            slide_s=int(w.get("slideSeconds", dw.slide_s)),
            lateness_s=int(w.get("latenessSeconds", dw.lateness_s)),
            top_n=int(w.get("topN", dw.top_n)),
            max_price_window_s=int(w.get("maxPriceWindowSeconds", dw.max_price_window_s)),
            history_ttl_s=int(w.get("historyTtlSeconds", dw.history_ttl_s)),
        ),
        broker=Broker(
            bootstrap_servers=str(b.get("bootstrapServers", db.bootstrap_servers)),
            topic=str(b.get("topic", db.topic)),
            partitions=int(b.get("partitions", db.partitions)),
            allow_partition_increase=bool(b.get("allowPartitionIncrease", False)),
            dlq_topic=str(b.get("dlqTopic", db.dlq_topic)),
            dlq_partitions=int(b.get("dlqPartitions", db.dlq_partitions)),
            replication_factor=int(b.get("replicationFactor", db.replication_factor)),
            config_secret=_ref(b.get("configSecret"), "config.json"),
        ),
        redis=Redis(
            url=str(r.get("url", dr.url)),
            username=r.get("username"),
            password_secret=_ref(r.get("passwordSecret"), "password"),
        ),
        feed=Feed(
            provider=str(f.get("provider", df.provider)),
            replicas=int(f.get("replicas", df.replicas)),
            replay_file=str(replay.get("file", df.replay_file)),
            replay_speed=float(replay.get("speed", df.replay_speed)),
            replay_loop=bool(replay.get("loop", df.replay_loop)),
            replay_from=replay.get("from"),
            replay_limit=replay.get("limit"),
            simulate_rate=float(simulate.get("rate", df.simulate_rate)),
            simulate_symbols=int(simulate.get("symbols", df.simulate_symbols)),
            finnhub_token_secret=_ref(finnhub.get("tokenSecret"), "token"),
            symbols=tuple(str(s) for s in f.get("symbols", ()) or ()),
            symbols_config_map=_ref(f.get("symbolsConfigMap"), "symbols.txt"),
        ),
        monitoring=Monitoring(stale_after_s=int(m.get("staleAfterSeconds", 120))),
    )
