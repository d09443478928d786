"""`python -m services.ingest`: run one ingest pod (see services/ingest/README.md).

Exits 0 after SIGTERM/SIGINT (or a finite provider's end) when every tick handed to the
publisher was acknowledged by the broker, 1 otherwise."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from services.ingest.membership import (
    StatefulSetWatcher,
    in_cluster,
    ordinal_from_name,
    pod_namespace,
)
from services.ingest.providers import make_provider
from services.ingest.publisher import Publisher
from services.ingest.runner import Runner
from services.ingest.schedule import market_hours
from services.ingest.settings import IngestSettings, Membership, ProviderName
from services.ingest.universe import load_universe, simulated_universe
from services.replay.reader import iter_ticks
from stockstream.cli import load_settings
from stockstream.logs import configure_logging
from stockstream.metrics import serve_metrics

log = logging.getLogger("services.ingest")


def resolve_universe(settings: IngestSettings) -> list[str]:
    """SYMBOLS / SYMBOLS_FILE; else every symbol of the replay file, or SIM0000... to
    simulate. The live providers need an explicit universe."""
    universe = load_universe(settings.symbols, settings.symbols_file)
    if universe is not None:
        return universe
    if settings.provider is ProviderName.REPLAY:
        ticks = iter_ticks(settings.replay_file, settings.replay_format)
        return list(dict.fromkeys(tick.symbol for tick in ticks))
    if settings.provider is ProviderName.SIMULATE:
        return simulated_universe(settings.simulate_symbols)
    raise ValueError(f"PROVIDER={settings.provider.value} needs SYMBOLS or SYMBOLS_FILE")


def use_kubernetes(settings: IngestSettings) -> bool:
    """Whether membership follows the StatefulSet through the Kubernetes API."""
    if settings.membership is Membership.AUTO:
        return in_cluster() and bool(settings.statefulset_name)
    return settings.membership is Membership.KUBERNETES


async def serve(runner: Runner) -> None:
    """Run until SIGTERM/SIGINT or the provider's end."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runner.run(stop)


def main() -> int:
    """Configure, run, flush, report."""
    settings = load_settings(IngestSettings, "stockstream ingest", __doc__)
    configure_logging("ingest", settings.log_level)
    universe = resolve_universe(settings)
    provider = make_provider(settings)
    watcher: StatefulSetWatcher | None = None
    if use_kubernetes(settings):
        if not settings.pod_name or not settings.statefulset_name:
            raise ValueError("kubernetes membership needs POD_NAME and STATEFULSET_NAME")
        index, count = ordinal_from_name(settings.pod_name), None
    else:
        index, count = settings.shard_index, settings.shard_count
    publisher = Publisher(
        settings.kafka_bootstrap_servers,
        settings.ticks_topic,
        provider=provider.name,
        buffer_max=settings.buffer_max_ticks,
        inflight_max=settings.producer_inflight_max,
        delivery_timeout_ms=settings.delivery_timeout_ms,
        extra=settings.kafka_extra_config,
    ).start()
    runner = Runner(
        provider,
        publisher,
        market_hours(settings.exchange),
        universe,
        index=index,
        count=count,
        idle_ready=settings.idle_ready,
    )
    if use_kubernetes(settings):
        assert settings.statefulset_name is not None
        watcher = StatefulSetWatcher(
            settings.statefulset_name, pod_namespace(settings.namespace), runner.set_count
        )
        watcher.start()
    serve_metrics(settings.metrics_port, ready=runner.ready)
    log.info(
        "ingest starting",
        extra={
            "provider": provider.name,
            "topic": settings.ticks_topic,
            "exchange": settings.exchange,
            "universe": len(universe),
            "shard_index": index,
            "shard_count": count,
        },
    )
    try:
        asyncio.run(serve(runner))
    finally:
        if watcher is not None:
            watcher.stop()
        undelivered = publisher.close(settings.flush_timeout_s)
    stats = publisher.stats
    ok = undelivered == 0 and stats.failed == 0
    log.log(
        logging.INFO if ok else logging.ERROR,
        "ingest finished",
        extra={
            "submitted": publisher.submitted,
            "delivered": stats.delivered,
            "failed": stats.failed,
            "dropped": publisher.dropped,
            "undelivered": undelivered,
            "provider_errors": dict(provider.errors.by_kind),
        },
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
