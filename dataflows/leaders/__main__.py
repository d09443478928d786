"""`python -m dataflows.leaders`: run one process of the leaders dataflow from its settings.

Starts the metrics server, wires in Bytewax recovery when `RECOVERY_DIR` is set (creating
the recovery partitions on first start), and joins the cluster given by `PROCESS_ID` and
`ADDRESSES`.
"""

from __future__ import annotations

import fcntl
import logging
from datetime import timedelta
from pathlib import Path

from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.run import cli_main
from prometheus_client import REGISTRY

from dataflows.leaders.flow import build_flow
from dataflows.leaders.settings import DataflowSettings
from stockstream.logs import configure_logging
from stockstream.metrics import serve_metrics

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


def main() -> None:
    settings = DataflowSettings()
    configure_logging("leaders", settings.log_level)
    serve_metrics(settings.metrics_port)
    recovery = prepare_recovery(settings)
    log.info("starting", extra={"process_id": settings.process_id, "bounded": settings.bounded,
                                "recovery": bool(recovery)})
    cli_main(
        build_flow(settings),
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
