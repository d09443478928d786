"""`IngestSettings`: the ingestion service's configuration, from environment variables
(`PROVIDER`, `SYMBOLS`, `EXCHANGE`, ... plus the common `KAFKA_BOOTSTRAP_SERVERS`,
`TICKS_TOPIC`, `METRICS_PORT`, ...). Every field is documented in services/ingest/README.md."""

from __future__ import annotations

from datetime import time
from enum import StrEnum
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, model_validator

from services.replay.formats import Format
from services.replay.settings import default_replay_file
from stockstream.settings import CommonSettings


class ProviderName(StrEnum):
    """Where ticks come from."""

    REPLAY = "replay"
    SIMULATE = "simulate"
    FINNHUB_QUOTE = "finnhub_quote"
    FINNHUB_TRADES = "finnhub_trades"


class Membership(StrEnum):
    """Where the shard count and this pod's ordinal come from."""

    AUTO = "auto"  # kubernetes when running in a cluster with STATEFULSET_NAME, else static
    STATIC = "static"  # SHARD_COUNT / SHARD_INDEX
    KUBERNETES = "kubernetes"  # ordinal from POD_NAME, count from the StatefulSet


# The providers that call Finnhub: they need a token and an explicit universe.
LIVE_PROVIDERS = frozenset({ProviderName.FINNHUB_QUOTE, ProviderName.FINNHUB_TRADES})


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class IngestSettings(CommonSettings):
    """Provider, symbol universe, market hours, sharding and publishing of one ingest pod."""

    provider: ProviderName = Field(ProviderName.REPLAY, description="Tick source.")
    symbols: str | None = Field(None, description="Symbol universe, comma separated.")
    symbols_file: Path | None = Field(
        None,
        validation_alias=_env("symbols_file", "ingest_symbols_file"),
        description="Symbol universe, one per line (# comments); the ConfigMap mount.",
    )
    exchange: str = Field(
        "24/7", description="Exchange calendar code (XNYS, XSHG, ...) or 24/7 (always open)."
    )

    # Sharding
    membership: Membership = Field(Membership.AUTO, description="auto, static or kubernetes.")
    shard_count: int = Field(1, ge=1, description="Pods sharing the universe (static).")
    shard_index: int = Field(0, ge=0, description="This pod's ordinal (static).")
    pod_name: str | None = Field(
        None, validation_alias=_env("pod_name", "hostname"), description="e.g. ingest-3."
    )
    statefulset_name: str | None = Field(
        None,
        validation_alias=_env("statefulset_name", "ingest_statefulset"),
        description="The StatefulSet whose spec.replicas is the shard count.",
    )
    namespace: str | None = Field(
        None,
        validation_alias=_env("namespace", "pod_namespace"),
        description="Namespace of the StatefulSet (default: the pod's own).",
    )

    # Finnhub
    finnhub_api_key: SecretStr | None = Field(None, description="API token (a Secret).")
    finnhub_base_url: str = Field("https://finnhub.io/api/v1", description="REST base URL.")
    finnhub_ws_url: str = Field("wss://ws.finnhub.io", description="Trades websocket URL.")
    poll_interval_s: float = Field(10.0, gt=0, description="Quote poll period, clock aligned.")
    poll_concurrency: int = Field(4, ge=1, description="Quote requests in flight at once.")
    http_timeout_s: float = Field(5.0, gt=0, description="Timeout of one quote request.")
    ws_heartbeat_timeout_s: float = Field(
        30.0, gt=0, description="Reconnect when the websocket is silent this long."
    )
    ws_backoff_initial_s: float = Field(1.0, gt=0, description="First reconnect delay.")
    ws_backoff_max_s: float = Field(60.0, gt=0, description="Largest reconnect delay.")

    # Simulation
    simulate_rate: float = Field(1000.0, gt=0, description="Ticks per second, all symbols.")
    simulate_seed: int = Field(1, description="Random seed (with the shard index).")
    simulate_symbols: int = Field(
        100, ge=1, description="Generated universe size (SIM0000...) when no SYMBOLS given."
    )
    simulate_volatility: float = Field(0.5, ge=0, description="Annualised GBM volatility.")
    simulate_drift: float = Field(0.0, description="Annualised GBM drift.")
    simulate_slice_s: float = Field(0.1, gt=0, description="Batch period of the generator.")

    # Replay (the readers and pacing of services.replay)
    replay_file: Path = Field(default_factory=default_replay_file, description="Market data.")
    replay_format: Format = Field(Format.AUTO, description="File format or auto.")
    replay_speed: float = Field(1.0, ge=0, description="Event seconds per second; 0 = max.")
    replay_loop: bool = Field(True, description="Replay again, shifted, when the file ends.")
    replay_from: time | None = Field(None, description="Skip rows earlier in the day.")

    # Publishing
    buffer_max_ticks: int = Field(
        1_000_000, ge=1, description="Local buffer bound; when full the oldest are dropped."
    )
    producer_inflight_max: int = Field(
        100_000, ge=1, description="Ticks handed to librdkafka but not yet acknowledged."
    )
    delivery_timeout_ms: int = Field(
        0, ge=0, description="librdkafka message.timeout.ms; 0 = retry until the broker is back."
    )
    flush_timeout_s: float = Field(30.0, ge=0, description="Flush on SIGTERM, at most this.")
    idle_ready: bool = Field(
        False, description="Report ready (200 on /readyz) while idle outside the session."
    )

    @model_validator(mode="after")
    def _check(self) -> IngestSettings:
        if self.membership is Membership.STATIC and self.shard_index >= self.shard_count:
            raise ValueError(f"SHARD_INDEX {self.shard_index} >= SHARD_COUNT {self.shard_count}")
        if self.ws_backoff_max_s < self.ws_backoff_initial_s:
            raise ValueError("WS_BACKOFF_MAX_S < WS_BACKOFF_INITIAL_S")
        if self.provider in LIVE_PROVIDERS:
            if self.finnhub_api_key is None or not self.finnhub_api_key.get_secret_value():
                raise ValueError(f"PROVIDER={self.provider.value} needs FINNHUB_API_KEY")
            if not (self.symbols and self.symbols.strip()) and self.symbols_file is None:
                raise ValueError(f"PROVIDER={self.provider.value} needs SYMBOLS or SYMBOLS_FILE")
        if self.membership is Membership.KUBERNETES and not (
            self.pod_name and self.statefulset_name
        ):
            raise ValueError("MEMBERSHIP=kubernetes needs POD_NAME and STATEFULSET_NAME")
        return self

    @property
    def api_key(self) -> str:
        """The Finnhub token; a clear error when a live provider runs without one."""
        if self.finnhub_api_key is None or not self.finnhub_api_key.get_secret_value():
            raise ValueError(f"PROVIDER={self.provider.value} needs FINNHUB_API_KEY")
        return self.finnhub_api_key.get_secret_value()
