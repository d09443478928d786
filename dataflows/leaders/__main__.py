"""`python -m dataflows.leaders`: run one process of the leaders dataflow from its settings.

Starts the metrics server, wires in Bytewax recovery when `RECOVERY_DIR` is set (creating
the recovery partitions on first start), and joins the cluster given by `PROCESS_ID` and
`ADDRESSES`.
"""

from __future__ import annotations

import fcntl
import gc
import logging
import time
from datetime import timedelta
from pathlib import Path

from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.run import cli_main
from prometheus_client import REGISTRY

from dataflows.leaders.flow import build_flow
from dataflows.leaders.health import HEALTH, HealthBounds, liveness, progress_age, readiness
from dataflows.leaders.settings import DataflowSettings
from stockstream.cli import load_settings
from stockstream.gc_pauses import observe_gc_pauses
from stockstream.logs import configure_logging
from stockstream.metrics import (
    DATAFLOW_PROGRESS_AGE,
    DATAFLOW_READY,
    serve_metrics,
)

log = logging.getLogger("dataflows.leaders")


def prepare_recovery(settings: DataflowSettings) -> RecoveryConfig | None:
    """The recovery config. Process 0 creates the partitions on first start (under a lock, in
    case the directory is shared); Bytewax finds them across the cluster, so the cluster can
    later resume with another number of processes."""
    if not settings.recovery_dir:
        return None
    directory = Path(settings.recovery_dir)
    directory.mkdir(parents=True, exist_ok=True)
    if settings.process_id in (None, 0):
        with open(directory / ".init.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not any(directory.glob("part-*.sqlite3")):
                init_db_dir(directory, settings.recovery_partitions)
                log.info("recovery partitions created", extra={"dir": str(directory)})
    return RecoveryConfig(str(directory), timedelta(seconds=settings.backup_interval_s))


def serve_probes(port: int, bounds: HealthBounds) -> None:
    """/metrics, and /readyz and /healthz answering from the process's `HEALTH` (with the
    reason in the body); the two gauges computed from it at each scrape."""

    def ready() -> tuple[bool, str]:
        return readiness(HEALTH.view(), time.monotonic(), bounds)

    def live() -> tuple[bool, str]:
        return liveness(HEALTH.view(), time.monotonic(), bounds)

    DATAFLOW_READY.set_function(lambda: float(ready()[0]))
    DATAFLOW_PROGRESS_AGE.set_function(lambda: progress_age(HEALTH.view(), time.monotonic()))
    serve_metrics(port, ready=ready, live=live)


def tune_gc() -> None:
    """Keep the cyclic garbage collector off the per-tick path.

    Every batch holds thousands of young objects (messages, ticks) alive at once, so with
    CPython's default gen-0 threshold (700 net allocations) the collector ran many times a
    batch, scanning them and promoting them to older generations, only for reference counting
    to free them right after: about 10 % of a process's CPU (py-spy, 1M ticks, 1 process). The
    objects that live from start-up on (modules, classes, the dataflow) are frozen out of every
    collection, and collections run after more allocations. Cycles are still collected; the
    pipeline creates few.

    The threshold counts objects allocated and not yet freed, so ticks, freed within their
    batch, hardly move it: what does is a window end, whose rows (one `Figures` per symbol and
    window, about 32,000 at 10,000 symbols) live from the close to the Redis write. At 50,000
    a collection ran at nearly every end at 10,000 symbols, each pausing the close for 10-75
    ms (`stockstream_gc_pause_seconds`, 120-s run); 200,000 keeps the ends of 10,000 symbols
    clear of it."""
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)


GC_GEN0_THRESHOLD = 200_000


def main() -> None:
    settings = load_settings(DataflowSettings, "stockstream leaders", __doc__)
    configure_logging("leaders", settings.log_level)
    serve_probes(settings.metrics_port, settings.health_bounds)
    recovery = prepare_recovery(settings)
    flow = build_flow(settings)
    tune_gc()
    observe_gc_pauses()
    log.info(
        "starting",
        extra={
            "process_id": settings.process_id,
            "bounded": settings.bounded,
            "recovery": bool(recovery),
        },
    )
    cli_main(
        flow,
        workers_per_process=settings.workers_per_process,
        process_id=settings.process_id,
        addresses=settings.addresses.split(";") if settings.addresses else None,
        epoch_interval=timedelta(seconds=settings.snapshot_interval_s),
        recovery_config=recovery,
    )
    decoded = REGISTRY.get_sample_value("stockstream_ticks_decoded_total") or 0
    log.info("stopped", extra={"process_id": settings.process_id, "ticks_decoded": int(decoded)})


if __name__ == "__main__":
    main()
