"""The ingest service against a real Kafka broker: every provider's ticks arrive keyed by
symbol, in per-symbol order, as the tick contract; a broker outage loses no tick the
provider loop handed over; SIGTERM to `python -m services.ingest` loses nothing in flight;
outside the session nothing is asked of the provider; re-sharding without a restart."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypedDict, Unpack

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition
from websockets.asyncio.server import ServerConnection, serve

from services.ingest.providers.base import ErrorCounts, Provider
from services.ingest.providers.finnhub_quote import FinnhubQuoteProvider
from services.ingest.providers.finnhub_trades import FinnhubTradesProvider
from services.ingest.providers.replay import ReplayProvider
from services.ingest.providers.simulate import SimulateProvider
from services.ingest.publisher import Publisher, encode_stamped
from services.ingest.runner import Runner
from services.ingest.schedule import AlwaysOpen, SessionState
from services.ingest.sharding import shard_of
from services.replay.settings import REPO_ROOT
from stockstream.embedded.kafka_broker import KafkaBroker
from stockstream.embedded.topics import create_topic
from stockstream.ticks import Tick, decode, encode
from tests.kafka_support import read_topic
from tests.services.ingest.fake_finnhub import (
    TOKEN,
    QuoteScript,
    quote,
    quote_server,
    trade,
    trades,
)
from tests.services.replay.samples import SSE_FILE

pytestmark = pytest.mark.integration
TopicFactory = Callable[..., str]


class Recording:
    """A provider wrapper remembering every tick it handed to the runner."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name = inner.name
        self.errors: ErrorCounts = inner.errors
        self.handed: list[Tick] = []
        self.calls: list[list[str]] = []

    async def ticks(self, symbols: Sequence[str]) -> AsyncIterator[list[Tick]]:
        self.calls.append(list(symbols))
        async for batch in self.inner.ticks(symbols):
            self.handed.extend(batch)
            yield batch


def consume(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0) -> list[Tick]:
    """Every tick of `topic` (decoded, key checked), waiting for `expected` of them."""
    ticks = []
    for message in read_topic(bootstrap, topic, expected, timeout_s):
        tick = decode(message.key(), message.value())
        assert isinstance(tick, Tick), tick
        ticks.append(tick)
    return ticks


def by_symbol(ticks: Sequence[Tick]) -> dict[str, list[tuple[float, int, float | None, str]]]:
    """Per-symbol sequences (without ingest_ts): what must arrive, in this order."""
    out: dict[str, list[tuple[float, int, float | None, str]]] = defaultdict(list)
    for tick in ticks:
        out[tick.symbol].append((tick.price, tick.ts_ms, tick.size, tick.source))
    return dict(out)


def topic_size(bootstrap: str, topic: str) -> int:
    """Messages the topic holds now (the sum of its partitions' high watermarks)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "ingest-test-probe"})
    try:
        metadata = consumer.list_topics(topic, timeout=30).topics[topic]
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in metadata.partitions
        )
    finally:
        consumer.close()


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
    """Poll `condition` until true; fail after a generous deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def run_for(runner: Runner, seconds: float, during: Callable[[], None] | None = None) -> None:
    """Run the runner for `seconds` (calling `during` in a thread meanwhile), then stop."""

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        if during is not None:
            await asyncio.to_thread(during)
        else:
            await asyncio.sleep(seconds)
        stop.set()
        await asyncio.wait_for(task, 30)

    asyncio.run(main())


class Limits(TypedDict, total=False):
    buffer_max: int
    inflight_max: int


def publisher_for(bootstrap: str, topic: str, **limits: Unpack[Limits]) -> Publisher:
    return Publisher(bootstrap, topic, provider="test", **limits).start()


async def _ws_session(ws: ServerConnection) -> None:
    symbols = [orjson.loads(await ws.recv())["symbol"] for _ in range(3)]
    t0 = int(time.time() * 1000) - 10_000
    for i in range(40):
        items = [trade(s, 100.0 + i + j, t0 + i * 10 + j) for j, s in enumerate(symbols)]
        await ws.send(trades(*items))
        await ws.send('{"type":"ping"}')
    await ws.wait_closed()


def _quote_script() -> QuoteScript:
    t0 = int(time.time()) - 100
    return QuoteScript(
        {
            s: [quote(10.0 + i + k, t0 + i) for i in range(30)]
            for k, s in enumerate(["AAPL", "MSFT", "IBM"])
        }
    )


@pytest.mark.parametrize("kind", ["replay", "simulate", "finnhub_quote", "finnhub_trades"])
def test_each_provider_arrives_in_order_with_the_contract(
    kind: str, kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = kafka_topic_factory(f"ingest-{kind.replace('_', '-')}", partitions=4)
    universe = ["AAPL", "MSFT", "IBM"]
    server_port: list[int] = []

    def build() -> Provider:
        if kind == "replay":
            return ReplayProvider(SSE_FILE, speed=0, loop=False)
        if kind == "simulate":
            return SimulateProvider(rate=2000, seed=4)
        if kind == "finnhub_quote":
            return FinnhubQuoteProvider(base_url=quote_url, api_key=TOKEN, interval_s=0.2)
        return FinnhubTradesProvider(url=f"ws://127.0.0.1:{server_port[0]}", api_key=TOKEN)

    if kind == "replay":
        universe = ["600566", "603369", "600258", "688218"]
    with quote_server(_quote_script()) as quote_url:

        async def with_ws(seconds: float) -> Recording:
            async with serve(_ws_session, "127.0.0.1", 0) as server:
                server_port.append(server.sockets[0].getsockname()[1])
                provider = Recording(build())
                runner = Runner(provider, publisher, AlwaysOpen(), universe, index=0, count=1)
                stop = asyncio.Event()
                task = asyncio.create_task(runner.run(stop))
                await asyncio.sleep(seconds)
                stop.set()
                await task
                return provider

        publisher = publisher_for(kafka_bootstrap, topic)
        if kind == "finnhub_trades":
            provider = asyncio.run(with_ws(3.0))
        else:
            provider = Recording(build())
            runner = Runner(provider, publisher, AlwaysOpen(), universe, index=0, count=1)
            if kind == "replay":  # a finite provider: the runner returns at its end
                asyncio.run(asyncio.wait_for(runner.run(asyncio.Event()), 60))
                assert runner.finished
            else:
                run_for(runner, 3.0)
    assert publisher.close(30) == 0
    handed = provider.handed
    assert (
        len(handed)
        >= {"replay": 4000, "simulate": 4000, "finnhub_quote": 30, "finnhub_trades": 120}[kind]
    )
    assert publisher.stats.delivered == publisher.submitted == len(handed)
    assert publisher.dropped == 0 and publisher.stats.failed == 0
    received = consume(kafka_bootstrap, topic, len(handed))
    assert len(received) == len(handed)
    assert by_symbol(received) == by_symbol(handed)
    for symbol, sequence in by_symbol(received).items():
        times = [ts for _, ts, _, _ in sequence]
        assert times == sorted(times), symbol
    assert {t.symbol for t in received} <= set(universe)
    assert all(t.ingest_ts_ms is not None for t in received)


def test_encode_stamped_is_the_contract_encoding() -> None:
    ticks = [
        Tick("AAPL", 261.74, 1_732_899_990_123, 100.0, "finnhub:trade"),
        Tick("600566", 31.5, 1_638_322_200_000, None, "replay:sse-snapshots"),
        Tick("X", 1e-4, 5, 0.0, ""),
    ]
    for tick in ticks:
        at = 1_795_000_000_001
        stamped = Tick(tick.symbol, tick.price, tick.ts_ms, tick.size, tick.source, at)
        assert encode_stamped(tick, at) == encode(stamped)


def test_broker_outage_loses_no_handed_tick(
    private_kafka_broker: KafkaBroker,
) -> None:
    broker = private_kafka_broker
    topic = f"ingest-outage-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, 3)
    provider = Recording(SimulateProvider(rate=500, seed=9))
    publisher = publisher_for(broker.bootstrap, topic)
    runner = Runner(
        provider, publisher, AlwaysOpen(), ["AAPL", "MSFT", "IBM", "GOOG"], index=0, count=1
    )
    seen: dict[str, int] = {}

    def outage() -> None:
        wait_until(lambda: len(provider.handed) > 500, "ticks before the outage")
        broker.stop()
        seen["at_stop"] = len(provider.handed)
        # Conditions, not wall time: a loaded machine runs the provider loop slowly.
        wait_until(lambda: len(provider.handed) - seen["at_stop"] > 1000, "ticks during it")
        seen["during"] = len(provider.handed) - seen["at_stop"]
        seen["ready_during"] = int(runner.ready())
        broker.start()
        at_start = len(provider.handed)
        wait_until(lambda: len(provider.handed) > at_start + 500, "ticks after the outage")

    run_for(runner, 0, outage)
    assert publisher.close(60) == 0
    assert seen["during"] > 1000  # the provider loop kept going while the broker was down
    assert publisher.dropped == 0 and publisher.stats.failed == 0
    handed = provider.handed
    received = consume(broker.bootstrap, topic, len(handed))
    assert len(received) == len(handed)  # nothing lost, nothing duplicated (idempotence)
    assert by_symbol(received) == by_symbol(handed)


def test_full_buffer_drops_the_oldest_and_counts_them(
    private_kafka_broker: KafkaBroker,
) -> None:
    broker = private_kafka_broker
    topic = f"ingest-drop-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, 1)
    broker.stop()
    publisher = publisher_for(broker.bootstrap, topic, buffer_max=100, inflight_max=50)
    ticks = [Tick("AAPL", 100.0 + i, 1_700_000_000_000 + i, 1.0, "test") for i in range(1000)]
    for start in range(0, 1000, 10):
        publisher.submit(ticks[start : start + 10], 1_700_000_000_000)
        time.sleep(0.002)
    assert publisher.submitted == 1000
    assert publisher.dropped >= 1000 - 100 - 50
    broker.start()
    assert publisher.close(60) == 0
    received = consume(broker.bootstrap, topic, 1000 - publisher.dropped)
    assert len(received) == 1000 - publisher.dropped == publisher.stats.delivered
    prices = [t.price for t in received]
    assert prices == sorted(prices)  # order kept
    assert prices[-100:] == [t.price for t in ticks[-100:]]  # the newest survive


class Closed:
    """A market that is closed until `opens`."""

    name = "test"

    def __init__(self, opens: datetime) -> None:
        self.opens = opens

    def state(self, now: datetime) -> SessionState:
        if now >= self.opens:
            return SessionState(True, now + timedelta(days=1))
        return SessionState(False, self.opens)


def test_idle_outside_the_session_then_starts(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = kafka_topic_factory("ingest-session", partitions=1)
    provider = Recording(SimulateProvider(rate=200))
    publisher = publisher_for(kafka_bootstrap, topic)
    opens = datetime.now(UTC) + timedelta(seconds=3)
    runner = Runner(provider, publisher, Closed(opens), ["AAPL"], index=0, count=1)
    states: list[tuple[bool, bool, int]] = []
    sampled_at: list[datetime] = []

    def watch() -> None:
        time.sleep(0.7)
        states.append((runner.session_open, runner.ready(), len(provider.calls)))
        sampled_at.append(datetime.now(UTC))
        wait_until(lambda: runner.session_open and len(provider.calls) == 1, "session start")
        wait_until(lambda: len(provider.handed) > 0, "first ticks")
        states.append((runner.session_open, runner.ready(), len(provider.calls)))

    run_for(runner, 0, watch)
    # idle: not ready, provider never asked (a loaded machine may sample after the opening)
    assert sampled_at[0] >= opens or states[0] == (False, False, 0)
    assert states[1] == (True, True, 1)
    assert publisher.close(30) == 0
    assert publisher.stats.delivered == len(provider.handed) > 0
    assert min(t.ts_ms for t in provider.handed) >= int(opens.timestamp() * 1000) - 200


def test_resharding_without_restart(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = kafka_topic_factory("ingest-reshard", partitions=2)
    universe = [f"S{i:03d}" for i in range(60)]
    provider = Recording(SimulateProvider(rate=600))
    publisher = publisher_for(kafka_bootstrap, topic)
    runner = Runner(provider, publisher, AlwaysOpen(), universe, index=1, count=None)

    def scale() -> None:
        # Each change is applied before the next one (conditions, not wall time).
        time.sleep(0.5)
        runner.set_count(2)  # membership known: shard 1 of 2
        wait_until(lambda: len(provider.calls) == 1, "shard 1 of 2 started")
        runner.set_count(3)  # scaled up: shard 1 of 3
        wait_until(lambda: len(provider.calls) == 2, "shard 1 of 3 started")
        runner.set_count(1)  # scaled down to one pod: index 1 owns nothing
        wait_until(lambda: runner.symbols == [], "shard 1 of 1 owns nothing")

    run_for(runner, 0, scale)
    assert provider.calls == [shard_of(universe, 2, 1), shard_of(universe, 3, 1)]
    assert set(provider.calls[1]) < set(provider.calls[0])  # only moves to the new pod
    assert runner.symbols == []
    assert publisher.close(30) == 0


def test_sigterm_flushes_everything_in_flight(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = kafka_topic_factory("ingest-sigterm", partitions=3)
    env = {
        **os.environ,
        "PROVIDER": "simulate",
        "SIMULATE_RATE": "3000",
        "SIMULATE_SYMBOLS": "50",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TICKS_TOPIC": topic,
        "METRICS_PORT": "0",
        "MEMBERSHIP": "static",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.ingest"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    # Publishing for sure before the signal (a loaded machine can take longer than any fixed
    # wait to import and connect): the topic already holds ticks, more are in flight.
    wait_until(lambda: any("ingest state" in line for line in lines), "the ingest state line")
    wait_until(lambda: topic_size(kafka_bootstrap, topic) > 0, "the first ticks in the topic")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    reader.join(5)
    summary = next(json.loads(line) for line in lines if "ingest finished" in line)["stockstream"]
    assert summary["submitted"] > 0
    assert summary["submitted"] == summary["delivered"]
    assert (summary["dropped"], summary["failed"], summary["undelivered"]) == (0, 0, 0)
    received = consume(kafka_bootstrap, topic, summary["submitted"])
    assert len(received) == summary["submitted"]
    for symbol, sequence in by_symbol(received).items():
        times = [ts for _, ts, _, _ in sequence]
        assert times == sorted(times), symbol
