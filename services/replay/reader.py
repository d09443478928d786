"""`iter_ticks`: exactly the ticks the replay producer publishes from a file, in file order.

The producer, the tests and the dataflow's oracle all read market data through this one
function, so they agree on every skipped row, price, size and timestamp.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import time
from pathlib import Path

from services.replay.formats import Format, Row, detect_format, reader_for
from stockstream.ticks import Tick


def resolve_format(path: Path, fmt: Format | str = Format.AUTO) -> Format:
    """`fmt` as a concrete format, detecting it from the file when it is `auto`."""
    chosen = Format(fmt)
    return detect_format(path) if chosen is Format.AUTO else chosen


def parse_symbols(text: str | None) -> frozenset[str] | None:
    """A comma-separated symbol list as a set; None (no filter) when empty."""
    symbols = frozenset(part.strip() for part in (text or "").split(",") if part.strip())
    return symbols or None


def keep_row(row: Row, from_time: time | None, symbols: frozenset[str] | None) -> bool:
    """Whether the row passes the local start-time and symbol filters."""
    if symbols is not None and row.tick.symbol not in symbols:
        return False
    return from_time is None or row.local.time() >= from_time


def iter_ticks(
    path: str | Path,
    fmt: Format | str = Format.AUTO,
    from_time: time | str | None = None,
    symbols: Iterable[str] | None = None,
) -> Iterator[Tick]:
    """The ticks of a market-data file, in file order, as the producer publishes them
    (without `ingest_ts_ms`, which is stamped at publish time).

    `fmt`: a `Format` or its name (`auto` detects it from the header). `from_time`: skip
    rows whose own timestamp, in the exchange's local time, is earlier in the day (e.g.
    `"09:30"`; for bars the bar's start). `symbols`: keep only these symbols.
    """
    file = Path(path)
    start = time.fromisoformat(from_time) if isinstance(from_time, str) else from_time
    wanted = frozenset(symbols) if symbols is not None else None
    for row in reader_for(resolve_format(file, fmt))(file):
        if keep_row(row, start, wanted):
            yield row.tick
