"""The `StockStream` spec: one typed, frozen pydantic model, the single source of the API.

The CRD's openAPIV3Schema is generated from it (`crd.py`, via `schema.py`): field names
(camelCase aliases), types, defaults, bounds, enums, descriptions and CEL rules (`schema.Rule`).
`StockStreamSpec.model_validate(spec)` parses a resource's `spec`, applying the same defaults
(the API server has already applied them, but unit tests and a CRD installed without defaults
pass bare dicts) and the same rules with the same messages.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import Field, field_validator

from services.operator.pod_template_spec import PodTemplate
from services.operator.resources_spec import Resources, default_resources
from services.operator.schema import Rule, SpecModel, immutable

Provider = Literal["replay", "ingest-replay", "simulate", "finnhub_quote", "finnhub_trades", "none"]
PROVIDERS: tuple[str, ...] = get_args(Provider)

SSE_FILE = "/app/data/marketdata/sse-30-stocks/sse_snapshot_30stocks_20211201.csv.gz"


class SecretKeyRef(SpecModel):
    """A key of a Secret in the resource's namespace."""

    name: str = Field(max_length=253, description="Name of the Secret in the resource's namespace.")
    key: str = Field(max_length=253, description="Key of the Secret holding the value.")


class KafkaConfigRef(SecretKeyRef):
    key: str = Field(
        "config.json",
        max_length=253,
        description="Key of the Secret holding the JSON object of librdkafka settings.",
    )


class RedisPasswordRef(SecretKeyRef):
    key: str = Field(
        "password", max_length=253, description="Key of the Secret holding the password."
    )


class FinnhubTokenRef(SecretKeyRef):
    key: str = Field(
        "token", max_length=253, description="Key of the Secret holding the Finnhub API token."
    )


class SymbolsRef(SecretKeyRef):
    """A key of a ConfigMap (not a Secret) in the resource's namespace."""

    name: str = Field(
        max_length=253, description="Name of the ConfigMap in the resource's namespace."
    )
    key: str = Field(
        "symbols.txt",
        max_length=253,
        description="Key of the ConfigMap holding the symbols, one per line.",
    )


class Recovery(SpecModel):
    storage_size: Annotated[str, immutable("storageSize")] = Field(
        "1Gi",
        max_length=32,
        description="Size of each recovery PVC (a Kubernetes quantity, "
        "e.g. 1Gi); immutable, as the PVCs are created once.",
    )
    storage_class_name: Annotated[str, immutable("storageClassName")] | None = Field(
        None,
        max_length=253,
        description="StorageClass of the recovery PVCs; unset: the "
        "cluster's default StorageClass. Immutable.",
    )
    partitions: Annotated[int, immutable("partitions")] = Field(
        12,
        ge=1,
        le=1024,
        description="Recovery partitions (Bytewax snapshot stores), created "
        "once; at least the most processes the dataflow will ever run. Immutable.",
    )
    delete_volumes_on_delete: bool = Field(
        False,
        description="Delete the recovery PVCs with the resource; false keeps them (and "
        "the state) for a resource created again under the same name.",
    )


class Dataflow(SpecModel):
    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "self.processes <= self.recovery.partitions",
            "dataflow.processes must not exceed dataflow.recovery.partitions",
            lambda d: d.processes <= d.recovery.partitions,
        ),
    )

    processes: int = Field(
        2,
        ge=1,
        le=64,
        description="Bytewax processes (pods of the "
        "dataflow StatefulSet); the scale subresource. A change is a "
        "coordinated restart (Rescaling).",
    )
    workers_per_process: int = Field(
        1,
        ge=1,
        le=32,
        description="Worker threads per process; a change is a coordinated restart (Upgrading).",
    )
    snapshot_interval_s: int = Field(
        10,
        ge=1,
        le=3600,
        alias="snapshotIntervalSeconds",
        description="Epoch length in seconds: how often the "
        "state is snapshotted to the recovery volumes.",
    )
    resources: Resources = Field(
        default_factory=default_resources,
        description="Container resources (requests/"
        "limits) of a dataflow process; unset or empty: requests 250m CPU and 256Mi memory, "
        "limits 1 CPU and 768Mi memory. A change is a coordinated restart (Upgrading).",
    )
    recovery: Recovery = Field(
        Recovery(),
        description="Recovery volumes (one PVC per process) holding the Bytewax snapshots.",
    )
    pod_template: PodTemplate | None = Field(
        None,
        description="Labels, annotations and scheduling fields of the dataflow pods, "
        "over spec.podTemplate (maps merged by key, other fields replaced). A change is a "
        "coordinated restart (Upgrading).",
    )

    @field_validator("resources", mode="before")
    @classmethod
    def _resources_or_default(cls, value: Any) -> Any:
        """Unset or empty: the default (applied here, not by the CRD, as before typing)."""
        return value or default_resources()


class Windows(SpecModel):
    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "self.slideSeconds % 10 == 0",
            "windows.slideSeconds must be a multiple of 10 (the pane)",
            lambda w: w.slide_s % 10 == 0,
        ),
        Rule(
            "self.lengthsSeconds.all(l, l % self.slideSeconds == 0)",
            "every windows.lengthsSeconds must be a multiple of windows.slideSeconds",
            lambda w: all(length % w.slide_s == 0 for length in w.lengths_s),
        ),
        Rule(
            "self.maxPriceWindowSeconds % 10 == 0",
            "windows.maxPriceWindowSeconds must be a multiple of 10",
            lambda w: w.max_price_window_s % 10 == 0,
        ),
    )

    lengths_s: tuple[Annotated[int, Field(ge=10, le=86400)], ...] = Field(
        (60, 300, 900),
        min_length=1,
        max_length=8,
        alias="lengthsSeconds",
        description="Lengths in seconds of the sliding leaderboard windows (one leaderboard "
        "each), multiples of slideSeconds.",
    )
    slide_s: int = Field(
        10,
        ge=10,
        le=3600,
        alias="slideSeconds",
        description="Slide of the sliding windows in seconds: a multiple of the 10 s pane.",
    )
    lateness_s: int = Field(
        5,
        ge=0,
        le=3600,
        alias="latenessSeconds",
        description="Allowed event-time lateness in seconds; later ticks go to the DLQ topic.",
    )
    top_n: int = Field(3, ge=1, le=100, description="Symbols per leaderboard.")
    max_price_window_s: int = Field(
        300,
        ge=10,
        le=86400,
        alias="maxPriceWindowSeconds",
        description="Length in seconds of the tumbling max-price window (a multiple of 10).",
    )
    history_ttl_s: int = Field(
        3600,
        ge=60,
        le=604800,
        alias="historyTtlSeconds",
        description="Time to live in seconds of the history:* keys in Redis.",
    )


class Broker(SpecModel):
    bootstrap_servers: str = Field(
        "redpanda:9092",
        max_length=1024,
        description="Kafka "
        "bootstrap servers (host:port, comma-separated); a bare "
        "host is a Service in the resource's namespace.",
    )
    topic: Annotated[str, immutable("broker.topic")] = Field(
        "ticks",
        max_length=249,
        description="The ticks topic (created by the operator if missing). Immutable.",
    )
    partitions: int = Field(
        6,
        ge=1,
        le=1024,
        description="Partitions of the ticks topic "
        "(created by the operator); lowering is refused, raising needs "
        "allowPartitionIncrease.",
    )
    allow_partition_increase: bool = Field(
        False,
        description="Confirm raising partitions "
        "(moves symbols between partitions, so between "
        "engines' state).",
    )
    dlq_topic: str = Field(
        "ticks.dlq",
        max_length=249,
        description="The dead-letter topic "
        "(late and malformed ticks), created by the operator if missing.",
    )
    dlq_partitions: int = Field(1, ge=1, le=1024, description="Partitions of a created DLQ topic.")
    replication_factor: int = Field(
        1, ge=1, le=16, description="Replication factor of created topics."
    )
    config_secret: KafkaConfigRef | None = Field(
        None,
        description="Secret key holding extra "
        "librdkafka settings as JSON "
        "(KAFKA_EXTRA_CONFIG), e.g. SASL.",
    )


class Redis(SpecModel):
    url: Annotated[
        str,
        Rule(
            "self.startsWith('redis://')",
            "redis.url must start with redis://",
            lambda url: url.startswith("redis://"),
        ),
    ] = Field(
        "redis://redis:6379/0",
        max_length=1024,
        description="redis://host:port/db without "
        "the password; a bare host is a Service in the resource's namespace.",
    )
    username: str | None = Field(
        None,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Redis ACL user of the dataflow (and of the "
        "operator's freshness reads); default: the default user.",
    )
    password_secret: RedisPasswordRef | None = Field(
        None, description="Secret key with the (URL-safe) Redis password."
    )


class Replay(SpecModel):
    file: str = Field(
        SSE_FILE,
        max_length=1024,
        description="Recorded ticks file to replay "
        "(a path in the image); default: the SSE 30-stock snapshots of "
        "2021-12-01.",
    )
    speed: float = Field(
        1.0,
        ge=0,
        description="Replay speed: 1 is real time, 60 a minute per second, 0 as fast as possible.",
    )
    loop: bool = Field(
        True,
        description="Replay the file over and over (a Deployment); false "
        "publishes the slice once (a Job).",
    )
    from_: str | None = Field(
        None,
        alias="from",
        pattern=r"^[0-2][0-9]:[0-5][0-9]$",
        description="Skip the ticks earlier in the day (HH:MM, "
        "local exchange time); unset: the start of the file.",
    )
    limit: int | None = Field(
        None, ge=1, description="Publish at most this many ticks; unset: the whole file."
    )


class Simulate(SpecModel):
    rate: float = Field(
        1000.0, ge=0.001, description="Simulated ticks per second (over all symbols)."
    )
    symbols: int = Field(
        50,
        ge=1,
        le=100000,
        description="Size of the generated universe "
        "(SIM0000, ...) when neither symbols nor symbolsConfigMap is given.",
    )


class Finnhub(SpecModel):
    token_secret: FinnhubTokenRef | None = Field(
        None, description="Secret key with the Finnhub API token."
    )


class Feed(SpecModel):
    """Where ticks come from. `replay`: services.replay (a Deployment when it loops, else a
    Job); the others: the services.ingest StatefulSet with that provider (`ingest-replay` is
    its replay provider), `replicas` pods sharding the symbols; `none`: an external feed."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "!self.provider.startsWith('finnhub') "
            "|| (has(self.finnhub) && has(self.finnhub.tokenSecret))",
            "finnhub providers need feed.finnhub.tokenSecret",
            lambda f: not f.provider.startswith("finnhub") or f.finnhub_token_secret is not None,
        ),
        Rule(
            "!(has(self.symbols) && has(self.symbolsConfigMap))",
            "give feed.symbols or feed.symbolsConfigMap, not both",
            lambda f: f.symbols is None or f.symbols_config_map is None,
        ),
        Rule(
            "self.provider != 'replay' || self.replicas == 1",
            "the replay provider runs one producer (replicas 1); use ingest-replay to shard",
            lambda f: f.provider != "replay" or f.replicas == 1,
        ),
    )

    provider: Provider = Field(
        "replay",
        description="Tick source: replay (services.replay, "
        "one producer), ingest-replay, simulate, finnhub_quote or "
        "finnhub_trades (services.ingest, sharded), none (an external "
        "feed writes the ticks topic).",
    )
    replicas: int = Field(
        1,
        ge=1,
        le=64,
        description="Ingestion pods sharding the symbols (ingest providers); replay runs one.",
    )
    replay: Replay = Field(
        Replay(), description="Settings of the replay and ingest-replay providers."
    )
    simulate: Simulate = Field(Simulate(), description="Settings of the simulate provider.")
    finnhub: Finnhub | None = Field(
        None, description="Settings of the finnhub_quote and finnhub_trades providers."
    )
    symbols: tuple[Annotated[str, Field(max_length=32)], ...] | None = Field(
        None,
        max_length=10000,
        description="Symbols to feed (all of the source's otherwise); or give symbolsConfigMap.",
    )
    symbols_config_map: SymbolsRef | None = Field(
        None, description="ConfigMap key with one symbol per line (instead of symbols)."
    )

    @property
    def finnhub_token_secret(self) -> FinnhubTokenRef | None:
        return self.finnhub.token_secret if self.finnhub else None


class Monitoring(SpecModel):
    stale_after_s: int = Field(
        120,
        ge=10,
        le=86400,
        alias="staleAfterSeconds",
        description="Degraded (LeaderboardsStale) when the 1m "
        "leaderboard has not advanced for this many seconds while "
        "Running.",
    )


class Rollback(SpecModel):
    """Automatic rollback of a change that does not work (Flink's deployment rollback)."""

    enabled: bool = Field(
        True,
        description="Roll back to the last stable spec (the last one "
        "under which a fresh 1m window landed) when a change does not land a "
        "fresh window within readinessTimeoutSeconds; the resource's spec "
        "is left as written, status.rollback says what was rolled back.",
    )
    readiness_timeout_s: int = Field(
        300,
        ge=10,
        le=86400,
        alias="readinessTimeoutSeconds",
        description="Seconds a change has, from when the operator "
        "first applies it, to land a fresh 1m window (covering a "
        "coordinated restart and the first window's close).",
    )


class StockStreamSpec(SpecModel):
    """The desired pipeline: dataflow, windows, broker, Redis, feed and monitoring."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "self.dataflow.processes * self.dataflow.workersPerProcess <= self.broker.partitions",
            "dataflow.processes x dataflow.workersPerProcess must not exceed "
            "broker.partitions (idle workers otherwise)",
            lambda s: s.dataflow.processes * s.dataflow.workers_per_process <= s.broker.partitions,
        ),
    )

    image: str = Field(
        min_length=1,
        max_length=1024,
        description="The stockstream image "
        "(every component); a change is a coordinated restart (Upgrading).",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="Pull policy of every container."
    )
    pod_template: PodTemplate | None = Field(
        None,
        description="Labels, annotations and scheduling fields (nodeSelector, affinity, "
        "tolerations, topologySpreadConstraints, priorityClassName, imagePullSecrets) of "
        "every pod the operator creates: dataflow, replay and ingestion. A change restarts "
        "the dataflow (coordinated, Upgrading) and rolls the feed.",
    )
    suspend: bool = Field(
        False,
        description="Stop every process and keep the state (the recovery volumes and the topics).",
    )
    dataflow: Dataflow = Field(Dataflow(), description="The Bytewax dataflow cluster.")
    windows: Windows = Field(
        Windows(), description="Leaderboard windows of the dataflow (event time, seconds)."
    )
    broker: Broker = Field(
        Broker(), description="The Kafka-compatible broker and the topics the operator creates."
    )
    redis: Redis = Field(
        Redis(), description="Redis, where the dataflow writes the leaderboards and history."
    )
    feed: Feed = Field(Feed(), description="The tick feed publishing to broker.topic.")
    monitoring: Monitoring = Field(
        Monitoring(), description="Health checks behind the Degraded condition."
    )
    rollback: Rollback = Field(
        Rollback(), description="Automatic rollback of a change that does not land a fresh window."
    )
    restart_nonce: int | None = Field(
        None,
        ge=0,
        description="Change it (any new number) to "
        "restart every dataflow process without another change: "
        "a coordinated restart (Upgrading), like Flink's "
        "restartNonce.",
    )
