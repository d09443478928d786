"""`python -m services.operator`: the stockstream operator (kopf), one replica.

One replica on purpose: reconciliation is level-based and idempotent, so a restarted pod
resumes where the last one stopped; kopf peering (for several replicas) would need its own
cluster-wide CRD and only adds a standby.
"""

from __future__ import annotations

import logging

import kopf

from services.operator import handlers
from services.operator.kube import Kube, api_client
from services.operator.settings import OperatorSettings
from stockstream.cli import load_settings
from stockstream.logs import configure_logging
from stockstream.metrics import serve_metrics

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
    handlers.configure(Kube(api_client(settings.kubeconfig)), settings)
    serve_metrics(settings.metrics_port, host=settings.listen_host)
    namespaces = settings.namespaces
    log.info("starting", extra={"namespaces": namespaces or "cluster-wide",
                                "interval_s": settings.reconcile_interval_s})
    kopf.run(
        standalone=True,  # one replica, no peering (see the module docstring)
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=f"http://{settings.listen_host}:{settings.health_port}/healthz"
        if settings.health_port else None,
    )


if __name__ == "__main__":
    main()
