"""`python -m stockstream.monitoring.alert_receiver`: the development alert receiver.

An Alertmanager webhook receiver for the monitoring component
(deploy/kustomize/components/monitoring/alert-receiver.yaml): every alert Alertmanager
delivers to it, firing or resolved, becomes one ECS log line (`kubectl logs
deploy/alert-receiver`, and so the log pipeline), and `GET /alerts` lists every alert it has
received since it started (`kubectl port-forward svc/alert-receiver 9095`, then
`curl localhost:9095/alerts`). Point `observability/alertmanager/alertmanager.yml`'s
receivers at your paging and chat integrations instead in production.
"""

from __future__ import annotations

import logging
import threading

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from stockstream.cli import load_settings
from stockstream.logs import configure_logging
from stockstream.monitoring.webhook import Notified, WebhookReceiver

log = logging.getLogger("stockstream.monitoring.alert_receiver")


class AlertReceiverSettings(BaseSettings):
    """Where the receiver listens; variable names are the upper-cased field names."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    listen_host: str = Field(
        "0.0.0.0",  # noqa: S104 - Alertmanager posts to it from another pod
        description="Address the webhook listens on.",
    )
    listen_port: int = Field(9095, ge=1, le=65535, description="Port the webhook listens on.")
    log_level: str = Field("INFO", description="Python log level name.")


def log_alert(alert: Notified) -> None:
    """One log line per alert received: a warning while it fires, info once resolved."""
    level = logging.WARNING if alert.status == "firing" else logging.INFO
    log.log(
        level,
        f"alert {alert.status}: {alert.labels.get('alertname', '?')}",
        extra={
            "receiver": alert.receiver,
            "status": alert.status,
            "labels": alert.labels,
            "summary": alert.annotations.get("summary", ""),
        },
    )


def main() -> None:
    settings = load_settings(AlertReceiverSettings, "stockstream alert-receiver", __doc__)
    configure_logging("alert-receiver", settings.log_level)
    receiver = WebhookReceiver(
        host=settings.listen_host, port=settings.listen_port, on_alert=log_alert
    ).start()
    log.info("listening", extra={"url": receiver.url})
    threading.Event().wait()  # serves until the pod is stopped (SIGTERM ends the process)


if __name__ == "__main__":
    main()
