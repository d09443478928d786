"""Leaderboard freshness: the latest window end of each length in Redis (`window:<N>`
hashes written by the dataflow) and whether the 1-minute leaderboard still advances.

Lag is measured against the wall clock when a new window end is first seen (a replay of
old data lags by years but still advances); "stale" means the 1m window end has not
changed for `stale_after_s` of wall time while the pipeline should be running. The status
only changes when a window end changes or staleness flips (messages hold no running
counters), so a quiet pipeline causes no status writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

WINDOW_NAMES = ("1m", "5m", "15m", "5m_max")


@dataclass(frozen=True)
class Freshness:
    """`status.leaderboards` plus the Degraded verdict."""

    ends: Mapping[str, int]  # window name -> latest window end (epoch s)
    lags_s: Mapping[str, int]  # window name -> wall clock minus end when the end was first seen
    advanced_at: datetime | None  # wall time the 1m end last changed (or was first seen)
    stale: bool
    reason: str  # "" when fresh

    def to_status(self) -> dict[str, Any]:
        windows = [
            {"name": n, "end": iso(self.ends[n]), "lagSeconds": int(self.lags_s.get(n, 0))}
            for n in WINDOW_NAMES
            if n in self.ends
        ]
        out: dict[str, Any] = {"windows": windows}
        if "1m" in self.ends:
            out["latest1mWindowEnd"] = iso(self.ends["1m"])
        if self.advanced_at is not None:
            out["advancedAt"] = self.advanced_at.isoformat(timespec="seconds")
        return out


def iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds")


def parse_previous(
    status: Mapping[str, Any],
) -> tuple[dict[str, int], dict[str, int], datetime | None]:
    """Window ends, lags and advancedAt from a previous `status.leaderboards`."""
    ends: dict[str, int] = {}
    lags: dict[str, int] = {}
    for w in status.get("windows", []) or []:
        ends[w["name"]] = int(datetime.fromisoformat(w["end"]).timestamp())
        lags[w["name"]] = int(w.get("lagSeconds", 0))
    raw = status.get("advancedAt")
    return ends, lags, datetime.fromisoformat(raw) if raw else None


def evaluate(
    previous: Mapping[str, Any],
    observed_ends: Mapping[str, int],
    now: datetime,
    stale_after_s: int,
    running_since: datetime | None,
) -> Freshness:
    """Fold this pass's observed window ends into the previous status (pure).

    `running_since`: when the pipeline last became Running (None: it is not running, so no
    progress is expected). Staleness counts from the later of that and the last advance."""
    prev_ends, prev_lags, advanced_at = parse_previous(previous)
    lags = {n: lag for n, lag in prev_lags.items() if n in observed_ends}
    for name, end in observed_ends.items():
        if prev_ends.get(name) != end:
            lags[name] = int(now.timestamp()) - end
    one = observed_ends.get("1m")
    if one is not None and (prev_ends.get("1m") != one or advanced_at is None):
        advanced_at = now
    fresh = Freshness(dict(observed_ends), lags, advanced_at, False, "")
    if running_since is None:
        return fresh
    baseline = max(running_since, advanced_at) if advanced_at else running_since
    quiet_s = (now - baseline).total_seconds()
    if quiet_s <= stale_after_s:
        return fresh
    if one is None:
        reason = (
            f"no 1m leaderboard in Redis since {baseline.isoformat(timespec='seconds')} "
            f"(over {stale_after_s} s of Running); check the "
            "feed is publishing (feed pods' logs, the ticks topic), the dataflow pods' "
            "logs and spec.redis.url"
        )
    else:
        reason = (
            f"the 1m leaderboard has not advanced since "
            f"{baseline.isoformat(timespec='seconds')} (over {stale_after_s} s; latest "
            f"window end {iso(one)}); check the feed is publishing (feed pods' logs, "
            "the ticks topic) and the dataflow pods' logs for errors"
        )
    return Freshness(dict(observed_ends), lags, advanced_at, True, reason)


def read_window_ends(
    url: str, password: str | None, username: str | None = None, timeout_s: float = 3.0
) -> dict[str, int]:
    """`end` of every `window:<N>` hash present in Redis (raises redis.RedisError)."""
    client = redis.Redis.from_url(
        url,
        username=username,
        password=password,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )
    try:
        pipe = client.pipeline(transaction=False)
        for name in WINDOW_NAMES:
            pipe.hget(f"window:{name}", "end")
        values = pipe.execute()
    finally:
        client.close()
    return {n: int(float(v)) for n, v in zip(WINDOW_NAMES, values, strict=True) if v is not None}
