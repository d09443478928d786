"""`iter_ticks` over the repository's real market data: counts, filters, order, contract."""

from __future__ import annotations

from collections import Counter
from datetime import time
from itertools import islice
from pathlib import Path

import pytest

from services.replay import iter_ticks
from services.replay.formats import Format
from services.replay.reader import parse_symbols, resolve_format
from stockstream.ticks import decode, encode
from tests.services.replay.samples import (
    LEAN_MINUTE_FILE,
    LEAN_SECOND_FILE,
    LEAN_TICKS_FILE,
    SSE_FILE,
    SSE_HEADER,
    sse_row,
    write_csv,
)


@pytest.mark.parametrize(
    ("path", "fmt", "count"),
    [
        (SSE_FILE, Format.SSE_SNAPSHOTS, 31_772),  # 32,972 rows less 1,200 with LastPx 0
        (LEAN_TICKS_FILE, Format.LEAN_TICKS, 388_417),  # no row is flagged suspicious
        (LEAN_SECOND_FILE, Format.LEAN_SECOND_BARS, 38_043),
        (LEAN_MINUTE_FILE, Format.LEAN_MINUTE_BARS, 21_258),
    ],
)
def test_real_files_detected_and_counted(path: Path, fmt: Format, count: int) -> None:
    assert resolve_format(path) is fmt
    assert sum(1 for _ in iter_ticks(path)) == count


@pytest.mark.parametrize("path", [SSE_FILE, LEAN_SECOND_FILE, LEAN_MINUTE_FILE])
def test_real_ticks_pass_the_contract_and_increase_per_symbol(path: Path) -> None:
    last_ts: dict[str, int] = {}
    for tick in iter_ticks(path):
        assert decode(*encode(tick)) == tick
        assert tick.size is None or tick.size >= 0
        assert tick.ts_ms >= last_ts.get(tick.symbol, 0)
        last_ts[tick.symbol] = tick.ts_ms


def test_sse_file_has_thirty_securities_each_sized_from_the_auction_on() -> None:
    ticks = list(iter_ticks(SSE_FILE))
    assert len({t.symbol for t in ticks}) == 30
    assert all(t.size is not None for t in ticks)  # every security has a call-auction row first
    # 09:25:00 (opening auction trade) to 10:30:00 Asia/Shanghai
    assert (ticks[0].ts_ms, ticks[-1].ts_ms) == (1_638_321_900_000, 1_638_325_800_000)


@pytest.mark.parametrize(
    ("path", "from_time", "symbols", "expected"),
    [
        (SSE_FILE, "09:30", None, 31_685),
        (SSE_FILE, time(10, 0), None, 15_359),
        (SSE_FILE, None, ["600332", "688233"], 1_205 + 1_196),
        (LEAN_TICKS_FILE, None, ["SPY"], 250_601),
        (LEAN_TICKS_FILE, "09:30", ["IBM", "AIG"], 24_135 + 25_296),
        (LEAN_MINUTE_FILE, "16:00", ["SHY"], 3),  # 16:20, 16:58 EST; 16:03 EDT
    ],
)  # expected counts cross-checked with awk over the CSV
def test_filters(
    path: Path, from_time: str | time | None, symbols: list[str] | None, expected: int
) -> None:
    ticks = list(iter_ticks(path, from_time=from_time, symbols=symbols))
    assert len(ticks) == expected
    if symbols:
        assert {t.symbol for t in ticks} <= set(symbols)


def test_from_time_compares_local_exchange_time(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "s.csv.gz",
        SSE_HEADER,
        [
            sse_row("600000", "09:29:59.000", 10.0, 100),
            sse_row("600000", "09:30:00.000", 10.1, 150),
        ],
    )
    assert [t.price for t in iter_ticks(path, from_time="09:30")] == [10.1]
    # the filtered row still counts for the next row's size
    assert [t.size for t in iter_ticks(path, from_time="09:30")] == [50.0]


def test_file_order_is_kept() -> None:
    head = list(islice(iter_ticks(LEAN_TICKS_FILE), 5))
    assert [t.ts_ms % 1000 for t in head] == [464, 465, 465, 465, 465]
    assert Counter(t.symbol for t in head) == {"SPY": 5}


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, None), ("", None), (" , ", None), ("SPY", {"SPY"}), ("SPY, IBM ,", {"SPY", "IBM"})],
)
def test_parse_symbols(text: str | None, expected: set[str] | None) -> None:
    assert parse_symbols(text) == (None if expected is None else frozenset(expected))
