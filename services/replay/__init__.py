"""Replay producer: publishes real market data from a CSV file as ticks."""

from services.replay.reader import iter_ticks

__all__ = ["iter_ticks"]
