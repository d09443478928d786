"""Typed settings shared by every service, read from environment variables.

Each service defines one `BaseSettings` subclass of `CommonSettings`; field
`kafka_bootstrap_servers` is read from `KAFKA_BOOTSTRAP_SERVERS`, and so on (names are
case-insensitive upper-case).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.connection import parse_url


def check_redis_url(url: str) -> str:
    """`url` if redis-py can connect with it (scheme, port); its errors never hold the
    password."""
    parse_url(url)
    return url


# A Redis URL (redis://, rediss:// or unix://, the password in it), checked when read.
RedisUrl = Annotated[str, AfterValidator(check_redis_url)]


class CommonSettings(BaseSettings):
    """What every component needs: where the broker is, the topics, logging and metrics."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka-protocol brokers, comma separated (host:port)."
    )
    ticks_topic: str = Field("ticks", description="Topic carrying ticks keyed by symbol.")
    dlq_topic: str = Field("ticks.dlq", description="Dead-letter topic for rejected messages.")
    kafka_extra_config: dict[str, str] = Field(
        default_factory=dict,
        description="Extra librdkafka settings as JSON, e.g. SASL: "
        '{"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", ...}.',
    )
    metrics_port: int = Field(
        9100, ge=0, le=65535, description="Port of /metrics, /healthz, /readyz; 0 disables."
    )
    log_level: str = Field("INFO", description="Python log level name.")

    @property
    def brokers(self) -> list[str]:
        """`kafka_bootstrap_servers` as a list."""
        return [part.strip() for part in self.kafka_bootstrap_servers.split(",") if part.strip()]
