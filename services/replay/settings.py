"""`ReplaySettings`: the replay producer's configuration, read from environment variables
(`REPLAY_FILE`, `REPLAY_SPEED`, ... plus the common `KAFKA_BOOTSTRAP_SERVERS`, `TICKS_TOPIC`,
`METRICS_PORT`, ...)."""

from __future__ import annotations

from datetime import time
from pathlib import Path

from pydantic import Field

from services.replay.formats import Format
from services.replay.reader import parse_symbols
from stockstream.settings import CommonSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
SSE_SAMPLE = Path("data/marketdata/sse-30-stocks/sse_snapshot_30stocks_20211201.csv.gz")


def default_replay_file() -> Path:
    """The bundled SSE snapshot file: in the source tree, else under the working directory
    (the container image keeps `data/` in its working directory, /app)."""
    in_repo = REPO_ROOT / SSE_SAMPLE
    return in_repo if in_repo.is_file() else Path.cwd() / SSE_SAMPLE


DEFAULT_FILE = default_replay_file()


class ReplaySettings(CommonSettings):
    """What to replay, how fast, and how much."""

    replay_file: Path = Field(
        default_factory=default_replay_file, description="Market-data CSV (gzip'd or plain)."
    )
    replay_format: Format = Field(
        Format.AUTO,
        description="lean-ticks, lean-second-bars, lean-minute-bars, sse-snapshots or auto "
        "(detected from the header).",
    )
    replay_speed: float = Field(
        0.0,
        ge=0,
        description="Event-time seconds per second: 0 = as fast as possible, 1 = real time.",
    )
    replay_loop: bool = Field(
        False, description="Replay the file again and again, shifted so event time increases."
    )
    replay_from: time | None = Field(
        None, description="Skip rows earlier in the day, local exchange time, e.g. 09:30."
    )
    replay_limit: int | None = Field(None, ge=0, description="Stop after this many ticks.")
    replay_symbols: str | None = Field(
        None, description="Comma-separated symbols to replay; empty = all."
    )
    replay_resume: bool = Field(
        False, description="Skip the ticks the topic already holds (after a crash): resume.py."
    )
    replay_flush_timeout_s: float = Field(
        30.0, ge=0, description="How long to wait for outstanding deliveries on exit."
    )

    @property
    def symbols(self) -> frozenset[str] | None:
        """`replay_symbols` as a set, or None for all symbols."""
        return parse_symbols(self.replay_symbols)
