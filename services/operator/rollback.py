"""Safe upgrades: the last stable spec, and the rollback to it (pure).

A spec is *stable* once a fresh 1m window has landed under it: every dataflow process is
ready and the 1m leaderboard advanced after both the change was first applied and the
processes became ready. A change made while the leaderboards were not advancing anyway (a
suspended pipeline, a finished replay, a quiet feed), or whose feed has published all it ever
will (a non-looping replay's Job succeeded), cannot be judged by windows: it is stable once
every process is ready.

A change that is not stable `spec.rollback.readinessTimeoutSeconds` after the operator first
applied it is *rolled back*: the operator runs the dataflow cluster of the last stable spec
again (a coordinated restart back; the topics and the feed keep following the resource's
spec), records `status.rollback`, sets the `RolledBack` condition and posts a Warning
Event. The resource's spec stays as the user wrote it; the next edit (a new generation) is tried
again. What a rollback cannot change is never rolled back to: a change that leaves the dataflow
cluster as it was (e.g. `monitoring`, the feed) is stable once the processes are ready.

Status fields (all written by `track`):

    stable:   {generation, spec (JSON of the stable spec), since}
    pending:  {generation, since, expectWindow}  -- the current spec, applied, not stable yet
    rollback: {generation, toGeneration, at, reason} -- running `stable.spec` instead of the
              spec of `generation` (while metadata.generation is that one)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.operator import objects
from services.operator.lifecycle import Lifecycle
from services.operator.spec import StockStreamSpec
from services.operator.status import condition, ready_since

FIELDS = ("stable", "pending", "rollback")
CONDITION = "RolledBack"


def iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def is_rolled_back(previous: Mapping[str, Any], generation: int) -> bool:
    """Whether `generation` was rolled back: the operator runs `status.stable.spec`."""
    rollback = previous.get("rollback") or {}
    return rollback.get("generation") == generation and "spec" in (previous.get("stable") or {})


@dataclass(frozen=True)
class Observation:
    """This pass, as far as stability is concerned."""

    instance: str
    generation: int
    spec_raw: Mapping[str, Any]  # the resource's spec, as stored (defaults applied)
    spec: StockStreamSpec  # parsed from spec_raw
    stable_spec: StockStreamSpec | None  # parsed from status.stable.spec (None if absent)
    rolled_back: bool  # this pass ran the stable spec instead of spec
    status: Mapping[str, Any]  # the status this pass built (lifecycle, conditions, boards)
    feed_finished: bool = False  # the feed published all it ever will (a finished replay)


@dataclass
class Outcome:
    fields: dict[str, Any]  # stable / pending / rollback (None: remove)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    rolled_back_now: bool = False


def _advanced_at(status: Mapping[str, Any]) -> datetime | None:
    raw = (status.get("leaderboards") or {}).get("advancedAt")
    return datetime.fromisoformat(raw) if raw else None


def _fresh_at(previous: Mapping[str, Any], stale_after_s: int, now: datetime) -> bool:
    """Whether the leaderboards were advancing when a change was first seen."""
    advanced = _advanced_at(previous)
    return (
        previous.get("lifecycle") in (Lifecycle.RUNNING, Lifecycle.ROLLED_BACK)
        and advanced is not None
        and now - advanced <= timedelta(seconds=stale_after_s)
    )


def landed(
    pending: Mapping[str, Any], status: Mapping[str, Any], feed_finished: bool = False
) -> bool:
    """Whether the pending spec is stable (see the module's docstring)."""
    ready = ready_since(status)
    if status.get("lifecycle") != Lifecycle.RUNNING or ready is None:
        return False
    if not pending.get("expectWindow") or feed_finished:
        return True
    advanced = _advanced_at(status)
    since = datetime.fromisoformat(pending["since"])
    return advanced is not None and advanced > max(ready, since)


def track(previous: Mapping[str, Any], o: Observation, now: datetime) -> Outcome:
    """The stable/pending/rollback fields after this pass, and what to announce."""
    stable = previous.get("stable")
    pending = previous.get("pending")
    rollback = previous.get("rollback")
    if rollback and rollback.get("generation") == o.generation and o.rolled_back:
        return Outcome({"stable": stable, "pending": None, "rollback": rollback})
    if o.spec.suspend or (stable and stable.get("generation") == o.generation):
        return Outcome({"stable": stable, "pending": None, "rollback": None})
    if not pending or pending.get("generation") != o.generation:
        pending = {
            "generation": o.generation,
            "since": iso(now),
            "expectWindow": _fresh_at(previous, o.spec.monitoring.stale_after_s, now),
        }
    # a rollback changes only the dataflow cluster (the topics and the feed follow the spec:
    # re-running a finished replay's Job would publish its ticks twice)
    unchanged = o.stable_spec is not None and objects.cluster_hash(
        o.instance, o.stable_spec
    ) == objects.cluster_hash(o.instance, o.spec)
    if landed(pending, o.status, o.feed_finished) or (unchanged and landed({}, o.status)):
        new_stable = {
            "generation": o.generation,
            "since": iso(now),
            "spec": json.dumps(dict(o.spec_raw), sort_keys=True),
        }
        return Outcome(
            {"stable": new_stable, "pending": None, "rollback": None},
            [
                (
                    "Normal",
                    "SpecStable",
                    f"generation {o.generation} is stable"
                    f"{': a fresh 1m window landed' if pending.get('expectWindow') else ''}; "
                    "it is what a rollback returns to",
                )
            ],
        )
    waited = now - datetime.fromisoformat(pending["since"])
    timeout_s = o.spec.rollback.readiness_timeout_s
    if (
        not o.spec.rollback.enabled
        or not stable
        or unchanged
        or waited <= timedelta(seconds=timeout_s)
    ):
        return Outcome({"stable": stable, "pending": pending, "rollback": None})
    reason = (
        f"generation {o.generation} landed no fresh 1m window within {timeout_s} s "
        f"({o.status.get('message') or o.status.get('lifecycle')}); running the spec of "
        f"generation {stable['generation']} again. The spec is kept as written: the next "
        "edit is tried again"
    )
    new_rollback = {
        "generation": o.generation,
        "toGeneration": stable["generation"],
        "at": iso(now),
        "reason": reason,
    }
    return Outcome(
        {"stable": stable, "pending": None, "rollback": new_rollback},
        [("Warning", "RolledBack", reason)],
        rolled_back_now=True,
    )


def rolled_back_condition(
    previous: Mapping[str, Any], fields: Mapping[str, Any], generation: int, now: datetime
) -> dict[str, Any]:
    """The `RolledBack` condition: True while the stable spec runs instead of the resource's."""
    rollback = fields.get("rollback")
    conds = list(previous.get("conditions") or [])
    if rollback:
        return condition(
            conds,
            CONDITION,
            True,
            reason="ReadinessTimeout",
            message=rollback["reason"],
            generation=generation,
            now=now,
        )
    return condition(
        conds, CONDITION, False, reason="AsExpected", message="", generation=generation, now=now
    )
