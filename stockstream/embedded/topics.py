"""Kafka topic helpers (idempotent create, wait until usable)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

__all__ = ["create_topic", "delete_topic", "wait_for_topic"]

_log = logging.getLogger(__name__)


def _admin(bootstrap: str) -> AdminClient:
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": _log}
    return AdminClient(conf)


def _partition_count(admin: AdminClient, name: str, timeout: float) -> int | None:
    """Number of partitions that have a leader, or None if the topic does not exist."""
    md = admin.list_topics(topic=name, timeout=timeout)
    tmd = md.topics.get(name)
    if tmd is None or tmd.error is not None:
        return None
    if not tmd.partitions:
        return None
    if any(p.leader < 0 or p.error is not None for p in tmd.partitions.values()):
        return 0
    return len(tmd.partitions)


def wait_for_topic(
    bootstrap: str, name: str, partitions: int | None = None, timeout: float = 30.0
) -> None:
    """Block until ``name`` exists with every partition led (and ``partitions`` of them)."""
    admin = _admin(bootstrap)
    deadline = time.monotonic() + timeout
    last: int | None = None
    while True:
        try:
            last = _partition_count(admin, name, timeout=min(5.0, max(0.5, timeout)))
        except KafkaException:
            last = None
        if last and (partitions is None or last == partitions):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"topic {name!r} not ready on {bootstrap} after {timeout}s "
                f"(partitions with leader: {last}, expected: {partitions})"
            )
        time.sleep(0.1)


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int,
    config: Mapping[str, str] | None = None,
    *,
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> None:
    """Create ``name`` with ``partitions`` partitions (and topic ``config``) and wait until
    all partitions have a leader.

    Idempotent: an existing topic with the same partition count is accepted as is
    (its config is not changed). Raises ``ValueError`` if it exists with a different
    partition count.
    """
    admin = _admin(bootstrap)
    new = NewTopic(
        name,
        num_partitions=partitions,
        replication_factor=replication_factor,
        config=dict(config or {}),
    )
    deadline = time.monotonic() + timeout
    while True:
        future = admin.create_topics([new], operation_timeout=timeout, request_timeout=timeout)[
            name
        ]
        try:
            future.result(timeout=timeout)
            break
        except KafkaException as exc:
            err: KafkaError = exc.args[0]
            if err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                existing = _partition_count(admin, name, timeout=5.0)
                if existing is not None and existing not in (0, partitions):
                    raise ValueError(
                        f"topic {name!r} already exists on {bootstrap} with {existing} "
                        f"partitions, wanted {partitions}"
                    ) from exc
                break
            if not err.retriable() or time.monotonic() >= deadline:
                raise RuntimeError(f"creating topic {name!r} on {bootstrap} failed: {err}") from exc
            time.sleep(0.2)
    wait_for_topic(bootstrap, name, partitions, timeout=max(1.0, deadline - time.monotonic()))


def delete_topic(bootstrap: str, name: str, timeout: float = 30.0) -> None:
    """Delete ``name`` if it exists and wait until it is gone from metadata."""
    admin = _admin(bootstrap)
    try:
        admin.delete_topics([name], operation_timeout=timeout, request_timeout=timeout)[
            name
        ].result(timeout=timeout)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise
    deadline = time.monotonic() + timeout
    while _partition_count(admin, name, timeout=5.0) is not None:
        if time.monotonic() >= deadline:
            raise TimeoutError(f"topic {name!r} still present on {bootstrap} after {timeout}s")
        time.sleep(0.1)
