"""The symbol universe: `SYMBOLS` (comma list) or `SYMBOLS_FILE` (one per line, `#`
comments; the ConfigMap mount), validated against the tick contract's symbol pattern."""

from __future__ import annotations

from pathlib import Path

from stockstream.ticks import SYMBOL_PATTERN


def parse_universe(text: str, *, separator: str | None = None) -> list[str]:
    """Symbols in first-seen order, without duplicates, blanks or `#` comments. Raises
    ValueError naming any symbol the tick contract would reject."""
    pieces = text.split(separator) if separator else text.splitlines()
    symbols: list[str] = []
    seen: set[str] = set()
    for piece in pieces:
        symbol = piece.split("#", 1)[0].strip()
        if not symbol or symbol in seen:
            continue
        if not SYMBOL_PATTERN.fullmatch(symbol):
            raise ValueError(f"invalid symbol {symbol!r} in the universe")
        seen.add(symbol)
        symbols.append(symbol)
    return symbols


def load_universe(symbols: str | None, symbols_file: Path | None) -> list[str] | None:
    """`symbols` if given, else the file's symbols, else None (no universe configured)."""
    if symbols and symbols.strip():
        return parse_universe(symbols, separator=",")
    if symbols_file is not None:
        return parse_universe(symbols_file.read_text(encoding="utf-8"))
    return None


def simulated_universe(count: int) -> list[str]:
    """`SIM0000`, `SIM0001`, ...: the simulator's universe when none is configured."""
    width = max(4, len(str(count - 1)))
    return [f"SIM{i:0{width}d}" for i in range(count)]
