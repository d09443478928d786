"""Each CSV format's mapping onto the tick contract: exact event times, prices and sizes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from services.replay.formats import (
    Format,
    bar_format_of,
    detect_format,
    epoch_ms,
    sse_time,
    volume_increment,
)
from services.replay.reader import iter_ticks
from stockstream.ticks import Tick, decode, encode
from tests.services.replay.samples import (
    LEAN_BAR_HEADER,
    LEAN_TICK_HEADER,
    SSE_HEADER,
    sse_row,
    write_csv,
)

# 2013-10-07T13:30:00.000Z, 2013-12-02T14:30:00.000Z, 2021-12-01T01:30:00.000Z
EDT_0930 = 1_381_152_600_000
EST_0930 = 1_385_994_600_000
SHANGHAI_0930 = 1_638_322_200_000


def as_tuples(ticks: list[Tick]) -> list[tuple[str, int, float, float | None]]:
    return [(t.symbol, t.ts_ms, t.price, t.size) for t in ticks]


CASES = [
    pytest.param(
        Format.LEAN_TICKS,
        LEAN_TICK_HEADER,
        [
            "2013-10-07T09:30:00.464-04:00,SPY,167.41,100,P,20002000,0",
            "2013-10-07T09:30:00.465-04:00,AIG,49.18,1400,N,0,0",
        ],
        [("SPY", EDT_0930 + 464, 167.41, 100.0), ("AIG", EDT_0930 + 465, 49.18, 1400.0)],
        id="lean-ticks-edt-offset",
    ),
    pytest.param(
        Format.LEAN_TICKS,
        LEAN_TICK_HEADER,
        ["2013-12-02T09:30:00.250-05:00,IBM,180.5,10,K,1,0"],
        [("IBM", EST_0930 + 250, 180.5, 10.0)],
        id="lean-ticks-est-offset",
    ),
    pytest.param(
        Format.LEAN_TICKS,
        LEAN_TICK_HEADER,
        [
            "2013-10-07T09:30:00.000-04:00,BAC,13.9,100,P,0,1",
            "2013-10-07T09:30:01.000-04:00,BAC,13.94,200,P,0,0",
        ],
        [("BAC", EDT_0930 + 1000, 13.94, 200.0)],
        id="lean-ticks-suspicious-skipped",
    ),
    pytest.param(
        Format.LEAN_TICKS,
        LEAN_TICK_HEADER,
        [
            "2013-10-07T09:30:00.000-04:00,BAC,0,100,P,0,0",
            "2013-10-07T09:30:00.000-04:00,BAC,-1.5,100,P,0,0",
            "2013-10-07T09:30:00.000-04:00,BAC,nan,100,P,0,0",
        ],
        [],
        id="lean-ticks-invalid-prices-skipped",
    ),
    pytest.param(
        Format.LEAN_SECOND_BARS,
        LEAN_BAR_HEADER,
        [
            "2013-10-07T09:30:00.000-04:00,AIG,49.18,49.2,49.1,49.15,300",
            "2013-10-07T09:30:05.000-04:00,SPY,167.41,167.5,167.4,167.45,2049",
        ],
        [("AIG", EDT_0930 + 1000, 49.15, 300.0), ("SPY", EDT_0930 + 6000, 167.45, 2049.0)],
        id="second-bars-close-at-bar-end",
    ),
    pytest.param(
        Format.LEAN_MINUTE_BARS,
        LEAN_BAR_HEADER,
        [
            "2013-12-02T09:30:00.000-05:00,SHY,84.26,84.28,84.23,84.27,3200",
            "2013-10-07T09:30:00.000-04:00,SPY,167.41,167.5,167.4,167.45,0",
        ],
        [("SHY", EST_0930 + 60_000, 84.27, 3200.0), ("SPY", EDT_0930 + 60_000, 167.45, 0.0)],
        id="minute-bars-close-at-bar-end-both-offsets",
    ),
    pytest.param(
        Format.SSE_SNAPSHOTS,
        SSE_HEADER,
        [
            sse_row("600000", "09:15:01.000", 0.0, 0, "OCALL"),
            sse_row("600000", "09:25:00.000", 10.2, 5000),
            sse_row("600000", "09:30:03.000", 10.25, 5300),
            sse_row("600000", "09:30:06.000", 10.25, 5300),
        ],
        [
            ("600000", SHANGHAI_0930 - 300_000, 10.2, 5000.0),
            ("600000", SHANGHAI_0930 + 3000, 10.25, 300.0),
            ("600000", SHANGHAI_0930 + 6000, 10.25, 0.0),
        ],
        id="sse-skip-zero-lastpx-size-from-cumulative-unchanged-still-a-tick",
    ),
    pytest.param(
        Format.SSE_SNAPSHOTS,
        SSE_HEADER,
        [
            sse_row("600000", "09:30:00.000", 10.0, 1000),
            sse_row("688001", "09:30:00.000", 50.0, 200),
            sse_row("600000", "09:30:03.000", 10.1, 1600),
            sse_row("688001", "09:30:03.000", 50.5, 150),
            sse_row("688001", "09:30:06.000", 50.6, 400),
        ],
        [
            ("600000", SHANGHAI_0930, 10.0, None),
            ("688001", SHANGHAI_0930, 50.0, None),
            ("600000", SHANGHAI_0930 + 3000, 10.1, 600.0),
            ("688001", SHANGHAI_0930 + 3000, 50.5, None),
            ("688001", SHANGHAI_0930 + 6000, 50.6, 250.0),
        ],
        id="sse-size-per-security-none-when-first-or-decreasing",
    ),
]


@pytest.mark.parametrize(("fmt", "header", "rows", "expected"), CASES)
def test_format_maps_rows_to_ticks(
    tmp_path: Path, fmt: Format, header: str, rows: list[str], expected: list[tuple]
) -> None:
    path = write_csv(tmp_path / "sample.csv.gz", header, rows)
    ticks = list(iter_ticks(path, fmt))
    assert as_tuples(ticks) == expected
    assert {t.source for t in ticks} <= {f"replay:{fmt.value}"}
    assert all(t.ingest_ts_ms is None for t in ticks)


@pytest.mark.parametrize(("fmt", "header", "rows", "expected"), CASES)
def test_every_tick_passes_the_contract(
    tmp_path: Path, fmt: Format, header: str, rows: list[str], expected: list[tuple]
) -> None:
    for tick in iter_ticks(write_csv(tmp_path / "sample.csv.gz", header, rows), fmt):
        assert decode(*encode(tick)) == tick


def test_plain_csv_is_read_too(tmp_path: Path) -> None:
    row = "2013-10-07T09:30:00.464-04:00,SPY,167.41,100,P,0,0"
    path = write_csv(tmp_path / "plain.csv", LEAN_TICK_HEADER, [row], gzipped=False)
    assert as_tuples(list(iter_ticks(path))) == [("SPY", EDT_0930 + 464, 167.41, 100.0)]


@pytest.mark.parametrize(
    ("name", "header", "rows", "expected"),
    [
        ("t.csv.gz", LEAN_TICK_HEADER, [], Format.LEAN_TICKS),
        ("s.csv.gz", SSE_HEADER, [], Format.SSE_SNAPSHOTS),
        ("second_bars.csv.gz", LEAN_BAR_HEADER, [], Format.LEAN_SECOND_BARS),
        ("minute_bars.csv.gz", LEAN_BAR_HEADER, [], Format.LEAN_MINUTE_BARS),
        (
            "bars.csv.gz",
            LEAN_BAR_HEADER,
            [
                "2013-10-07T09:30:00.000-04:00,A,1,1,1,1,1",
                "2013-10-07T09:30:01.000-04:00,A,1,1,1,1,1",
            ],
            Format.LEAN_SECOND_BARS,
        ),
        (
            "bars.csv.gz",
            LEAN_BAR_HEADER,
            [
                "2013-10-07T09:30:00.000-04:00,A,1,1,1,1,1",
                "2013-10-07T09:31:00.000-04:00,A,1,1,1,1,1",
            ],
            Format.LEAN_MINUTE_BARS,
        ),
    ],
)
def test_detect_format(
    tmp_path: Path, name: str, header: str, rows: list[str], expected: Format
) -> None:
    assert detect_format(write_csv(tmp_path / name, header, rows)) is expected


def test_unknown_header_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown CSV header"):
        detect_format(write_csv(tmp_path / "x.csv.gz", "a,b,c", ["1,2,3"]))


def test_explicit_format_with_missing_columns_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv.gz", LEAN_BAR_HEADER, [])
    with pytest.raises(ValueError, match="missing columns"):
        list(iter_ticks(path, Format.SSE_SNAPSHOTS))


def test_naive_lean_timestamp_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv.gz", LEAN_TICK_HEADER, ["2013-10-07T09:30:00,SPY,1,1,P,0,0"])
    with pytest.raises(ValueError, match="no UTC offset"):
        list(iter_ticks(path))


@pytest.mark.parametrize(
    ("text", "iso_utc"),
    [
        ("2021.12.01T09:15:01.000", "2021-12-01T01:15:01+00:00"),
        ("2021.12.01T00:00:00.500", "2021-11-30T16:00:00.500000+00:00"),
    ],
)
def test_sse_time_is_shanghai_local(text: str, iso_utc: str) -> None:
    moment = sse_time(text)
    offset = moment.utcoffset()
    assert offset is not None and offset.total_seconds() == 8 * 3600
    assert epoch_ms(moment) == epoch_ms(datetime.fromisoformat(iso_utc))


@pytest.mark.parametrize(
    ("previous", "total", "expected"),
    [(None, 100.0, None), (100.0, 100.0, 0.0), (100.0, 350.0, 250.0), (350.0, 100.0, None)],
)
def test_volume_increment(previous: float | None, total: float, expected: float | None) -> None:
    assert volume_increment(previous, total) == expected


@pytest.mark.parametrize(
    ("stamps", "expected"),
    [
        (["09:30:00", "09:31:00"], Format.LEAN_MINUTE_BARS),
        (["09:30:00", "09:30:01"], Format.LEAN_SECOND_BARS),
        (["09:30:00.500"], Format.LEAN_SECOND_BARS),
    ],
)
def test_bar_period_from_timestamps(stamps: list[str], expected: Format) -> None:
    starts = [datetime.fromisoformat(f"2013-10-07T{s}-04:00") for s in stamps]
    assert bar_format_of(starts) is expected


def test_epoch_ms_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError):
        epoch_ms(datetime(2021, 12, 1, 9, 30))
