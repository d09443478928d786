"""Map each market-data CSV format (gzip'd or plain) onto the tick contract.

Every reader is a generator of `Row`s in file order: the `Tick` (event time in UTC ms,
`ingest_ts_ms` unset) and the row's own timestamp in the exchange's local time, which the
`from_time` filter compares against. Decisions, per format:

`lean-ticks` (`ts_et,symbol,price,size,exchange,sale_condition,suspicious`)
    One tick per trade: `price`, `size`, event time = `ts_et` with its written UTC offset
    (-04:00/-05:00). Rows with `suspicious == 1` are skipped: AlgoSeek flags them as far
    from the market and likely to be reversed, and Lean's own bars exclude them too.

`lean-second-bars`, `lean-minute-bars` (`ts_et,symbol,open,high,low,close,volume`)
    One tick per bar: price = `close`, size = `volume`, event time = the bar's close time,
    i.e. `ts_et` (the bar's start, as Lean writes it) plus the bar period. The close is only
    known once the bar has ended, so the tick never carries a price before it existed. The
    header is the same for both periods: auto-detection reads the period from the file name
    (`second`/`minute`), else from the timestamps of the first rows.

`sse-snapshots` (`SecurityID,DateTime,...,LastPx,TotalVolumeTrade,...`)
    A snapshot is a quote observation, so every snapshot row with a price is one tick, even
    when nothing changed since the previous one. symbol = `SecurityID` (as written, e.g.
    `600519`), price = `LastPx`, event time = `DateTime` in Asia/Shanghai. Rows with
    `LastPx == 0` (call auction before the first trade: not a price) are skipped. size = the
    increase of the cumulative `TotalVolumeTrade` since the security's previous row in the
    file (skipped rows included), or None for its first row or when the total decreased.

Rows with a non-positive or non-finite price are skipped in every format, so each yielded
tick encodes into a message that `stockstream.ticks.decode` accepts.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import islice
from operator import itemgetter
from pathlib import Path
from zoneinfo import ZoneInfo

from stockstream.ticks import Tick

SHANGHAI = ZoneInfo("Asia/Shanghai")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


class Format(StrEnum):
    """The CSV formats the replay understands; `auto` detects one from the header."""

    AUTO = "auto"
    LEAN_TICKS = "lean-ticks"
    LEAN_SECOND_BARS = "lean-second-bars"
    LEAN_MINUTE_BARS = "lean-minute-bars"
    SSE_SNAPSHOTS = "sse-snapshots"

    @property
    def source(self) -> str:
        """The tick's `source` field, e.g. `replay:sse-snapshots`."""
        return f"replay:{self.value}"


LEAN_TICK_COLUMNS = ("ts_et", "symbol", "price", "size", "suspicious")
LEAN_BAR_COLUMNS = ("ts_et", "symbol", "close", "volume")
SSE_COLUMNS = ("SecurityID", "DateTime", "LastPx", "TotalVolumeTrade")
BAR_PERIODS = {
    Format.LEAN_SECOND_BARS: timedelta(seconds=1),
    Format.LEAN_MINUTE_BARS: timedelta(minutes=1),
}
_SNIFF_ROWS = 200


@dataclass(frozen=True, slots=True)
class Row:
    """One tick and the timestamp its CSV row carries, in the exchange's local time."""

    tick: Tick
    local: datetime


def epoch_ms(moment: datetime) -> int:
    """A timezone-aware datetime as exact integer milliseconds since the Unix epoch."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}")
    return (moment - _EPOCH) // _ONE_MS


def valid_price(price: float) -> bool:
    """Whether the contract accepts `price` (finite and positive)."""
    return math.isfinite(price) and price > 0


def open_text(path: Path) -> io.TextIOBase:
    """The file as text; gzip is recognised by its magic bytes, not by the name."""
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    if gzipped:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def read_header(path: Path) -> list[str]:
    """The column names of the CSV file's first line."""
    with open_text(path) as text:
        return next(csv.reader(text), [])


def _has(header: Sequence[str], columns: Sequence[str]) -> bool:
    return set(columns) <= set(header)


def detect_format(path: Path) -> Format:
    """The format of `path`, from its header (and, for bars, the bar period)."""
    header = read_header(path)
    if _has(header, LEAN_TICK_COLUMNS):
        return Format.LEAN_TICKS
    if _has(header, SSE_COLUMNS):
        return Format.SSE_SNAPSHOTS
    if _has(header, LEAN_BAR_COLUMNS):
        return bar_format(path)
    raise ValueError(f"{path}: unknown CSV header {header!r}; set the format explicitly")


def bar_format(path: Path) -> Format:
    """Second or minute bars: from the file name, else from the first rows' timestamps."""
    name = path.name.lower()
    if "second" in name:
        return Format.LEAN_SECOND_BARS
    if "minute" in name:
        return Format.LEAN_MINUTE_BARS
    with open_text(path) as text:
        stamps = [record["ts_et"] for record in islice(csv.DictReader(text), _SNIFF_ROWS)]
    return bar_format_of(datetime.fromisoformat(stamp) for stamp in stamps)


def bar_format_of(starts: Iterable[datetime]) -> Format:
    """Minute bars when every bar starts on a whole minute, second bars otherwise."""
    whole_minutes = all(start.second == 0 and start.microsecond == 0 for start in starts)
    return Format.LEAN_MINUTE_BARS if whole_minutes else Format.LEAN_SECOND_BARS


def _records(path: Path, columns: Sequence[str]) -> Iterator[tuple[str, ...]]:
    """The named columns of every data row, in file order."""
    with open_text(path) as text:
        reader = csv.reader(text)
        header = next(reader, [])
        missing = [name for name in columns if name not in header]
        if missing:
            raise ValueError(f"{path}: missing columns {missing} in header {header!r}")
        pick = itemgetter(*(header.index(name) for name in columns))
        for fields in reader:
            if fields:
                yield pick(fields)


def aware(text: str) -> datetime:
    """An ISO 8601 timestamp that must carry its UTC offset."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return moment


def lean_tick_rows(path: Path) -> Iterator[Row]:
    """Lean trade ticks, without the suspicious ones."""
    source = Format.LEAN_TICKS.source
    for stamp, symbol, price_text, size_text, suspicious in _records(path, LEAN_TICK_COLUMNS):
        price = float(price_text)
        if suspicious.strip() == "1" or not valid_price(price):
            continue
        moment = aware(stamp)
        tick = Tick(symbol, price, epoch_ms(moment), float(size_text), source)
        yield Row(tick, moment)


def lean_bar_rows(path: Path, fmt: Format) -> Iterator[Row]:
    """Lean trade bars as one tick each, at the bar's close time."""
    period, source = BAR_PERIODS[fmt], fmt.source
    for stamp, symbol, close_text, volume_text in _records(path, LEAN_BAR_COLUMNS):
        price = float(close_text)
        if not valid_price(price):
            continue
        start = aware(stamp)
        tick = Tick(symbol, price, epoch_ms(start + period), float(volume_text), source)
        yield Row(tick, start)


def sse_time(text: str) -> datetime:
    """`2021.12.01T09:15:01.000` (Shanghai local time, no offset) as an aware datetime."""
    return datetime.fromisoformat(text.replace(".", "-", 2)).replace(tzinfo=SHANGHAI)


def volume_increment(previous: float | None, total: float) -> float | None:
    """Shares traded between two cumulative totals; None when not derivable."""
    if previous is None or total < previous:
        return None
    return total - previous


def sse_snapshot_rows(path: Path) -> Iterator[Row]:
    """SSE snapshots with a last price, sized by the cumulative volume's increase."""
    source = Format.SSE_SNAPSHOTS.source
    totals: dict[str, float] = {}
    for security, stamp, last_text, total_text in _records(path, SSE_COLUMNS):
        total = float(total_text)
        size = volume_increment(totals.get(security), total)
        totals[security] = total
        price = float(last_text)
        if not valid_price(price):
            continue
        moment = sse_time(stamp)
        yield Row(Tick(security, price, epoch_ms(moment), size, source), moment)


def reader_for(fmt: Format) -> Callable[[Path], Iterator[Row]]:
    """The row reader of a concrete (not `auto`) format."""
    if fmt is Format.LEAN_TICKS:
        return lean_tick_rows
    if fmt is Format.SSE_SNAPSHOTS:
        return sse_snapshot_rows
    if fmt in BAR_PERIODS:
        return lambda path: lean_bar_rows(path, fmt)
    raise ValueError(f"no reader for format {fmt!r}")
