"""Market hours with a frozen clock: regular sessions, holidays, early closes, lunch
breaks, weekends and time zones, from the exchange calendar library."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.ingest.schedule import AlwaysOpen, ExchangeHours, SessionState, market_hours

NY = ZoneInfo("America/New_York")
SH = ZoneInfo("Asia/Shanghai")


def at(zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone)


@pytest.fixture(scope="module")
def xnys() -> ExchangeHours:
    return ExchangeHours("XNYS")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # A regular session (Tue 2024-12-03): 09:30-16:00 New York time.
        (at(NY, 2024, 12, 3, 9, 29), SessionState(False, at(NY, 2024, 12, 3, 9, 30))),
        (at(NY, 2024, 12, 3, 9, 30), SessionState(True, at(NY, 2024, 12, 3, 16, 0))),
        (at(NY, 2024, 12, 3, 15, 59), SessionState(True, at(NY, 2024, 12, 3, 16, 0))),
        (at(NY, 2024, 12, 3, 16, 0), SessionState(False, at(NY, 2024, 12, 4, 9, 30))),
        # Christmas 2024 (Wed): a holiday; next open is Thursday.
        (at(NY, 2024, 12, 25, 11, 0), SessionState(False, at(NY, 2024, 12, 26, 9, 30))),
        (at(NY, 2024, 12, 24, 13, 30), SessionState(False, at(NY, 2024, 12, 26, 9, 30))),
        # Early closes: the day after Thanksgiving and Christmas Eve close at 13:00.
        (at(NY, 2024, 11, 29, 12, 59), SessionState(True, at(NY, 2024, 11, 29, 13, 0))),
        (at(NY, 2024, 11, 29, 13, 0), SessionState(False, at(NY, 2024, 12, 2, 9, 30))),
        (at(NY, 2024, 11, 28, 10, 0), SessionState(False, at(NY, 2024, 11, 29, 9, 30))),
        # A weekend.
        (at(NY, 2024, 12, 7, 12, 0), SessionState(False, at(NY, 2024, 12, 9, 9, 30))),
        # The same instant in other zones: 14:30 UTC is 09:30 New York in winter ...
        (datetime(2024, 12, 3, 14, 30, tzinfo=UTC), SessionState(True, at(NY, 2024, 12, 3, 16))),
        (at(SH, 2024, 12, 3, 22, 30), SessionState(True, at(NY, 2024, 12, 3, 16))),
        # ... and 13:30 UTC in summer (daylight saving time).
        (datetime(2024, 7, 2, 13, 30, tzinfo=UTC), SessionState(True, at(NY, 2024, 7, 2, 16))),
        (
            datetime(2024, 12, 3, 13, 30, tzinfo=UTC),
            SessionState(False, at(NY, 2024, 12, 3, 9, 30)),
        ),
    ],
)
def test_xnys(xnys: ExchangeHours, now: datetime, expected: SessionState) -> None:
    assert xnys.state(now) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (at(SH, 2024, 12, 3, 10, 0), SessionState(True, at(SH, 2024, 12, 3, 11, 30))),
        (at(SH, 2024, 12, 3, 12, 0), SessionState(False, at(SH, 2024, 12, 3, 13, 0))),  # lunch
        (at(SH, 2024, 12, 3, 14, 0), SessionState(True, at(SH, 2024, 12, 3, 15, 0))),
        # National Day Golden Week.
        (at(SH, 2024, 10, 2, 10, 0), SessionState(False, at(SH, 2024, 10, 8, 9, 30))),
    ],
)
def test_shanghai_lunch_break_and_holidays(now: datetime, expected: SessionState) -> None:
    assert market_hours("XSHG").state(now) == expected


def test_always_open_and_errors() -> None:
    now = datetime(2024, 12, 25, tzinfo=UTC)
    assert market_hours("24/7").state(now).open
    assert isinstance(market_hours("24/7"), AlwaysOpen)
    assert market_hours("24/7").state(now).until > now + timedelta(days=365)
    with pytest.raises(ValueError):
        market_hours("XNYS").state(datetime(2024, 12, 3, 12, 0))  # naive
    with pytest.raises(Exception, match="NOPE"):
        market_hours("NOPE")


def test_calendar_reloads_far_from_its_range(xnys: ExchangeHours) -> None:
    hours = ExchangeHours("XNYS")
    assert hours.state(at(NY, 2011, 3, 1, 10, 0)) == SessionState(True, at(NY, 2011, 3, 1, 16))
    assert hours.state(at(NY, 2011, 12, 26, 10, 0)).open is False  # Christmas observed (Mon)
