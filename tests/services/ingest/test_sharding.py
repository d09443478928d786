"""Rendezvous sharding: total, disjoint, minimal movement, and stable across processes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.ingest.sharding import assign, owner, score, shard_of

UNIVERSE = [f"S{i:04d}" for i in range(2000)]


@pytest.mark.parametrize("count", range(1, 17))
def test_assignment_is_total_and_disjoint(count: int) -> None:
    shards = assign(UNIVERSE, count)
    assert sorted(shards) == list(range(count))
    flat = [symbol for members in shards.values() for symbol in members]
    assert sorted(flat) == sorted(UNIVERSE)  # every symbol once: total and disjoint
    for index in range(count):
        assert shard_of(UNIVERSE, count, index) == shards[index]


@pytest.mark.parametrize("count", range(1, 16))
def test_growing_moves_about_one_in_n_plus_one(count: int) -> None:
    before = {symbol: owner(symbol, count) for symbol in UNIVERSE}
    after = {symbol: owner(symbol, count + 1) for symbol in UNIVERSE}
    moved = [symbol for symbol in UNIVERSE if before[symbol] != after[symbol]]
    # Only moves onto the new shard: nothing shuffles among the old ones.
    assert all(after[symbol] == count for symbol in moved)
    expected = len(UNIVERSE) / (count + 1)
    # Binomial(2000, 1/(N+1)): 4 standard deviations plus a little slack.
    sd = (len(UNIVERSE) * (1 / (count + 1)) * (count / (count + 1))) ** 0.5
    assert abs(len(moved) - expected) <= 4 * sd + 5


@pytest.mark.parametrize("count", [2, 5, 16])
def test_shards_are_balanced(count: int) -> None:
    sizes = [len(members) for members in assign(UNIVERSE, count).values()]
    mean = len(UNIVERSE) / count
    assert max(sizes) <= mean * 1.25 + 10
    assert min(sizes) >= mean * 0.75 - 10


def test_out_of_range_index_owns_nothing() -> None:
    assert shard_of(UNIVERSE, 3, 3) == []
    assert shard_of(UNIVERSE, 3, -1) == []
    with pytest.raises(ValueError):
        owner("AAPL", 0)


def test_stable_across_processes() -> None:
    """Python's str hash is salted per process; the assignment must not be."""
    code = (
        "from services.ingest.sharding import owner, score;"
        "print(score('AAPL', 3), [owner(f'S{i:04d}', 7) for i in range(50)])"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            capture_output=True,
            text=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "random")
    }
    assert outputs == {f"{score('AAPL', 3)} {[owner(f'S{i:04d}', 7) for i in range(50)]}\n"}


def test_known_values_do_not_change() -> None:
    """Pinned: changing the hash would move every symbol on the next deploy."""
    assert score("AAPL", 0) == 11085012724255325001
    assert [owner(s, 4) for s in ("AAPL", "MSFT", "600103", "BTC-USD")] == [3, 1, 3, 3]
