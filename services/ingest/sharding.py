"""Rendezvous (highest-random-weight) hashing of symbols onto `count` shards.

Every shard scores every symbol with a fixed hash (BLAKE2b, never Python's salted `hash()`),
and the highest score owns it. So the assignment is the same in every process, every symbol
has exactly one owner, and going from N to N+1 shards moves only the symbols whose new
highest score is shard N: about 1/(N+1) of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import blake2b


def score(symbol: str, shard: int) -> int:
    """The weight of `shard` for `symbol`: 64 bits of BLAKE2b over both."""
    digest = blake2b(f"{shard}\x00{symbol}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(symbol: str, count: int) -> int:
    """The shard in `0..count-1` that owns `symbol` (ties, if ever, go to the lower shard)."""
    if count < 1:
        raise ValueError(f"shard count must be >= 1, not {count}")
    return max(range(count), key=lambda shard: (score(symbol, shard), -shard))


def assign(symbols: Iterable[str], count: int) -> dict[int, list[str]]:
    """Every shard's symbols (each list in the input order; empty shards included)."""
    shards: dict[int, list[str]] = {shard: [] for shard in range(count)}
    for symbol in symbols:
        shards[owner(symbol, count)].append(symbol)
    return shards


def shard_of(symbols: Iterable[str], count: int, index: int) -> list[str]:
    """The symbols shard `index` of `count` owns, in input order (none if `index` is out of
    range, e.g. a pod that is being scaled away)."""
    if not 0 <= index < count:
        return []
    return [symbol for symbol in symbols if owner(symbol, count) == index]
