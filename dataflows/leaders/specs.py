"""Which windows the dataflow computes: lengths, slide and the figure each one ranks by."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

PANE_MS = 10_000
"""Width of the sub-aggregates every window is built from; window ends are multiples of it."""


class Score(StrEnum):
    """The figure a window's symbols are ranked by."""

    MEAN = "mean"
    MAX = "max"


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Windows `[end - length_s, end)` whose ends are multiples of `slide_s` since the epoch."""

    name: str
    length_s: int
    slide_s: int
    score: Score = Score.MEAN

    def __post_init__(self) -> None:
        if self.length_s <= 0 or self.slide_s <= 0:
            raise ValueError(f"{self.name}: length_s and slide_s must be positive")
        if (self.length_s * 1000) % PANE_MS or (self.slide_s * 1000) % PANE_MS:
            raise ValueError(f"{self.name}: length_s and slide_s must be multiples of 10 s")

    @property
    def length_ms(self) -> int:
        return self.length_s * 1000

    @property
    def slide_ms(self) -> int:
        return self.slide_s * 1000

    @property
    def length_panes(self) -> int:
        return self.length_ms // PANE_MS

    def closes_at(self, end_ms: int) -> bool:
        """Whether a window of this spec ends at `end_ms` (a multiple of the pane width)."""
        return end_ms % self.slide_ms == 0


def duration_name(seconds: int) -> str:
    """60 -> "1m", 900 -> "15m", 3600 -> "1h", 90 -> "90s"."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def build_specs(
    lengths_s: tuple[int, ...] = (60, 300, 900), slide_s: int = 10, max_price_s: int = 300
) -> tuple[WindowSpec, ...]:
    """Sliding mean windows of each length, plus the tumbling top-price window."""
    sliding = tuple(WindowSpec(duration_name(n), n, slide_s, Score.MEAN) for n in lengths_s)
    top_price = WindowSpec(f"{duration_name(max_price_s)}_max", max_price_s, max_price_s, Score.MAX)
    return (*sliding, top_price)


DEFAULT_SPECS = build_specs()
