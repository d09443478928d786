"""Settings of the operator (`python -m services.operator`), from the environment."""

from __future__ import annotations

import os
import socket
from typing import Self

from pydantic import Field, model_validator
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
    # Leader election (services/operator/election.py): one active replica holds the Lease.
    leader_election: bool = Field(
        True, description="Run kopf only while holding the Lease; false: act at once, alone."
    )
    lease_name: str = Field("stockstream-operator", description="Name of the Lease.")
    lease_namespace: str = Field(
        "stockstream-system", description="Namespace of the Lease (the operator's own)."
    )
    lease_duration_s: int = Field(
        15,
        ge=1,
        description="leaseDurationSeconds: how long a standby waits on an unchanged "
        "Lease before taking it over.",
    )
    renew_deadline_s: float = Field(
        10.0,
        gt=0,
        description="The holder stops acting (exits) if it has not renewed the "
        "Lease for this long; less than the lease duration.",
    )
    retry_period_s: float = Field(
        2.0, gt=0, description="Period of acquire and renew attempts; less than the renew deadline."
    )
    pod_name: str = Field(
        "",
        description="holderIdentity in the Lease (the downward API's metadata.name); "
        "empty: hostname-pid.",
    )

    @model_validator(mode="after")
    def _timings(self) -> Self:
        if not self.retry_period_s < self.renew_deadline_s < self.lease_duration_s:
            raise ValueError("need retry_period_s < renew_deadline_s < lease_duration_s")
        return self

    @property
    def identity(self) -> str:
        return self.pod_name or f"{socket.gethostname()}-{os.getpid()}"

    @property
    def namespaces(self) -> list[str]:
        return [n.strip() for n in self.watch_namespaces.split(",") if n.strip()]
