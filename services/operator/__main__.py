"""`python -m services.operator`: the stockstream operator (kopf); two replicas, one active.

Leader election on a coordination.k8s.io Lease (`election.py`): a replica waits as a standby
until it holds the Lease, then runs kopf standalone (no kopf peering); it exits at once
when it loses the Lease (the pod restarts as a standby) and frees it on a clean shutdown.
"""

from __future__ import annotations

import logging
import threading

import kopf

from services.operator import handlers
from services.operator.election import Elector
from services.operator.kube import Kube, api_client
from services.operator.settings import OperatorSettings
from stockstream.cli import load_settings
from stockstream.logs import configure_logging
from stockstream.metrics import OPERATOR_LEADER, serve_metrics

log = logging.getLogger("services.operator")


class DropKopfObjects(logging.Filter):
    """kopf attaches its OperatorSettings object to per-resource log records; it is not
    JSON-serialisable, so it is dropped before the JSON formatter sees it (`k8s_ref`, the
    resource's identity, stays)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("settings", None)
        record.__dict__.pop("k8s_skip", None)
        return True


def main() -> None:
    settings = load_settings(OperatorSettings, "stockstream operator", __doc__)
    configure_logging("operator", settings.log_level)
    for handler in logging.getLogger().handlers:
        handler.addFilter(DropKopfObjects())
    api = api_client(settings.kubeconfig)
    elector = Elector(api, settings) if settings.leader_election else None
    guard = elector.guard if elector else (lambda: None)
    handlers.configure(Kube(api, guard=guard, instance=settings.identity), settings, guard=guard)
    serve_metrics(
        settings.metrics_port,
        ready=elector.healthy if elector else lambda: True,
        host=settings.listen_host,
    )
    stop = threading.Event()
    if elector:
        # kopf's liveness endpoint exists once kopf runs: a standby answers /healthz on the
        # same port (its election loop is alive), and hands the port over on acquisition.
        standby_health = serve_metrics(settings.health_port, host=settings.listen_host)
        elector.acquire()
        if standby_health:
            standby_health.shutdown()
            standby_health.server_close()
        threading.Thread(target=elector.keep, args=(stop,), name="lease", daemon=True).start()
    else:
        OPERATOR_LEADER.set(1)
    namespaces = settings.namespaces
    log.info(
        "starting",
        extra={
            "namespaces": namespaces or "cluster-wide",
            "interval_s": settings.reconcile_interval_s,
            "identity": settings.identity,
        },
    )
    try:
        kopf.run(
            standalone=True,  # exclusion is the Lease's, not kopf peering's (README: HA)
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=f"http://{settings.listen_host}:{settings.health_port}/healthz"
            if settings.health_port
            else None,
        )
    finally:
        stop.set()
        if elector:
            elector.release()


if __name__ == "__main__":
    main()
