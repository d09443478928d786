"""Debian's `prometheus` and `prometheus-alertmanager` on free loopback ports, configured from
the project's files with overrides (targets, intervals, rule directory, webhook URL).

    am = AlertmanagerServer(webhook_url="http://127.0.0.1:8080/").start()
    prom = PrometheusServer(targets={"dataflow": [("127.0.0.1:9100", {"pod": "dataflow-0"})]},
                            rule_dir=rules, alertmanager=am.address).start()
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import yaml

from stockstream.embedded import _process
from stockstream.embedded._server import EmbeddedServer
from stockstream.embedded.ports import LOOPBACK, free_port

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_LOCAL_CONFIG = REPO / "observability/prometheus/prometheus.local.yml"
ALERTMANAGER_CONFIG = REPO / "observability/alertmanager/alertmanager.yml"

Target = tuple[str, Mapping[str, str]]  # ("127.0.0.1:9100", {"pod": "dataflow-0"})


def _executable(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError(
        f"none of {names} on PATH; run scripts/bootstrap.sh "
        "(Debian packages prometheus and prometheus-alertmanager)"
    )


def http_json(url: str, timeout_s: float = 5.0) -> Any:
    """GET `url` and decode its JSON body."""
    with urllib.request.urlopen(url, timeout=timeout_s) as reply:  # noqa: S310 - loopback
        return json.load(reply)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:  # noqa: S310 - loopback
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def prometheus_config(
    targets: Mapping[str, Sequence[Target]],
    rule_dir: Path,
    self_address: str,
    alertmanager: str | None,
    interval_s: float,
) -> dict[str, Any]:
    """prometheus.local.yml with these scrape targets (per job), rules and intervals."""
    config = yaml.safe_load(PROMETHEUS_LOCAL_CONFIG.read_text())
    interval = f"{interval_s:g}s"
    config["global"].update(
        scrape_interval=interval, evaluation_interval=interval, scrape_timeout=interval
    )
    config["rule_files"] = [str(rule_dir / "*.yaml")]
    jobs = []
    for job in config["scrape_configs"]:
        name = job["job_name"]
        if name == "prometheus":
            job["static_configs"] = [{"targets": [self_address]}]
        elif name in targets:
            job["static_configs"] = [
                {"targets": [address], "labels": dict(labels)} for address, labels in targets[name]
            ]
        else:
            continue  # a job with nothing to scrape here
        jobs.append(job)
    for name in targets.keys() - {job["job_name"] for job in jobs}:
        jobs.append(
            {
                "job_name": name,
                "static_configs": [
                    {"targets": [address], "labels": dict(labels)}
                    for address, labels in targets[name]
                ],
            }
        )
    config["scrape_configs"] = jobs
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return config


class PrometheusServer(EmbeddedServer):
    """A `prometheus` scraping `targets`, loading the rule files of `rule_dir`."""

    workdir_prefix = "stockstream-prometheus-"

    def __init__(
        self,
        targets: Mapping[str, Sequence[Target]],
        rule_dir: Path,
        *,
        alertmanager: str | None = None,
        interval_s: float = 15.0,
        port: int | None = None,
        workdir: Path | None = None,
        startup_timeout_s: float = 60.0,
    ) -> None:
        self.port = port or free_port()
        self.address = f"{LOOPBACK}:{self.port}"
        self.url = f"http://{self.address}"
        self.targets = targets
        self.rule_dir = rule_dir
        self.alertmanager = alertmanager
        self.interval_s = interval_s
        self.startup_timeout_s = startup_timeout_s
        super().__init__(workdir, stop_timeout=15.0)

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    def start(self) -> Self:
        if self.is_running:
            return self
        config_path = self._write_config()
        argv = [
            _executable("prometheus"),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address={self.address}",
            "--web.enable-lifecycle",
            # Send a firing alert as soon as Alertmanager is known (default: 1m later).
            "--rules.alert.resend-delay=1s",
            "--storage.tsdb.retention.time=1d",
        ]
        self._proc = _process.spawn(argv, self.log_path, cwd=self.workdir)
        _process.register(id(self), self.stop)
        if not _process.wait_until(
            lambda: _answers(f"{self.url}/-/ready"),
            self.startup_timeout_s,
            interval=0.2,
            alive=lambda: self.is_running,
        ):
            self._start_failed(f"prometheus on {self.address}", "did not become ready")
        return self

    def reload(self, targets: Mapping[str, Sequence[Target]]) -> None:
        """Scrape `targets` from now on (rewrites the config, POST /-/reload)."""
        self.targets = targets
        self._write_config()
        request = urllib.request.Request(  # noqa: S310 - our own loopback URL
            f"{self.url}/-/reload", method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310 - loopback
            if reply.status != 200:
                raise RuntimeError(f"prometheus reload answered {reply.status}")

    def _write_config(self) -> Path:
        config = prometheus_config(
            self.targets, self.rule_dir, self.address, self.alertmanager, self.interval_s
        )
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar as one sample) of `expr` now."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        reply = http_json(url)
        if reply.get("status") != "success":
            raise ValueError(f"query {expr!r} failed: {reply}")
        data = reply["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def targets_health(self) -> dict[str, str]:
        """scrapeUrl -> health ("up", "down", "unknown") of every active target."""
        reply = http_json(f"{self.url}/api/v1/targets?state=active")
        return {t["scrapeUrl"]: t["health"] for t in reply["data"]["activeTargets"]}

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule with its state, health and last error."""
        reply = http_json(f"{self.url}/api/v1/rules")
        return [rule for group in reply["data"]["groups"] for rule in group["rules"]]


def alertmanager_config(webhook_url: str | None, fast: bool) -> dict[str, Any]:
    """observability/alertmanager/alertmanager.yml, its webhook receivers pointed at
    `webhook_url`; `fast` shortens grouping waits to a second (tests, demos)."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    if webhook_url:
        for receiver in config["receivers"]:
            for hook in receiver.get("webhook_configs", []):
                hook["url"] = webhook_url
    if fast:
        routes = [config["route"]]
        while routes:
            route = routes.pop()
            for key, value in (("group_wait", "1s"), ("group_interval", "1s")):
                if key in route or route is config["route"]:
                    route[key] = value
            routes.extend(route.get("routes", []))
    return config


class AlertmanagerServer(EmbeddedServer):
    """A `prometheus-alertmanager` (no clustering) with the project's route."""

    workdir_prefix = "stockstream-alertmanager-"

    def __init__(
        self,
        webhook_url: str | None = None,
        *,
        fast: bool = False,
        port: int | None = None,
        workdir: Path | None = None,
        startup_timeout_s: float = 60.0,
    ) -> None:
        self.port = port or free_port()
        self.address = f"{LOOPBACK}:{self.port}"
        self.url = f"http://{self.address}"
        self.webhook_url = webhook_url
        self.fast = fast
        self.startup_timeout_s = startup_timeout_s
        super().__init__(workdir, stop_timeout=15.0)

    @property
    def log_path(self) -> Path:
        return self.workdir / "alertmanager.log"

    def start(self) -> Self:
        if self.is_running:
            return self
        config_path = self.workdir / "alertmanager.yml"
        config_path.write_text(
            yaml.safe_dump(alertmanager_config(self.webhook_url, self.fast), sort_keys=False)
        )
        argv = [
            _executable("prometheus-alertmanager", "alertmanager"),
            f"--config.file={config_path}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",  # no gossip: a single instance
        ]
        self._proc = _process.spawn(argv, self.log_path, cwd=self.workdir)
        _process.register(id(self), self.stop)
        if not _process.wait_until(
            lambda: _answers(f"{self.url}/-/ready"),
            self.startup_timeout_s,
            interval=0.2,
            alive=lambda: self.is_running,
        ):
            self._start_failed(f"alertmanager on {self.address}", "did not become ready")
        return self
