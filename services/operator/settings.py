"""Settings of the operator (`python -m services.operator`), from the environment."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    """One typed settings object; variable names are the upper-cased field names."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    watch_namespaces: str = Field(
        "", description="Comma-separated namespaces to watch; empty = cluster-wide."
    )
    reconcile_interval_s: float = Field(
        10.0, gt=0, description="Re-check period of each StockStream (pods, freshness)."
    )
    check_freshness: bool = Field(True, description="Read leaderboard freshness from Redis.")
    metrics_port: int = Field(9100, ge=0, le=65535, description="/metrics port; 0 disables.")
    health_port: int = Field(8080, ge=0, le=65535, description="kopf liveness /healthz port.")
    listen_host: str = Field(
        "0.0.0.0",  # noqa: S104 - probed and scraped in-cluster
        description="Address of the metrics and health endpoints (tests: 127.0.0.1).",
    )
    kubeconfig: str | None = Field(None, description="Outside a cluster: the kubeconfig.")
    log_level: str = Field("INFO", description="Python log level name.")

    @property
    def namespaces(self) -> list[str]:
        return [n.strip() for n in self.watch_namespaces.split(",") if n.strip()]
