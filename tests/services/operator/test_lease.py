"""Leader election's pure decisions (services/operator/lease.py) and the timing settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from services.operator.lease import (
    LeaseRecord,
    Step,
    claimed,
    decide,
    expired,
    from_spec,
    micro_time,
    released,
    still_leading,
    to_spec,
)
from services.operator.settings import OperatorSettings

T0 = datetime(2026, 12, 7, 12, 0, 0, 250_000, tzinfo=UTC)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def held(by: str, transitions: int = 0) -> LeaseRecord:
    return LeaseRecord(
        holder=by, duration_s=15, acquire_time=T0, renew_time=T0, transitions=transitions
    )


def test_no_lease_or_a_released_one_is_acquired_at_once() -> None:
    assert decide(None, "a", T0, T0) == Step.ACQUIRE
    assert decide(held(""), "a", T0, T0) == Step.ACQUIRE


def test_the_holder_renews() -> None:
    assert decide(held("a"), "a", T0, s(100)) == Step.RENEW


def test_another_holder_is_waited_for_until_unchanged_for_the_lease_duration() -> None:
    assert decide(held("b"), "a", T0, s(14.9)) == Step.WAIT
    assert decide(held("b"), "a", T0, s(15)) == Step.ACQUIRE
    # expiry counts from when this candidate first saw that version, not from renewTime
    assert decide(held("b"), "a", s(10), s(20)) == Step.WAIT


def test_expired_boundaries() -> None:
    assert not expired(T0, 6, s(5.999))
    assert expired(T0, 6, s(6))


def test_the_holder_leads_only_within_its_renew_deadline() -> None:
    assert still_leading(T0, 10, s(9.9))
    assert not still_leading(T0, 10, s(10))
    assert not still_leading(None, 10, T0)


def test_renew_deadline_ends_before_any_candidate_may_take_over() -> None:
    """The holder's last renewal starts at T0; a candidate sees that version at T0 or later,
    so it takes over at T0 + duration at the earliest, after the holder stopped."""
    duration, deadline = 6, 4.0
    for seen in (0.0, 0.5, 3.0):
        takeover = next(t / 10 for t in range(0, 200) if expired(s(seen), duration, s(t / 10)))
        assert not still_leading(T0, deadline, s(takeover))


def test_claims_keep_or_count_transitions() -> None:
    renewed = claimed(held("a", 2), "a", 15, s(5))
    assert (renewed.holder, renewed.acquire_time, renewed.renew_time, renewed.transitions) == (
        "a",
        T0,
        s(5),
        2,
    )
    taken = claimed(held("b", 2), "a", 15, s(20))
    assert (taken.holder, taken.acquire_time, taken.transitions) == ("a", s(20), 3)
    assert claimed(None, "a", 15, T0).transitions == 0
    assert claimed(held("", 4), "a", 15, T0).transitions == 4  # a released Lease: no takeover


def test_released_is_free_at_once() -> None:
    out = released(held("a", 1), s(3))
    assert (out.holder, out.duration_s, out.transitions) == ("", 1, 1)
    assert decide(out, "b", s(3), s(3)) == Step.ACQUIRE


def test_spec_round_trip_with_micro_times() -> None:
    record = claimed(None, "op-0", 15, T0)
    spec = to_spec(record)
    assert spec["renewTime"] == "2026-12-07T12:00:00.250000Z"
    assert from_spec(spec) == record
    # the client's own serialisation of a datetime, and other offsets
    assert from_spec({**spec, "renewTime": "2026-12-07T13:00:00.250000+01:00"}).renew_time == T0
    assert from_spec(None) == LeaseRecord("", 0, None, None, 0)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        expired(datetime(2026, 1, 1), 1, T0)
    with pytest.raises(ValueError, match="naive"):
        micro_time(datetime(2026, 1, 1))
    assert (
        micro_time(T0.astimezone(timezone(timedelta(hours=8))))
        == to_spec(claimed(None, "a", 1, T0))["renewTime"]
    )


def test_settings_require_retry_below_renew_deadline_below_lease_duration() -> None:
    ok = OperatorSettings(lease_duration_s=6, renew_deadline_s=4, retry_period_s=1)
    assert ok.identity  # hostname-pid without POD_NAME
    assert OperatorSettings(pod_name="op-1").identity == "op-1"
    for bad in (
        {"lease_duration_s": 6, "renew_deadline_s": 6},
        {"renew_deadline_s": 2, "retry_period_s": 2},
    ):
        with pytest.raises(ValidationError, match="retry_period_s < renew_deadline_s"):
            OperatorSettings(**bad)  # type: ignore[arg-type]
