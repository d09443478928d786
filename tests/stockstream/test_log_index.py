"""stockstream.log_index: which daily log indices the retention deletes (pure logic).

The commands themselves run against a real OpenSearch in tests/observability/test_log_search.py
and on the cluster in tests/userpath.
"""

from __future__ import annotations

from datetime import date

import pytest

from stockstream.log_index import LogIndexSettings, expired_indices, index_day

PREFIX = "stockstream-logs"
TODAY = date(2026, 12, 7)


@pytest.mark.parametrize(
    ("name", "day"),
    [
        ("stockstream-logs-2026.12.07", date(2026, 12, 7)),
        ("stockstream-logs-2024.02.29", date(2024, 2, 29)),
        ("stockstream-logs-2026.02.30", None),  # no such day
        ("stockstream-logs-2026.12.7", None),
        ("stockstream-logs-archive", None),
        ("stockstream-logs-2026.12.07-restored", None),
        ("other-stockstream-logs-2026.12.07", None),
        ("stockstream-logsx2026.12.07", None),
    ],
)
def test_index_day(name: str, day: date | None) -> None:
    assert index_day(name, PREFIX) == day


@pytest.mark.parametrize(
    ("retention_days", "expired"),
    [
        (
            1,
            [
                "stockstream-logs-2026.11.01",
                "stockstream-logs-2026.12.05",
                "stockstream-logs-2026.12.06",
            ],
        ),
        (2, ["stockstream-logs-2026.11.01", "stockstream-logs-2026.12.05"]),
        (3, ["stockstream-logs-2026.11.01"]),
        (36, ["stockstream-logs-2026.11.01"]),  # 36 days before today
        (37, []),
    ],
)
def test_expired_indices_keep_today_as_day_one(retention_days: int, expired: list[str]) -> None:
    names = [
        "stockstream-logs-2026.12.07",
        "stockstream-logs-2026.12.06",
        "stockstream-logs-2026.12.05",
        "stockstream-logs-2026.11.01",
        "stockstream-logs-archive",
        "stockstream-logs-2027.01.01",  # a clock ahead: kept
        "unrelated-2020.01.01",
    ]
    assert expired_indices(names, PREFIX, retention_days, TODAY) == expired


@pytest.mark.parametrize(
    "env", [{"LOG_RETENTION_DAYS": "0"}, {"LOG_INDEX_PREFIX": "Logs*"}, {"LOG_INDEX_WAIT_S": "0"}]
)
def test_settings_refuse_what_would_delete_or_never_wait(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=next(iter(env)).lower()):
        LogIndexSettings()
