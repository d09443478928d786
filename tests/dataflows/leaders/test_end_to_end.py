"""Broker -> dataflow (2 processes, then 1) -> Redis on the 30 Shanghai stocks, checked against
the oracle computed straight from the CSV."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from dataflows.leaders.specs import DEFAULT_SPECS
from services.replay.reader import iter_ticks
from tests.dataflows.leaders.compare import assert_same_leaders
from tests.dataflows.leaders.oracle import oracle_windows, split_late
from tests.dataflows.leaders.pipeline import (
    SSE_FILE,
    assert_window_in_history,
    dataflow_env,
    ends_of,
    figure_key,
    history_ends,
    history_window,
    publish_file,
    run_bounded,
    scored,
    with_db,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sse_topic(
    kafka_bootstrap: str, kafka_topic_factory: Callable[..., str]
) -> tuple[str, str, int]:
    topic = kafka_topic_factory("ticks", partitions=3)
    dlq = kafka_topic_factory("dlq", partitions=1)
    published = publish_file(kafka_bootstrap, topic, SSE_FILE, from_time="09:30")
    return topic, dlq, published


@pytest.fixture(scope="module")
def kafka_topic_factory(kafka_bootstrap: str) -> Callable[..., str]:
    import uuid

    from stockstream.embedded.topics import create_topic

    def make(prefix: str, partitions: int) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        create_topic(kafka_bootstrap, name, partitions)
        return name

    return make


@pytest.fixture(scope="module")
def sse_oracle() -> dict:
    ticks = list(iter_ticks(SSE_FILE, from_time="09:30"))
    accepted, late = split_late(ticks, lambda symbol: 0, 5_000)
    assert not late, "the file is in time order: nothing is late under any partitioning"
    return oracle_windows(accepted, DEFAULT_SPECS)


RUNS = [(2, 1, 1), (1, 1, 2), (1, 2, 7)]  # (processes, workers per process, Redis database)


@pytest.fixture(scope="module")
def runs(
    sse_topic: tuple[str, str, int],
    kafka_bootstrap: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[tuple[int, int, int], redis.Redis]:
    """The dataflow run once per configuration (whatever order the tests below run in)."""
    topic, dlq, _ = sse_topic
    clients = {}
    for processes, workers, db in RUNS:
        url = with_db(redis_url, db)
        client = redis.Redis.from_url(url)
        client.flushdb()
        run_bounded(
            dataflow_env(kafka_bootstrap, topic, dlq, url),
            processes,
            tmp_path_factory.mktemp(f"run-{processes}-{workers}"),
            workers=workers,
        )
        clients[(processes, workers, db)] = client
    return clients


@pytest.mark.parametrize(("processes", "workers", "db"), RUNS)
def test_every_window_matches_the_oracle(
    processes: int,
    workers: int,
    db: int,
    sse_topic: tuple[str, str, int],
    sse_oracle: dict,
    runs: dict[tuple[int, int, int], redis.Redis],
) -> None:
    _, _, published = sse_topic
    client = runs[(processes, workers, db)]

    assert published == sum(
        row.count
        for (spec, _), w in sse_oracle.items()
        if spec == "5m_max"
        for row in w.rows.values()
    )
    for spec in DEFAULT_SPECS:
        want_ends = ends_of(sse_oracle, spec.name)
        assert history_ends(client, spec.name) == want_ends, spec.name
        for end_ms in sorted(want_ends):
            assert_window_in_history(client, spec, sse_oracle[(spec.name, end_ms)], end_ms)
        last_end = max(want_ends)
        meta = client.hgetall(f"window:{spec.name}")
        assert int(meta[b"end"]) * 1000 == last_end
        latest = scored(client.zrevrange(f"leaders:{spec.name}", 0, -1, withscores=True))
        assert_same_leaders(
            spec.name,
            [(s.decode(), v) for s, v in latest],
            sse_oracle[(spec.name, last_end)],
            spec.score.value,
        )


def test_one_and_two_processes_write_the_same_windows(
    runs: dict[tuple[int, int, int], redis.Redis],
) -> None:
    """The runs with 1 process, 2 processes and 2 workers wrote exactly the same values."""
    one = runs[(1, 1, 2)]
    for key in ((2, 1, 1), (1, 2, 7)):
        other = runs[key]
        for spec in DEFAULT_SPECS:
            ends = history_ends(one, spec.name)
            assert ends and ends == history_ends(other, spec.name)
            for end_ms in ends:
                a = history_window(one, spec.name, figure_key(spec.name), end_ms)
                b = history_window(other, spec.name, figure_key(spec.name), end_ms)
                assert a == b, f"{key}: {spec.name}@{end_ms}"
