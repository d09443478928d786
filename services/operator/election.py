"""Leader election on a coordination.k8s.io/v1 Lease (the I/O; decisions in `lease.py`).

`acquire` blocks a standby until it holds the Lease; `keep` (a thread) renews it every retry
period; `guard` runs before every write the operator makes. When the holder cannot renew
within its renew deadline, or finds another holder, it exits at once (`LOST_EXIT`): no
handler finishes a pass without the Lease, and the restarted pod is a standby.
`release` frees the Lease on a clean shutdown so that a standby takes over at once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client

from services.operator.lease import (
    LeaseRecord,
    Step,
    claimed,
    decide,
    from_spec,
    released,
    still_leading,
    to_spec,
)
from services.operator.settings import OperatorSettings
from stockstream.metrics import OPERATOR_LEADER

log = logging.getLogger(__name__)

LOST_EXIT = 3  # exit status of a replica that lost the Lease
_EPOCH = datetime.now(UTC) - timedelta(seconds=time.monotonic())


def local_now() -> datetime:
    """This process's clock for durations: aware, never stepped (monotonic)."""
    return _EPOCH + timedelta(seconds=time.monotonic())


class Elector:
    """One candidate: its identity, the Lease's address and the timings from the settings."""

    def __init__(
        self,
        api: client.ApiClient,
        settings: OperatorSettings,
        clock: Callable[[], datetime] = local_now,
        exit_: Callable[[int], None] = os._exit,
    ) -> None:
        self._api = api
        self._leases = client.CoordinationV1Api(api)
        self.identity = settings.identity
        self.name, self.namespace = settings.lease_name, settings.lease_namespace
        self.duration_s = settings.lease_duration_s
        self.renew_deadline_s = settings.renew_deadline_s
        self.retry_period_s = settings.retry_period_s
        self._timeout = max(1.0, self.renew_deadline_s / 2)  # per request: never hang a renewal
        self._clock, self._exit = clock, exit_
        self._lock = threading.Lock()
        self._observed: tuple[tuple[Any, ...], datetime] | None = None
        self._record: LeaseRecord | None = None
        self._resource_version: str | None = None
        self._renewed_at: datetime | None = None
        self._contact: datetime | None = None  # last answer of the API server
        OPERATOR_LEADER.set(0)

    def _read(self) -> LeaseRecord | None:
        try:
            lease = self._leases.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self._timeout
            )
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            self._resource_version = None
            return None
        body = self._api.sanitize_for_serialization(lease)
        self._resource_version = body["metadata"]["resourceVersion"]
        return from_spec(body.get("spec"))

    def try_once(self) -> bool:
        """One attempt to acquire or renew; True if this candidate holds the Lease after it."""
        start = self._clock()
        with self._lock:
            try:
                record = self._read()
                # a version counts as seen when the answer is here (a candidate's expiry is
                # late rather than early); the holder's deadline counts from `start` (early)
                seen = self._contact = self._clock()
                if record is not None and (
                    self._observed is None or self._observed[0] != record.version
                ):
                    self._observed = (record.version, seen)
                self._record = record
                observed_at = self._observed[1] if self._observed else seen
                if decide(record, self.identity, observed_at, seen) == Step.WAIT:
                    return False
                new = claimed(record, self.identity, self.duration_s, datetime.now(UTC))
                meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
                body: Any = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",  # a dict
                    "metadata": meta,
                    "spec": to_spec(new),
                }
                if self._resource_version is None:
                    out = self._leases.create_namespaced_lease(
                        self.namespace, body, _request_timeout=self._timeout
                    )
                else:
                    meta["resourceVersion"] = self._resource_version
                    out = self._leases.replace_namespaced_lease(
                        self.name, self.namespace, body, _request_timeout=self._timeout
                    )
            except Exception as exc:  # API down, a conflict (409): retried next period
                log.warning(
                    "lease attempt failed", extra={"lease": self.name, "error": str(exc)[:300]}
                )
                return False
            if record is None or record.holder != self.identity:
                log.info(
                    "lease acquired",
                    extra={
                        "lease": self.name,
                        "identity": self.identity,
                        "previous_holder": record.holder if record else "",
                        "transitions": new.transitions,
                    },
                )
            self._record, self._renewed_at = new, start
            self._resource_version = self._api.sanitize_for_serialization(out)["metadata"][
                "resourceVersion"
            ]
            self._observed = (new.version, start)
            return True

    def acquire(self) -> None:
        """Block until this candidate holds the Lease (a standby waits here)."""
        log.info(
            "standby", extra={"lease": f"{self.namespace}/{self.name}", "identity": self.identity}
        )
        while not self.try_once():
            time.sleep(self.retry_period_s)
        OPERATOR_LEADER.set(1)

    def leading(self) -> bool:
        return still_leading(self._renewed_at, self.renew_deadline_s, self._clock())

    def healthy(self) -> bool:
        """/readyz: the election loop reached the API server within the lease duration
        (an active replica and a standby alike)."""
        contact = self._contact
        return self.leading() or (
            contact is not None and self._clock() < contact + timedelta(seconds=self.duration_s)
        )

    def guard(self) -> None:
        """Before a write: exit unless the Lease is still ours."""
        if not self.leading():
            self.lost("renew deadline passed before a write")

    def keep(self, stop: threading.Event) -> None:
        """Renew every retry period until `stop`; exit at once when the Lease is lost."""
        while not stop.wait(self.retry_period_s):
            if not self.leading():
                self.lost("renew deadline passed")
                return
            if not self.try_once():
                record = self._record
                if record is not None and record.holder not in ("", self.identity):
                    self.lost(f"held by {record.holder}")
                    return

    def lost(self, reason: str) -> None:
        OPERATOR_LEADER.set(0)
        log.error(
            "lease lost: stopping at once",
            extra={"lease": self.name, "reason": reason, "identity": self.identity},
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        self._exit(LOST_EXIT)

    def release(self) -> None:
        """On a clean shutdown: free the Lease if it is still ours."""
        with self._lock:
            record = self._record
            if record is None or record.holder != self.identity or not self.leading():
                return
            body: Any = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": self.name,
                    "namespace": self.namespace,
                    "resourceVersion": self._resource_version,
                },
                "spec": to_spec(released(record, datetime.now(UTC))),
            }
            try:
                self._leases.replace_namespaced_lease(self.name, self.namespace, body)
            except Exception as exc:  # the standby takes over after the lease duration
                log.warning("lease not released", extra={"error": str(exc)[:300]})
                return
            self._renewed_at = None
            OPERATOR_LEADER.set(0)
            log.info("lease released", extra={"lease": self.name, "identity": self.identity})
