"""Settings of the leaders dataflow, one typed object read from environment variables."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from dataflows.leaders.future_guard import GuardConfig
from dataflows.leaders.health import HealthBounds
from dataflows.leaders.specs import WindowSpec, build_specs
from stockstream.settings import CommonSettings, RedisUrl


class StartFrom(StrEnum):
    """Where a dataflow with no recovery snapshot starts reading the topic."""

    BEGINNING = "beginning"
    END = "end"


class DataflowSettings(CommonSettings):
    """Everything the leaders dataflow reads from its environment."""

    redis_url: RedisUrl = Field(
        "redis://127.0.0.1:6379/0", description="Redis, password in the URL."
    )
    lateness_s: float = Field(5.0, ge=0, description="Allowed event-time lateness.")
    window_lengths_s: tuple[int, ...] = Field(
        (60, 300, 900), description="Sliding window lengths, JSON list, multiples of 10."
    )
    slide_s: int = Field(10, gt=0, description="Slide of the sliding windows, multiple of 10.")
    max_price_window_s: int = Field(300, gt=0, description="Tumbling top-price window length.")
    top_n: int = Field(3, gt=0, description="Symbols kept in each leaderboard.")
    history_ttl_s: int = Field(3600, gt=0, description="TTL of the per-window history keys.")
    bounded: bool = Field(False, description="Stop at the end of the topic (backfill, tests).")
    start_from: StartFrom = Field(StartFrom.BEGINNING, description="Without a snapshot.")
    idle_tick_s: float = Field(
        1.0, gt=0, description="How often an idle partition's watermark follows system time."
    )
    idle_timeout_s: float = Field(
        30.0, ge=0, description="Idle time before the watermark follows system time (outages)."
    )
    batch_size: int = Field(500, gt=0, description="Messages per Kafka consume call.")
    recovery_dir: str | None = Field(
        None, description="Directory of Bytewax recovery partitions; unset disables recovery."
    )
    recovery_partitions: int = Field(2, gt=0, description="Partitions created in a new dir.")
    snapshot_interval_s: float = Field(5.0, gt=0, description="Epoch and snapshot interval.")
    backup_interval_s: float = Field(0.0, ge=0, description="How long old snapshots are kept.")
    process_id: int | None = Field(None, ge=0, description="This process's index in a cluster.")
    addresses: str | None = Field(None, description='Cluster processes, "host:port;host:port".')
    workers_per_process: int = Field(1, gt=0, description="Bytewax worker threads per process.")
    redis_retry_max_s: float = Field(5.0, gt=0, description="Cap of the Redis retry backoff.")
    # The far-future guard (dataflows/leaders/future_guard.py, README "Watermark").
    future_max_ahead_of_clock_s: float = Field(
        300.0, gt=0, description="Ticks (and windows) further ahead of the wall clock: future."
    )
    future_max_jump_s: float = Field(
        3600.0, gt=0, description="Replay: a larger jump ahead of the partition's time is held."
    )
    future_live_lag_s: float = Field(
        4 * 86400.0, ge=0, description="A partition this close to the clock is live: clock rule."
    )
    future_confirm_ticks: int = Field(
        10, gt=0, description="Held ticks that confirm a jump (or passed ticks that refute it)."
    )
    future_max_held: int = Field(1000, gt=0, description="Most ticks held per partition.")
    # The probes (dataflows/leaders/health.py, README "Probes").
    liveness_stall_s: float = Field(
        60.0, gt=0, description="/healthz fails when the running loop stands still this long."
    )
    readiness_broker_down_s: float = Field(
        10.0, ge=0, description="/readyz fails when the broker is unreachable this long."
    )

    @model_validator(mode="after")
    def _check_windows(self) -> DataflowSettings:
        """Refuse window lengths the engine cannot build, at start-up, naming the variables."""
        try:
            self.specs  # noqa: B018 - built for its checks
        except ValueError as exc:
            raise ValueError(f"WINDOW_LENGTHS_S / SLIDE_S / MAX_PRICE_WINDOW_S: {exc}") from exc
        return self

    @property
    def specs(self) -> tuple[WindowSpec, ...]:
        return build_specs(self.window_lengths_s, self.slide_s, self.max_price_window_s)

    @property
    def guard(self) -> GuardConfig:
        return GuardConfig(
            max_ahead_of_clock_ms=round(self.future_max_ahead_of_clock_s * 1000),
            max_jump_ms=round(self.future_max_jump_s * 1000),
            live_lag_ms=round(self.future_live_lag_s * 1000),
            confirm_ticks=self.future_confirm_ticks,
            max_held=self.future_max_held,
        )

    @property
    def health_bounds(self) -> HealthBounds:
        return HealthBounds(
            stall_s=self.liveness_stall_s, broker_down_s=self.readiness_broker_down_s
        )

    @property
    def lateness_ms(self) -> int:
        return round(self.lateness_s * 1000)
