"""Sample data for the replay tests: paths of the repository's files and CSV snippets."""

from __future__ import annotations

import gzip
from pathlib import Path

DATA = Path(__file__).resolve().parents[3] / "data" / "marketdata"
SSE_FILE = DATA / "sse-30-stocks" / "sse_snapshot_30stocks_20211201.csv.gz"
LEAN_TICKS_FILE = DATA / "lean-us-equities" / "tick_trades_20131007_AIG_BAC_IBM_SPY.csv.gz"
LEAN_SECOND_FILE = DATA / "lean-us-equities" / "second_trade_bars_20131007_AIG_BAC_IBM_SPY.csv.gz"
LEAN_MINUTE_FILE = DATA / "lean-us-equities" / "minute_trade_bars_10_symbols.csv.gz"

LEAN_TICK_HEADER = "ts_et,symbol,price,size,exchange,sale_condition,suspicious"
LEAN_BAR_HEADER = "ts_et,symbol,open,high,low,close,volume"
SSE_HEADER = (
    "SecurityID,DateTime,PreClosePx,OpenPx,HighPx,LowPx,LastPx,TotalVolumeTrade,"
    "TotalValueTrade,NumTrades,InstrumentStatus,BidPrice0,BidOrderQty0,OfferPrice0,OfferOrderQty0"
)


def write_csv(path: Path, header: str, rows: list[str], gzipped: bool = True) -> Path:
    """Write `header` and `rows` as a CSV file at `path` (gzip'd unless `gzipped=False`)."""
    content = "\n".join([header, *rows]) + "\n"
    if gzipped:
        path.write_bytes(gzip.compress(content.encode()))
    else:
        path.write_text(content)
    return path


def sse_row(
    security: str, local: str, last: float, total_volume: int, status: str = "TRADE"
) -> str:
    """One SSE snapshot row at `local` (HH:MM:SS.fff) on 2021-12-01; only SecurityID,
    DateTime, LastPx and TotalVolumeTrade matter to the replay."""
    return (
        f"{security},2021.12.01T{local},10.0,10.0,10.5,9.5,{last},{total_volume},0.0,0,"
        f"{status},9.99,100,10.01,100"
    )
