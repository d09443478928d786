"""Prometheus and Alertmanager beside a local run (`MONITORING=1 ./scripts/run-local.sh`): the
project's rule files at their real durations, the project's Alertmanager route."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from stockstream.monitoring.servers import AlertmanagerServer, PrometheusServer, Target
from stockstream.monitoring.timescale import RULES_DIR


@contextlib.contextmanager
def monitoring(
    targets: Mapping[str, Sequence[Target]], workdir: Path, interval_s: float = 5.0
) -> Iterator[tuple[PrometheusServer, AlertmanagerServer]]:
    """Start Alertmanager, then Prometheus scraping `targets` every `interval_s`; print where
    to look; stop both on exit."""
    with (
        AlertmanagerServer(workdir=workdir / "alertmanager") as alertmanager,
        PrometheusServer(
            targets,
            RULES_DIR,
            alertmanager=alertmanager.address,
            interval_s=interval_s,
            workdir=workdir / "prometheus",
        ) as prometheus,
    ):
        print(
            f"prometheus {prometheus.url}  (alerts: {prometheus.url}/alerts)\n"
            f"alertmanager {alertmanager.url}",
            flush=True,
        )
        yield prometheus, alertmanager
