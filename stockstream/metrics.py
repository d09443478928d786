"""Prometheus metrics of every component, and the small HTTP server that exposes them.

All metric objects live here so that names stay consistent with the alert rules and
dashboards in `observability/`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from stockstream.ticks import Reason

log = logging.getLogger(__name__)

# Dataflow
TICKS_DECODED = Counter("stockstream_ticks_decoded", "Messages decoded into valid ticks.")
TICKS_REJECTED = Counter(
    "stockstream_ticks_rejected", "Messages rejected to the dead-letter topic.", ["reason"]
)
# Every reason is exported from the start at 0: a labelled counter has no series until its
# first increment, so rate() over it, the reject-ratio panel and alert, would have no data
# on a healthy pipeline (seen on the live Prometheus of tests/observability/alerting).
for _reason in Reason:
    TICKS_REJECTED.labels(_reason.value)
DLQ_PUBLISHED = Counter("stockstream_dlq_published", "Records written to the dead-letter topic.")
WINDOWS_CLOSED = Counter(
    "stockstream_windows_closed", "Per-partition windows closed by the watermark.", ["window"]
)
LEADERBOARD_WRITES = Counter(
    "stockstream_leaderboard_writes", "Whole windows written to Redis.", ["window"]
)
TICKS_HELD = Gauge(
    "stockstream_ticks_held",
    "Ticks far ahead of their replay partition's time, held until later ticks confirm the jump.",
    ["partition"],
)
WINDOWS_NOT_LATEST_FUTURE = Counter(
    "stockstream_windows_not_latest_future",
    "Windows kept out of the latest keys because their end was too far ahead of the clock.",
    ["window"],
)
WINDOWS_CORRECTED = Counter(
    "stockstream_windows_corrected",
    "Windows ranked again (and rewritten, history included) with the share of a partition "
    "that was still empty when they were ranked (dataflows/leaders/ranking.py).",
    ["window"],
)
WINDOW_PARTS_TOO_LATE = Counter(
    "stockstream_window_parts_too_late",
    "A partition's shares of windows ranked too long ago to be merged: not written, logged.",
    ["window"],
)
KAFKA_CONSUMER_ERRORS = Counter(
    "stockstream_kafka_consumer_errors",
    "Errors the dataflow's Kafka consumers reported (broker down, transport), by code; "
    "librdkafka reconnects on its own.",
    ["code"],
)
PARTITIONS_RESUMED = Counter(
    "stockstream_partitions_resumed",
    "Source partitions this process resumed from a recovery snapshot (a restart).",
)
DATAFLOW_READY = Gauge(
    "stockstream_dataflow_ready",
    "1 while the process answers /readyz 200 (partitions restored and polled, broker "
    "reachable), else 0 (dataflows/leaders/health.py).",
)
DATAFLOW_PROGRESS_AGE = Gauge(
    "stockstream_dataflow_progress_age_seconds",
    "Seconds since the dataflow loop last advanced; /healthz fails past LIVENESS_STALL_S.",
)
REDIS_ERRORS = Counter("stockstream_redis_errors", "Failed Redis writes (each is retried).")
WATERMARK_LAG = Gauge(
    "stockstream_watermark_lag_seconds",
    "Wall clock minus the partition's watermark.",
    ["partition"],
)
WINDOW_EMIT_LATENCY = Histogram(
    "stockstream_window_emit_latency_seconds",
    "Wall time from the watermark passing a window's end to the window being in Redis.",
    # A bound below each of issue 11's targets (50 ms; 250 ms at 10,000 symbols): a p99 in the
    # target's own bucket cannot tell it from the target.
    buckets=(
        0.005,
        0.01,
        0.02,
        0.03,
        0.04,
        0.05,
        0.075,
        0.1,
        0.15,
        0.2,
        0.25,
        0.5,
        1.0,
        2.5,
        5.0,
        10.0,
    ),
)
WINDOW_PHASE = Histogram(
    "stockstream_window_phase_seconds",
    "Where a window's time goes: `close` (one partition closing the windows of an end), "
    "`to_sink` (from the last partition's close starting to the sink receiving the window), "
    "`redis_windows` (one end's leaderboard scripts, their documents included: then the "
    "leaderboards are visible) and `redis_figures_history` (the figure hashes and history "
    "sets of the end's latest windows, after that).",
    ["phase"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5),
)
GC_PAUSE = Histogram(
    "stockstream_gc_pause_seconds",
    "How long each cyclic garbage collection stopped the process, by generation.",
    ["generation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0),
)

# Producers
REPLAY_TICKS_PUBLISHED = Counter(
    "stockstream_replay_ticks_published", "Ticks the replay producer handed to the broker."
)
REPLAY_TICKS_SKIPPED = Counter(
    "stockstream_replay_ticks_skipped",
    "Ticks a resumed replay did not send again: the topic already held them.",
)
PRODUCER_DELIVERY_ERRORS = Counter(
    "stockstream_producer_delivery_errors", "Messages the broker did not acknowledge."
)


# A probe's check: True/False, or (ok, reason) to say why in the body (dataflows/leaders/health).
Check = Callable[[], "bool | tuple[bool, str]"]


def _always() -> bool:
    return True


def probe_answer(
    result: bool | tuple[bool, str], ok_body: str, failed_body: str
) -> tuple[int, bytes]:
    """The status and body of a probe: 200 or 503, the check's reason when it gives one."""
    ok, reason = result if isinstance(result, tuple) else (result, "")
    body = reason or (ok_body if ok else failed_body)
    return (200 if ok else 503), f"{body}\n".encode()


class _Handler(BaseHTTPRequestHandler):
    ready: Check = staticmethod(_always)
    live: Check = staticmethod(_always)

    def do_GET(self) -> None:  # name fixed by BaseHTTPRequestHandler
        if self.path.startswith("/metrics"):
            self._reply(200, generate_latest(), CONTENT_TYPE_LATEST)
        elif self.path == "/healthz":
            self._reply(*probe_answer(self.live(), "ok", "not live"), "text/plain")
        elif self.path == "/readyz":
            self._reply(*probe_answer(self.ready(), "ready", "not ready"), "text/plain")
        else:
            self._reply(404, b"not found\n", "text/plain")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        return


def serve_metrics(
    port: int,
    ready: Check = _always,
    host: str = "0.0.0.0",  # noqa: S104
    live: Check = _always,
) -> ThreadingHTTPServer | None:
    """Serve /metrics, /healthz (`live`) and /readyz (`ready`) on `host`:`port` in a daemon
    thread (0 disables); every interface by default (scraped in-cluster). Each check answers
    200 or 503, with its reason as the body when it returns (ok, reason)."""
    if port == 0:
        return None
    handler = type(
        "Handler", (_Handler,), {"ready": staticmethod(ready), "live": staticmethod(live)}
    )
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        log.warning("metrics server not started on port %d: %s", port, exc)
        return None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


# Ingest (services.ingest)
INGEST_TICKS_RECEIVED = Counter(
    "stockstream_ingest_ticks_received",
    "Ticks a provider handed to the publisher's buffer.",
    ["provider"],
)
INGEST_TICKS_PUBLISHED = Counter(
    "stockstream_ingest_ticks_published", "Ticks the broker acknowledged.", ["provider"]
)
INGEST_DELIVERY_ERRORS = Counter(
    "stockstream_ingest_delivery_errors",
    "Ticks the broker finally did not acknowledge (after librdkafka's retries).",
    ["provider"],
)
INGEST_BUFFER_DEPTH = Gauge(
    "stockstream_ingest_buffer_depth",
    "Ticks not yet acknowledged: waiting in the local buffer plus in flight in librdkafka.",
)
INGEST_BUFFER_DROPPED = Counter(
    "stockstream_ingest_buffer_dropped",
    "Oldest buffered ticks dropped because the local buffer was full (broker outage).",
    ["provider"],
)
INGEST_PROVIDER_ERRORS = Counter(
    "stockstream_ingest_provider_errors",
    "Unusable provider answers and failures, never published, by kind.",
    ["provider", "kind"],
)
INGEST_POLL_DURATION = Histogram(
    "stockstream_ingest_poll_duration_seconds",
    "Wall time of one poll round over all of the pod's symbols.",
    ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0),
)
INGEST_POLL_SKIPPED = Counter(
    "stockstream_ingest_poll_skipped",
    "Poll beats skipped, by reason (overrun: the previous poll ran past them; "
    "rate_limited: a 429's Retry-After covered them).",
    ["provider", "reason"],
)
INGEST_DISCONNECTS = Counter(
    "stockstream_ingest_disconnects",
    "Streaming connections lost or failed, by reason.",
    ["provider", "reason"],
)
INGEST_SESSION_OPEN = Gauge(
    "stockstream_ingest_session_open",
    "1 while the configured exchange is in session (always 1 for 24/7), else 0 (idle).",
)
INGEST_SHARD_COUNT = Gauge("stockstream_ingest_shard_count", "Pods sharing the symbol universe.")
INGEST_SHARD_INDEX = Gauge("stockstream_ingest_shard_index", "This pod's ordinal (shard).")
INGEST_SHARD_SYMBOLS = Gauge("stockstream_ingest_shard_symbols", "Symbols this pod currently owns.")
INGEST_RESHARDS = Counter(
    "stockstream_ingest_reshards", "Shard count changes applied without a restart."
)


def export_ingest_provider(provider: str) -> None:
    """Export the ingest loss counters of `provider` at 0 before any loss, so the "Ticks lost"
    panel shows 0 rather than no data."""
    INGEST_BUFFER_DROPPED.labels(provider)
    INGEST_DELIVERY_ERRORS.labels(provider)


# Operator (services.operator). The per-StockStream series (labels `namespace`, `name`)
# exist from when the active replica starts reconciling the StockStream (counters at 0) until
# it is deleted (services/operator/handlers.py); a standby exports none of them.
OPERATOR_RECONCILES = Counter(
    "stockstream_operator_reconciles",
    "Reconcile passes of each StockStream, by result (ok: the pass finished; error: it raised "
    "and the next pass retries).",
    ["namespace", "name", "result"],
)
OPERATOR_WRITES = Counter(
    "stockstream_operator_writes",
    "Writes the operator made to the API server, by kind.",
    ["kind"],
)
OPERATOR_LIFECYCLE = Gauge(
    "stockstream_operator_lifecycle",
    "1 for the lifecycle state each StockStream is in.",
    ["namespace", "name", "lifecycle"],
)
OPERATOR_ROLLBACKS = Counter(
    "stockstream_operator_rollbacks",
    "Automatic rollbacks to the last stable spec (services/operator/rollback.py).",
    ["namespace", "name"],
)
OPERATOR_LEADER = Gauge(
    "stockstream_operator_leader",
    "1 while this operator replica holds the Lease and runs the handlers; 0 on a standby.",
)
OPERATOR_RECONCILE_DURATION = Histogram(
    "stockstream_operator_reconcile_duration_seconds",
    "Wall time of one reconcile pass of a StockStream (API reads and writes, the broker's "
    "topic check, the leaderboards' freshness in Redis), failed passes included.",
    ["namespace", "name"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
OPERATOR_LIFECYCLE_SINCE = Gauge(
    "stockstream_operator_lifecycle_since_timestamp_seconds",
    "Unix time at which each StockStream entered its current lifecycle state (after an "
    "operator restart: when it started progressing for Deploying/Rescaling/Upgrading, from "
    "the Progressing condition; the restart for the other states).",
    ["namespace", "name"],
)
