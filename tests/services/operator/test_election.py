"""The Elector (services/operator/election.py) against an in-memory Lease API with optimistic
concurrency, on a hand-moved clock: takeover after expiry only, the write guard, release,
readiness. The real API server and processes: test_ha.py."""

from __future__ import annotations

import copy
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from services.operator.election import LOST_EXIT, Elector
from services.operator.settings import OperatorSettings


class ExitCalledError(Exception):
    pass


class FakeLeases:
    """read/create/replace of one Lease, 409 on a stale resourceVersion."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0

    def read_namespaced_lease(self, name: str, namespace: str, **_: Any) -> dict[str, Any]:
        if self.lease is None:
            raise client.ApiException(status=404)
        return copy.deepcopy(self.lease)

    def _store(self, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        self.lease = {
            **copy.deepcopy(body),
            "metadata": {**body["metadata"], "resourceVersion": str(self.version)},
        }
        return copy.deepcopy(self.lease)

    def create_namespaced_lease(
        self, namespace: str, body: dict[str, Any], **_: Any
    ) -> dict[str, Any]:
        if self.lease is not None:
            raise client.ApiException(status=409)
        return self._store(body)

    def replace_namespaced_lease(
        self, name: str, namespace: str, body: dict[str, Any], **_: Any
    ) -> dict[str, Any]:
        assert self.lease is not None
        if body["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            raise client.ApiException(status=409)
        return self._store(body)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def exit_(code: int) -> None:
    raise ExitCalledError(code)


def elector(name: str, leases: FakeLeases, clock: Clock) -> Elector:
    settings = OperatorSettings(
        pod_name=name, lease_duration_s=6, renew_deadline_s=4, retry_period_s=1
    )
    out = Elector(client.ApiClient(), settings, clock=clock, exit_=exit_)
    out._leases = leases  # type: ignore[assignment]  # the in-memory API
    return out


def test_takeover_only_after_expiry_and_the_old_holder_stops_first() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = elector("a", leases, clock), elector("b", leases, clock)
    assert a.try_once() and a.leading()
    assert not b.try_once()  # held by a
    clock.advance(3)
    assert a.try_once()  # renewed: b sees a new version and waits again from now
    assert not b.try_once()
    clock.advance(5.5)
    assert not b.try_once()  # 5.5 s < 6 s since b saw the renewal
    assert not a.leading()  # but a has already stopped acting (deadline 4 s)
    with pytest.raises(ExitCalledError, match=str(LOST_EXIT)):
        a.guard()
    clock.advance(0.5)
    assert b.try_once() and b.leading()
    assert leases.lease is not None and leases.lease["spec"]["leaseTransitions"] == 1
    assert not a.try_once()  # a wakes up: someone else holds it


def test_keep_exits_when_another_replica_holds_the_lease() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = elector("a", leases, clock), elector("b", leases, clock)
    assert a.try_once()
    assert not b.try_once()
    clock.advance(6)
    assert b.try_once()
    a._renewed_at = clock.now  # as if a had just renewed: only the holder check catches it
    with pytest.raises(ExitCalledError):
        a.keep(threading.Event())


def test_release_frees_the_lease_at_once() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = elector("a", leases, clock), elector("b", leases, clock)
    assert a.try_once()
    assert not b.try_once()
    a.release()
    assert not a.leading()
    assert b.try_once()  # no waiting for expiry
    assert leases.lease is not None and leases.lease["spec"]["holderIdentity"] == "b"


def test_a_standby_is_ready_while_it_reaches_the_api_server() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = elector("a", leases, clock), elector("b", leases, clock)
    assert not b.healthy()  # never reached the API server
    assert a.try_once() and a.healthy()
    assert not b.try_once() and b.healthy()  # a healthy standby
    clock.advance(7)
    assert not b.healthy()  # no answer for longer than the lease duration
