"""Where windows meet Redis: a window ending too far ahead of the clock never becomes the
latest, and `stockstream-leaders clear-window` removes a bad latest window that landed anyway."""

from __future__ import annotations

import pytest
import redis
from prometheus_client import REGISTRY

from dataflows.leaders.clear_window import clear_window
from dataflows.leaders.redis_sink import LeaderboardWriter
from dataflows.leaders.show import main as leaders_cli
from tests.dataflows.leaders.test_redis_sink import (
    END_MS,
    HISTORY_TTL_S,
    fig,
    latest_state,
    window,
)

pytestmark = pytest.mark.integration

YEAR_2100_MS = 4_102_444_800_000


def refused(spec: str) -> float:
    return (
        REGISTRY.get_sample_value("stockstream_windows_not_latest_future_total", {"window": spec})
        or 0.0
    )


@pytest.mark.parametrize(
    ("ahead_of_clock_s", "becomes_latest"),
    [(None, False), (10**10, True)],  # default bound (300 s); a bound past 2100
    ids=["refused", "bound-past-2100"],
)
def test_far_future_window_does_not_become_latest(
    redis_client: redis.Redis,
    redis_url: str,
    ahead_of_clock_s: float | None,
    becomes_latest: bool,
) -> None:
    client = redis.Redis.from_url(redis_url)
    bound = {} if ahead_of_clock_s is None else {"max_ahead_of_clock_s": ahead_of_clock_s}
    writer = LeaderboardWriter(client, HISTORY_TTL_S, 0.2, **bound)
    real = window([fig("AAA", 10.0), fig("BBB", 20.0)], end_ms=END_MS)
    assert writer.write(real) is True
    before, counted = latest_state(redis_client), refused("1m")

    bad = window([fig("AAA", 99.0)], end_ms=YEAR_2100_MS)
    assert writer.write(bad) is becomes_latest

    if becomes_latest:
        assert int(redis_client.hget("window:1m", "end") or 0) == YEAR_2100_MS // 1000
        return
    assert latest_state(redis_client) == before
    assert refused("1m") - counted == 1
    # The next real window still becomes the latest.
    assert writer.write(window([fig("AAA", 11.0)], end_ms=END_MS + 10_000)) is True


def test_clear_window_removes_a_bad_latest_window(
    redis_client: redis.Redis, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = redis.Redis.from_url(redis_url)
    landed = LeaderboardWriter(client, HISTORY_TTL_S, 0.2, max_ahead_of_clock_s=10**10)
    landed.write(window([fig("AAA", 10.0), fig("BBB", 20.0)], end_ms=END_MS))
    landed.write(window([fig("AAA", 99.0)], end_ms=YEAR_2100_MS))  # an old release's bad window
    landed.write(window([fig("CCC", 5.0)], spec="5m", length_s=300, end_ms=END_MS))
    guarded = LeaderboardWriter(client, HISTORY_TTL_S, 0.2)
    frozen = window([fig("AAA", 12.0)], end_ms=END_MS + 10_000)
    assert guarded.write(frozen) is False  # the bad window freezes the latest keys

    with pytest.raises(ValueError, match="not 123"):
        clear_window(client, "1m", expected_end_s=123)
    assert (
        leaders_cli(
            [
                "clear-window",
                "1m",
                "--end",
                str(YEAR_2100_MS // 1000),
                "--yes",
                "--redis-url",
                redis_url,
            ]
        )
        == 0
    )
    assert "cleared 1m window ending at 4102444800" in capsys.readouterr().out

    bad_s = YEAR_2100_MS // 1000
    for key in (
        "leaders:1m",
        "means:1m",
        "gainers:1m",
        "window:1m",
        f"history:leaders:1m:{bad_s}",
        f"history:means:1m:{bad_s}",
    ):
        assert not redis_client.exists(key), key
    assert redis_client.hget("figures:AAA", "1m.window_end") is None
    assert redis_client.hget("figures:CCC", "5m.mean") == b"5.0"  # other specs untouched
    assert redis_client.exists(f"history:leaders:1m:{END_MS // 1000}")  # real history kept
    assert guarded.write(frozen) is True  # the next real window is the latest again
    assert clear_window(client, "15m").end_s is None  # nothing there: nothing cleared
