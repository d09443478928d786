"""Assertions that computed windows equal the oracle's, to float tolerance."""

from __future__ import annotations

import math
from collections.abc import Mapping

from tests.dataflows.leaders.oracle import OracleWindow

REL = 1e-9


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=REL, abs_tol=1e-12)


def assert_same_leaders(
    where: str, leaders: list[tuple[str, float]], expected: OracleWindow, score: str
) -> None:
    """Same scores in order; a different symbol is allowed only where scores tie."""
    assert len(leaders) == len(expected.leaders), f"{where}: {leaders} != {expected.leaders}"
    for (symbol, value), (want_symbol, want_value) in zip(leaders, expected.leaders, strict=True):
        assert close(value, want_value), f"{where}: {leaders} != {expected.leaders}"
        if symbol != want_symbol:
            tied = getattr(expected.rows[symbol], score)
            assert close(tied, want_value), f"{where}: {leaders} != {expected.leaders}"


def assert_same_rows(where: str, rows: Mapping[str, object], expected: OracleWindow) -> None:
    """Every symbol's figures equal the oracle's (attributes of the same names)."""
    assert sorted(rows) == sorted(expected.rows), f"{where}: symbols differ"
    for symbol, want in expected.rows.items():
        got = rows[symbol]
        for name in (
            "count",
            "mean",
            "min",
            "max",
            "first",
            "last",
            "vwap",
            "gain_pct",
            "volatility",
        ):
            assert close(getattr(got, name), getattr(want, name)), (
                f"{where} {symbol}.{name}: {getattr(got, name)} != {getattr(want, name)}"
            )
