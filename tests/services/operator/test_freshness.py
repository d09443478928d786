"""Leaderboard freshness (services/operator/freshness.py): advancing, stale, quiet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.operator.freshness import evaluate

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
END = 1_638_322_800  # 2021-12-01T01:40:00Z: a replay lags the wall clock by years


def test_first_sight_records_end_lag_and_advance() -> None:
    f = evaluate({}, {"1m": END, "5m": END}, T0, 120, running_since=T0)
    assert f.ends == {"1m": END, "5m": END}
    assert f.lags_s["1m"] == int(T0.timestamp()) - END
    assert f.advanced_at == T0 and not f.stale
    status = f.to_status()
    assert status["latest1mWindowEnd"] == "2021-12-01T01:40:00+00:00"


def test_unchanged_end_gives_identical_status_until_stale() -> None:
    first = evaluate({}, {"1m": END}, T0, 120, running_since=T0).to_status()
    later = evaluate(first, {"1m": END}, T0 + timedelta(seconds=100), 120, running_since=T0)
    assert later.to_status() == first and not later.stale
    stale = evaluate(first, {"1m": END}, T0 + timedelta(seconds=121), 120, running_since=T0)
    assert stale.stale and "has not advanced since" in stale.reason
    again = evaluate(stale.to_status(), {"1m": END}, T0 + timedelta(seconds=500), 120, T0)
    assert again.reason == stale.reason  # no running counter in the message: no status churn


def test_advancing_end_is_fresh_and_updates_lag() -> None:
    first = evaluate({}, {"1m": END}, T0, 120, running_since=T0).to_status()
    now = T0 + timedelta(seconds=300)
    f = evaluate(first, {"1m": END + 10}, now, 120, running_since=T0)
    assert not f.stale and f.advanced_at == now
    assert f.lags_s["1m"] == int(now.timestamp()) - END - 10


def test_not_running_is_never_stale() -> None:
    first = evaluate({}, {"1m": END}, T0, 120, running_since=None).to_status()
    f = evaluate(first, {"1m": END}, T0 + timedelta(hours=5), 120, running_since=None)
    assert not f.stale


def test_staleness_counts_from_the_later_of_running_and_advance() -> None:
    """After a resume, an old advance does not make the pipeline stale at once."""
    first = evaluate({}, {"1m": END}, T0, 120, running_since=T0).to_status()
    resumed = T0 + timedelta(hours=1)
    f = evaluate(first, {"1m": END}, resumed + timedelta(seconds=60), 120, running_since=resumed)
    assert not f.stale


def test_no_leaderboard_at_all_becomes_stale_with_a_reason() -> None:
    f = evaluate({}, {}, T0 + timedelta(seconds=200), 120, running_since=T0)
    assert f.stale and "no 1m leaderboard" in f.reason
