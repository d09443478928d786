"""`stockstream-replay` / `python -m services.replay`: replay a market-data file to the
ticks topic, logging JSON and serving metrics on `METRICS_PORT`."""

from __future__ import annotations

import logging
import sys
import threading

from services.replay.producer import run_replay, stop_on_signals
from services.replay.reader import resolve_format
from services.replay.settings import ReplaySettings
from stockstream.cli import load_settings
from stockstream.logs import configure_logging
from stockstream.metrics import serve_metrics

log = logging.getLogger("services.replay")


def main() -> int:
    """Run one replay; exit status 0 when every published tick was acknowledged."""
    settings = load_settings(ReplaySettings, "stockstream replay", __doc__)
    configure_logging("replay", settings.log_level)
    serve_metrics(settings.metrics_port)
    stop = threading.Event()
    stop_on_signals(stop)
    log.info(
        "replay starting",
        extra={
            "file": str(settings.replay_file),
            "format": resolve_format(settings.replay_file, settings.replay_format).value,
            "topic": settings.ticks_topic,
            "speed": settings.replay_speed,
            "loop": settings.replay_loop,
            "limit": settings.replay_limit,
        },
    )
    result = run_replay(settings, stop)
    log.log(
        logging.INFO if result.ok else logging.ERROR,
        "replay finished",
        extra={
            "published": result.published,
            "delivered": result.delivered,
            "failed": result.failed,
            "undelivered": result.undelivered,
            "stopped": result.stopped,
        },
    )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
