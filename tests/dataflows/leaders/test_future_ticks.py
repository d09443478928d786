"""Far-future event times on the real Shanghai session: a tick a year ahead (a replay's jump,
refuted by the ticks after it) and one in 2100 (ahead of the wall clock) go to the dead-letter
topic with reason `future` and change no window; a real day boundary in a replay (the same
session again one day later) is held until confirmed, then windowed, and nothing is rejected."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from bytewax.testing import run_main
from prometheus_client import REGISTRY

from dataflows.leaders.flow import build_flow
from dataflows.leaders.settings import DataflowSettings
from dataflows.leaders.specs import DEFAULT_SPECS
from services.replay.reader import iter_ticks
from stockstream.ticks import Tick, encode
from tests.dataflows.leaders.oracle import oracle_windows
from tests.dataflows.leaders.pipeline import (
    SSE_FILE,
    assert_history_matches,
    dataflow_env,
    produce,
    run_bounded,
    with_db,
)
from tests.kafka_support import read_topic

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
YEAR_2100_MS = 4_102_444_800_000


def session_slice() -> list[Tick]:
    """09:30 to 09:50 (UTC+8) of the 30 Shanghai stocks: ~12 000 real ticks in time order."""
    ticks = list(iter_ticks(SSE_FILE, from_time="09:30"))
    start = ticks[0].ts_ms
    return [tick for tick in ticks if tick.ts_ms < start + 20 * 60_000]


def rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("stockstream_ticks_rejected_total", {"reason": reason}) or 0.0


def test_far_future_ticks_mid_session_change_no_window(
    kafka_bootstrap: str, kafka_topic_factory: Callable[..., str], redis_url: str
) -> None:
    real = session_slice()
    middle = len(real) // 2
    at = real[middle]
    year_ahead = Tick(at.symbol, at.price * 3, at.ts_ms + 365 * DAY_MS, 100.0, "skewed")
    beyond_clock = Tick(real[middle + 900].symbol, 1.0, YEAR_2100_MS, None, "skewed")
    feed = [
        *real[:middle],
        year_ahead,
        *real[middle : middle + 900],
        beyond_clock,
        *real[middle + 900 :],
    ]
    topic = kafka_topic_factory("ticks", partitions=3)
    dlq = kafka_topic_factory("dlq", partitions=1)
    produce(kafka_bootstrap, topic, feed)
    url = with_db(redis_url, 11)
    client = redis.Redis.from_url(url)
    client.flushdb()
    before = rejected("future")

    run_main(
        build_flow(
            DataflowSettings(
                kafka_bootstrap_servers=kafka_bootstrap,
                ticks_topic=topic,
                dlq_topic=dlq,
                redis_url=url,
                bounded=True,
                metrics_port=0,
            )
        )
    )

    assert_history_matches(client, oracle_windows(real, DEFAULT_SPECS), DEFAULT_SPECS)
    letters = read_topic(kafka_bootstrap, dlq, expected=2, timeout_s=60, settle_s=2)
    assert sorted((m.key(), m.value()) for m in letters) == sorted(
        [encode(year_ahead), encode(beyond_clock)]
    )
    assert {dict(m.headers() or [])["reason"] for m in letters} == {b"future"}
    assert rejected("future") - before == 2


def test_a_real_day_boundary_in_a_replay_is_not_rejected(
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
    redis_url: str,
    tmp_path: Path,
) -> None:
    day_one = session_slice()
    day_two = [Tick(t.symbol, t.price, t.ts_ms + DAY_MS, t.size, t.source) for t in day_one]
    topic = kafka_topic_factory("ticks", partitions=3)
    dlq = kafka_topic_factory("dlq", partitions=1)
    produce(kafka_bootstrap, topic, [*day_one, *day_two])
    url = with_db(redis_url, 12)
    client = redis.Redis.from_url(url)
    client.flushdb()

    run_bounded(dataflow_env(kafka_bootstrap, topic, dlq, url), 2, tmp_path)

    assert_history_matches(
        client, oracle_windows([*day_one, *day_two], DEFAULT_SPECS), DEFAULT_SPECS
    )
    assert read_topic(kafka_bootstrap, dlq, expected=0, timeout_s=10, settle_s=3) == []
