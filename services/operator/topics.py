"""Topics as declared in the spec: created with the declared partitions; lowering is
refused (Kafka cannot), raising is refused unless `broker.allowPartitionIncrease` confirms it
(it moves symbols between partitions, hence between the engines' state)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic


class TopicAction(StrEnum):
    OK = "ok"
    CREATE = "create"
    INCREASE = "increase"
    REFUSE = "refuse"


@dataclass(frozen=True)
class TopicDecision:
    action: TopicAction
    message: str = ""


def decide_topic(
    name: str, existing: int | None, declared: int, allow_increase: bool
) -> TopicDecision:
    """What to do with topic `name` that has `existing` partitions (None: absent)."""
    if existing is None:
        return TopicDecision(TopicAction.CREATE, f"creating topic {name} ({declared} partitions)")
    if existing == declared:
        return TopicDecision(TopicAction.OK)
    if existing > declared:
        return TopicDecision(
            TopicAction.REFUSE,
            (
                f"topic {name} has {existing} partitions; lowering to {declared} is refused "
                f"(Kafka cannot remove partitions): set broker.partitions back to {existing}"
            ),
        )
    if not allow_increase:
        return TopicDecision(
            TopicAction.REFUSE,
            (
                f"topic {name} has {existing} partitions; raising to {declared} moves symbols "
                "between partitions (and engines' state): set broker.allowPartitionIncrease: "
                f"true to confirm, or broker.partitions back to {existing}"
            ),
        )
    return TopicDecision(
        TopicAction.INCREASE, f"raising topic {name} from {existing} to {declared} partitions"
    )


class Admin:
    """The broker's topics (confluent-kafka AdminClient); raises KafkaException/TimeoutError."""

    def __init__(
        self, bootstrap: str, extra: dict[str, Any] | None = None, timeout_s: float = 10.0
    ) -> None:
        conf: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            **(extra or {}),
            "logger": logging.getLogger("librdkafka"),
        }
        self._admin = AdminClient(conf)
        self._timeout_s = timeout_s

    @staticmethod
    def extra_from_json(raw: str | None) -> dict[str, Any]:
        return dict(json.loads(raw)) if raw else {}

    def partitions(self, name: str) -> int | None:
        md = self._admin.list_topics(timeout=self._timeout_s)
        topic = md.topics.get(name)
        if topic is None or topic.error is not None:
            return None
        return len(topic.partitions)

    def create(self, name: str, partitions: int, replication: int) -> None:
        futures = self._admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=replication)],
            request_timeout=self._timeout_s,
        )
        try:
            futures[name].result(timeout=self._timeout_s)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise

    def increase(self, name: str, partitions: int) -> None:
        futures = self._admin.create_partitions(
            [NewPartitions(name, partitions)], request_timeout=self._timeout_s
        )
        futures[name].result(timeout=self._timeout_s)
