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
from stockstream.logs import configure_logging
from stockstream.metrics import serve_metrics

log = logging.getLogger("services.operator")


def main() -> None:
    settings = OperatorSettings()
    configure_logging("operator", settings.log_level)
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
