"""`python -m stockstream.create_topics`: create the ticks and dead-letter topics once the
broker answers (the Kubernetes topics Job). Works against any Kafka-protocol broker (Redpanda,
Apache Kafka) with the same client every component uses; existing topics are left as they are,
so the Job can run again."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from pydantic import Field

from stockstream.cli import load_settings
from stockstream.kafka import ensure_topics
from stockstream.logs import configure_logging
from stockstream.settings import CommonSettings

log = logging.getLogger("stockstream.create_topics")


class TopicsSettings(CommonSettings):
    """Partitions and retention of the two topics, and how long to wait for the broker."""

    ticks_partitions: int = Field(6, ge=1, description="Partitions of the ticks topic.")
    dlq_partitions: int = Field(1, ge=1, description="Partitions of the dead-letter topic.")
    ticks_retention_ms: int = Field(86_400_000, description="retention.ms of the ticks topic.")
    dlq_retention_ms: int = Field(604_800_000, description="retention.ms of the dead letters.")
    broker_wait_s: float = Field(300.0, gt=0, description="How long to wait for the broker.")


def wait_for_broker(settings: TopicsSettings) -> None:
    """Poll the broker's metadata until it answers; TimeoutError after `broker_wait_s`."""
    conf: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        **settings.kafka_extra_config,
        "logger": log,
    }
    admin = AdminClient(conf)
    deadline = time.monotonic() + settings.broker_wait_s
    attempt = 0
    while True:
        attempt += 1
        try:
            if admin.list_topics(timeout=5).brokers:
                return
        except KafkaException as exc:
            log.info("waiting for the broker", extra={"attempt": attempt, "error": str(exc)})
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"no broker at {settings.kafka_bootstrap_servers} after {settings.broker_wait_s}s"
            )
        time.sleep(2)


def main() -> int:
    settings = load_settings(TopicsSettings, "stockstream create-topics", __doc__)
    configure_logging("create-topics", settings.log_level)
    try:
        wait_for_broker(settings)
        created = ensure_topics(
            settings.kafka_bootstrap_servers,
            {
                settings.ticks_topic: settings.ticks_partitions,
                settings.dlq_topic: settings.dlq_partitions,
            },
            extra=settings.kafka_extra_config,
            configs={
                settings.ticks_topic: {"retention.ms": str(settings.ticks_retention_ms)},
                settings.dlq_topic: {"retention.ms": str(settings.dlq_retention_ms)},
            },
        )
    except (TimeoutError, KafkaException) as exc:
        log.error("creating the topics failed", extra={"error": str(exc)})
        return 1
    for name, new in created.items():
        log.info("topic created" if new else "topic exists", extra={"topic": name})
    return 0


if __name__ == "__main__":
    sys.exit(main())
