"""The last stable spec and the rollback to it (services/operator/rollback.py), pure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.operator.model import parse_spec
from services.operator.rollback import (
    Observation,
    is_rolled_back,
    landed,
    rolled_back_condition,
    track,
)

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
GOOD = {"image": "stockstream:1", "rollback": {"readinessTimeoutSeconds": 60}}
BAD = {"image": "stockstream:broken", "rollback": {"readinessTimeoutSeconds": 60}}


def at(s: float) -> str:
    return (T0 + timedelta(seconds=s)).isoformat(timespec="seconds")


def status(
    lifecycle: str = "Running",
    ready_at: float | None = 0,
    advanced_at: float | None = None,
    message: str = "",
) -> dict[str, Any]:
    conds = [
        {
            "type": "Ready",
            "status": "True" if ready_at is not None else "False",
            "lastTransitionTime": at(ready_at or 0),
        }
    ]
    out: dict[str, Any] = {"lifecycle": lifecycle, "conditions": conds, "message": message}
    if advanced_at is not None:
        out["leaderboards"] = {"advancedAt": at(advanced_at)}
    return out


def stable(generation: int = 1, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "generation": generation,
        "since": at(-600),
        "spec": json.dumps(spec or GOOD, sort_keys=True),
    }


def observe(
    spec: dict[str, Any],
    generation: int,
    now_status: dict[str, Any],
    previous: dict[str, Any],
    rolled_back: bool = False,
) -> Observation:
    raw_stable = (previous.get("stable") or {}).get("spec")
    return Observation(
        instance="x",
        generation=generation,
        spec_raw=spec,
        spec=parse_spec(spec),
        rolled_back=rolled_back,
        status=now_status,
        stable_spec=parse_spec(json.loads(raw_stable)) if raw_stable else None,
    )


# (pending expectWindow, status now, landed?)
LANDED = [
    (True, status(ready_at=20, advanced_at=30), True),  # a window after ready and the change
    (True, status(ready_at=20, advanced_at=20), False),  # same second as ready: maybe old
    (True, status(ready_at=20, advanced_at=5), False),  # before the change
    (True, status(ready_at=20), False),  # no window at all
    (True, status("Upgrading", ready_at=None, advanced_at=30), False),
    (False, status(ready_at=20), True),  # no window expected: ready suffices
    (False, status("Deploying", ready_at=None), False),
]


@pytest.mark.parametrize(("expect", "now_status", "expected"), LANDED)
def test_a_change_is_stable_once_a_fresh_window_lands(
    expect: bool, now_status: dict[str, Any], expected: bool
) -> None:
    pending = {"generation": 2, "since": at(10), "expectWindow": expect}
    assert landed(pending, now_status) is expected


def test_the_first_stable_spec_is_recorded_with_an_event() -> None:
    previous = status("Deploying", ready_at=None)
    out = track(previous, observe(GOOD, 1, status(ready_at=5), previous), T0 + timedelta(0, 5))
    assert out.fields["pending"] is None and out.fields["rollback"] is None
    assert out.fields["stable"]["generation"] == 1
    assert json.loads(out.fields["stable"]["spec"]) == GOOD
    assert [e[1] for e in out.events] == ["SpecStable"]


def test_a_change_made_while_windows_advance_waits_for_a_fresh_one() -> None:
    previous = {**status(advanced_at=-5), "stable": stable()}
    first = track(previous, observe(BAD, 2, status("Upgrading", ready_at=None), previous), T0)
    assert first.fields["pending"] == {"generation": 2, "since": at(0), "expectWindow": True}
    assert not first.events and not first.rolled_back_now
    # ready again, and the 1m board advanced at +30: stable
    previous = {**status("Upgrading", ready_at=None), **first.fields}
    now = status(ready_at=20, advanced_at=30)
    second = track(previous, observe(BAD, 2, now, previous), T0 + timedelta(seconds=30))
    assert second.fields["stable"]["generation"] == 2 and second.fields["pending"] is None


@pytest.mark.parametrize(
    ("waited_s", "enabled", "rolled"), [(59, True, False), (61, True, True), (61, False, False)]
)
def test_a_change_without_a_fresh_window_in_time_is_rolled_back(
    waited_s: int, enabled: bool, rolled: bool
) -> None:
    spec = {**BAD, "rollback": {"readinessTimeoutSeconds": 60, "enabled": enabled}}
    previous = {
        **status("Upgrading", ready_at=None),
        "stable": stable(),
        "pending": {"generation": 2, "since": at(0), "expectWindow": True},
    }
    now_status = status(
        "Upgrading",
        ready_at=None,
        message="0/2 dataflow processes ready: x-dataflow-0: ImagePullBackOff",
    )
    out = track(previous, observe(spec, 2, now_status, previous), T0 + timedelta(0, waited_s))
    assert out.rolled_back_now is rolled
    if not rolled:
        assert out.fields["rollback"] is None and out.fields["pending"]["generation"] == 2
        return
    rb = out.fields["rollback"]
    assert (rb["generation"], rb["toGeneration"]) == (2, 1)
    assert "ImagePullBackOff" in rb["reason"] and "within 60 s" in rb["reason"]
    assert [e[:2] for e in out.events] == [("Warning", "RolledBack")]
    assert out.fields["stable"] == previous["stable"]  # what runs from the next pass
    assert is_rolled_back({**previous, **out.fields}, 2)
    assert not is_rolled_back({**previous, **out.fields}, 3)  # the next edit is tried
    cond = rolled_back_condition(previous, out.fields, 2, T0)
    assert (cond["type"], cond["status"], cond["reason"]) == (
        "RolledBack",
        "True",
        "ReadinessTimeout",
    )


def test_a_rolled_back_generation_stays_rolled_back_until_the_next_edit() -> None:
    rb = {"generation": 2, "toGeneration": 1, "at": at(0), "reason": "r"}
    previous = {**status("RolledBack"), "stable": stable(), "rollback": rb}
    same = track(
        previous,
        observe(BAD, 2, status("RolledBack"), previous, rolled_back=True),
        T0 + timedelta(hours=1),
    )
    assert same.fields == {"stable": previous["stable"], "pending": None, "rollback": rb}
    assert not same.events
    fixed = {"image": "stockstream:2", "rollback": {"readinessTimeoutSeconds": 60}}
    edited = track(
        previous,
        observe(fixed, 3, status("Upgrading", ready_at=None), previous),
        T0 + timedelta(hours=1),
    )
    assert edited.fields["rollback"] is None and edited.fields["pending"]["generation"] == 3
    assert rolled_back_condition(previous, edited.fields, 3, T0)["status"] == "False"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"suspend": True}, "a suspended pipeline lands no window, and must not be resumed"),
        ({"monitoring": {"staleAfterSeconds": 600}}, "the cluster and the feed are unchanged"),
    ],
)
def test_what_a_rollback_cannot_fix_is_never_rolled_back(change: dict[str, Any], why: str) -> None:
    spec = {**GOOD, **change}
    previous = {
        **status(advanced_at=-5),
        "stable": stable(),
        "pending": {"generation": 2, "since": at(0), "expectWindow": True},
    }
    out = track(previous, observe(spec, 2, status(ready_at=-100), previous), T0 + timedelta(0, 600))
    assert not out.rolled_back_now, why
    assert out.fields["rollback"] is None


def test_an_unchanged_workload_is_stable_once_ready() -> None:
    spec = {**GOOD, "monitoring": {"staleAfterSeconds": 600}}
    previous = {**status(advanced_at=-5), "stable": stable()}
    out = track(previous, observe(spec, 2, status(ready_at=-100), previous), T0)
    assert out.fields["stable"]["generation"] == 2


def test_a_change_while_nothing_advanced_is_stable_once_ready() -> None:
    """A finished replay lands no more windows: an upgrade after it is judged by readiness."""
    previous = {**status(advanced_at=-3600), "stable": stable()}
    now = T0
    first = track(previous, observe(BAD, 2, status("Upgrading", ready_at=None), previous), now)
    assert first.fields["pending"]["expectWindow"] is False
    previous = {**status("Upgrading", ready_at=None), **first.fields}
    second = track(previous, observe(BAD, 2, status(ready_at=20), previous), now)
    assert second.fields["stable"]["generation"] == 2


def test_a_finished_feed_lands_no_window_so_readiness_suffices() -> None:
    pending = {"generation": 2, "since": at(10), "expectWindow": True}
    assert not landed(pending, status(ready_at=20))
    assert landed(pending, status(ready_at=20), feed_finished=True)
    assert not landed(pending, status("Upgrading", ready_at=None), feed_finished=True)


def test_without_a_stable_spec_nothing_is_rolled_back() -> None:
    previous = {
        **status("Deploying", ready_at=None),
        "pending": {"generation": 1, "since": at(0), "expectWindow": False},
    }
    out = track(
        previous,
        observe(BAD, 1, status("Deploying", ready_at=None), previous),
        T0 + timedelta(hours=1),
    )
    assert not out.rolled_back_now and out.fields["pending"]["generation"] == 1
