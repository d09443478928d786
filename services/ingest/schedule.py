"""Market hours: whether the configured exchange is in session, and until when.

Sessions, early closes, holidays, lunch breaks and time zones come from the maintained
`exchange_calendars` package (`EXCHANGE=XNYS`, `XSHG`, ...; no network needed). `24/7`
(crypto, simulation, replay) is always open. All times are timezone-aware UTC.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pandas as pd

log = logging.getLogger(__name__)

ALWAYS = "24/7"
_FAR = timedelta(days=3650)


@dataclass(frozen=True, slots=True)
class SessionState:
    """Open or not at a moment, and when that changes next."""

    open: bool
    until: datetime


class MarketHours(Protocol):
    """Anything that says whether trading is on at `now`."""

    name: str

    def state(self, now: datetime) -> SessionState: ...


class AlwaysOpen:
    """24/7: open now and for the next ten years."""

    name = ALWAYS

    def state(self, now: datetime) -> SessionState:
        return SessionState(True, now + _FAR)


class ExchangeHours:
    """An exchange calendar's sessions (reloaded when `now` nears the end of its range)."""

    def __init__(self, code: str) -> None:
        self.name = code
        self._load(datetime.now(UTC))

    def _load(self, around: datetime) -> None:
        with warnings.catch_warnings():  # pandas deprecation noise from inside the library
            warnings.simplefilter("ignore")
            self._load_calendar(around)

    def _load_calendar(self, around: datetime) -> None:
        import exchange_calendars

        self._loaded_for = around.date()
        start = pd.Timestamp(around - timedelta(days=30)).tz_localize(None).normalize()
        end = pd.Timestamp(around + timedelta(days=400)).tz_localize(None).normalize()
        try:
            cal = exchange_calendars.get_calendar(self.name, start=start, end=end)
        except ValueError as exc:  # holidays not recorded that far: the library's default end
            if "only recorded" not in str(exc):
                raise
            cal = exchange_calendars.get_calendar(self.name, start=start)
        # One row per open stretch: [open, break_start) and [break_end, close), or the
        # whole [open, close) on days without a break.
        stretches: list[tuple[pd.Timestamp, pd.Timestamp]] = []
        for session in cal.sessions:
            start, end = cal.session_open(session), cal.session_close(session)
            if cal.session_has_break(session):
                stretches.append((start, cal.session_break_start(session)))
                start = cal.session_break_end(session)
            stretches.append((start, end))
        self._opens = pd.DatetimeIndex([s for s, _ in stretches])
        self._closes = pd.DatetimeIndex([e for _, e in stretches])

    def _covers(self, now: datetime) -> bool:
        return self._opens[0] <= now and now + timedelta(days=30) < self._closes[-1]

    def _beyond(self, now: datetime) -> bool:
        return now >= self._closes[-1]

    def state(self, now: datetime) -> SessionState:
        """Open iff `now` is inside a stretch; `until` = its end or the next open."""
        if now.tzinfo is None:
            raise ValueError("naive datetime: market hours need an aware time")
        if not self._covers(now) and now.date() != self._loaded_for:
            self._load(now)  # at most once a day
        if self._beyond(now):  # the library has no sessions this far ahead: stay idle
            log.error("no exchange sessions known", extra={"exchange": self.name})
            return SessionState(False, now + timedelta(days=1))
        moment = pd.Timestamp(now).tz_convert(UTC)
        index = int(self._closes.searchsorted(moment, side="right"))
        if self._opens[index] <= moment:
            return SessionState(True, self._closes[index].to_pydatetime())
        return SessionState(False, self._opens[index].to_pydatetime())


def market_hours(exchange: str) -> MarketHours:
    """`24/7` or an exchange calendar code (unknown codes raise with the valid ones)."""
    if exchange.strip().lower() in (ALWAYS, "24x7", "always"):
        return AlwaysOpen()
    return ExchangeHours(exchange.strip().upper())
