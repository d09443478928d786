"""Leader election decisions on a coordination.k8s.io/v1 Lease (pure; client-go's rules).

A candidate never trusts another process's clock: a Lease held by someone else is expired
when the candidate has seen it *unchanged* (same holder, renewTime and transitions) for
`leaseDurationSeconds` of its own clock (`observed_at` is when it first saw that version).
The holder stops acting when its last successful renewal, timed from the start of that
attempt, is older than its renew deadline, which is shorter than the lease duration: it has
stopped before any candidate may take over. Every time here is timezone-aware (the Lease's
MicroTime fields are UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any


class Step(StrEnum):
    ACQUIRE = "acquire"  # create the Lease, or take over a free or expired one
    RENEW = "renew"  # we hold it: write a new renewTime
    WAIT = "wait"  # someone else holds it and it has not expired


@dataclass(frozen=True)
class LeaseRecord:
    """The spec of a Lease; `holder` "" = released (free)."""

    holder: str
    duration_s: int
    acquire_time: datetime | None
    renew_time: datetime | None
    transitions: int

    @property
    def version(self) -> tuple[str, datetime | None, int]:
        """What must change for the Lease to count as renewed."""
        return (self.holder, self.renew_time, self.transitions)


def aware(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}: every Lease time is timezone-aware")
    return dt


def expired(observed_at: datetime, duration_s: float, now: datetime) -> bool:
    """True when a Lease version first seen at `observed_at` is `duration_s` old by `now`."""
    return aware(now) >= aware(observed_at) + timedelta(seconds=duration_s)


def decide(record: LeaseRecord | None, me: str, observed_at: datetime, now: datetime) -> Step:
    """What candidate `me` does with the Lease it just read (None: there is none)."""
    if record is None or not record.holder:
        return Step.ACQUIRE
    if record.holder == me:
        return Step.RENEW
    return Step.ACQUIRE if expired(observed_at, record.duration_s, now) else Step.WAIT


def still_leading(renewed_at: datetime | None, renew_deadline_s: float, now: datetime) -> bool:
    """The holder may act only until `renew_deadline_s` after its last successful renewal
    (`renewed_at`: the start of that attempt; None: never held)."""
    if renewed_at is None:
        return False
    return aware(now) < aware(renewed_at) + timedelta(seconds=renew_deadline_s)


def claimed(record: LeaseRecord | None, me: str, duration_s: int, now: datetime) -> LeaseRecord:
    """The Lease `me` writes to acquire or renew it at `now`."""
    aware(now)
    if record is not None and record.holder == me:
        return replace(record, duration_s=duration_s, renew_time=now)
    transitions = 0 if record is None else record.transitions + (1 if record.holder else 0)
    return LeaseRecord(
        holder=me, duration_s=duration_s, acquire_time=now, renew_time=now, transitions=transitions
    )


def released(record: LeaseRecord, now: datetime) -> LeaseRecord:
    """The Lease a holder writes on a clean shutdown: free at once for a standby."""
    return replace(record, holder="", duration_s=1, renew_time=aware(now))


def micro_time(dt: datetime) -> str:
    """A MicroTime as the API server writes it (RFC 3339, microseconds, Z)."""
    return aware(dt).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: datetime | str | None) -> datetime | None:
    """A MicroTime from the client (a datetime, or a string in a dict body)."""
    if value is None or isinstance(value, datetime):
        return None if value is None else aware(value)
    return aware(datetime.fromisoformat(value.replace("Z", "+00:00")))


def from_spec(spec: dict[str, Any] | None) -> LeaseRecord:
    """A record from a Lease's spec (camelCase keys: `sanitize_for_serialization`'s dict)."""
    spec = spec or {}
    return LeaseRecord(
        holder=spec.get("holderIdentity") or "",
        duration_s=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=parse_time(spec.get("acquireTime")),
        renew_time=parse_time(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
    )


def to_spec(record: LeaseRecord) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.duration_s,
        "leaseTransitions": record.transitions,
    }
    if record.acquire_time is not None:
        spec["acquireTime"] = micro_time(record.acquire_time)
    if record.renew_time is not None:
        spec["renewTime"] = micro_time(record.renew_time)
    return spec
