"""An Alertmanager webhook receiver that keeps every notification it gets: on loopback in
tests, and in the cluster as the development receiver of the monitoring component
(`python -m stockstream.monitoring.alert_receiver`). `GET /alerts` lists what it kept.

Each POST body is Alertmanager's webhook payload (version 4):
    {"receiver": "pager", "status": "firing", "alerts": [
        {"status": "firing"|"resolved", "labels": {...}, "annotations": {...},
         "startsAt": "...", "endsAt": "..."}, ...], ...}
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from stockstream.embedded.ports import LOOPBACK


@dataclass(frozen=True)
class Notified:
    """One alert of one notification, with when it reached us (monotonic seconds)."""

    receiver: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    received_s: float


@dataclass
class WebhookReceiver:
    """`with WebhookReceiver() as hook:` ... `hook.url` ... `hook.wait_for(...)`."""

    host: str = LOOPBACK
    port: int = 0  # 0: any free port
    on_alert: Callable[[Notified], None] | None = None  # called for each alert received
    alerts: list[Notified] = field(default_factory=list)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://{self.host}:{self._server.server_address[1]}/alerts"

    def listed(self) -> bytes:
        """Every alert kept so far, as the JSON list `GET /alerts` answers."""
        with self._lock:
            return json.dumps([asdict(a) for a in self.alerts]).encode()

    def start(self) -> Self:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # name fixed by BaseHTTPRequestHandler
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.record(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # name fixed by BaseHTTPRequestHandler
                body = receiver.listed() if self.path == "/alerts" else b""
                self.send_response(200 if self.path in ("/alerts", "/healthz") else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True).start()
        return self

    def record(self, payload: dict[str, Any]) -> None:
        now = time.monotonic()
        received = [
            Notified(
                payload.get("receiver", ""),
                alert["status"],
                alert.get("labels", {}),
                alert.get("annotations", {}),
                now,
            )
            for alert in payload.get("alerts", [])
        ]
        with self._lock:
            self.alerts.extend(received)
            self._lock.notify_all()
        if self.on_alert is not None:
            for alert in received:
                self.on_alert(alert)

    def seen(self, alertname: str, status: str, since_s: float = 0.0) -> list[Notified]:
        """Alerts named `alertname` with `status` received at or after `since_s`."""
        with self._lock:
            return [
                a
                for a in self.alerts
                if a.labels.get("alertname") == alertname
                and a.status == status
                and a.received_s >= since_s
            ]

    def wait_for(
        self,
        alertname: str,
        status: str,
        since_s: float,
        timeout_s: float,
        labels: dict[str, str] | None = None,
    ) -> Notified | None:
        """The first such alert (carrying `labels` too), waiting up to `timeout_s`; None if
        none came."""
        deadline = time.monotonic() + timeout_s
        wanted = {"alertname": alertname, **(labels or {})}
        with self._lock:
            while True:
                found = [
                    a
                    for a in self.alerts
                    if a.status == status
                    and a.received_s >= since_s
                    and all(a.labels.get(k) == v for k, v in wanted.items())
                ]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._lock.wait(min(left, 1.0))

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
