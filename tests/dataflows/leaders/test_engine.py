"""The partition engine and the ranking merge against the brute-force oracle."""

from __future__ import annotations

import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflows.leaders.engine import NO_MORE_WINDOWS_MS, PartitionEngine, top_n
from dataflows.leaders.panes import Figures
from dataflows.leaders.ranking import RankedWindow, SpecRanking
from dataflows.leaders.specs import DEFAULT_SPECS, WindowSpec, build_specs
from stockstream.ticks import Tick
from tests.dataflows.leaders.compare import assert_same_leaders, assert_same_rows
from tests.dataflows.leaders.oracle import oracle_windows, split_late

LATENESS_MS = 5_000
BASE_MS = 1_381_152_600_000  # 2013-10-07 13:30:00 UTC, a multiple of 10 s


def run_engines(
    arrivals: list[Tick],
    partitions: int,
    specs: tuple[WindowSpec, ...] = DEFAULT_SPECS,
    seed: int = 0,
    prepare: bool = False,
) -> tuple[list[RankedWindow], list[Tick]]:
    """Feed ticks through one engine per partition in random batches, interleaving the
    partitions' reports into the rankings in a random order, then end the input. `prepare`:
    after every tick, fold the next end's older panes ahead when the engine would."""
    rng = random.Random(seed)
    partition_of = {s: f"p{hash(s) % partitions}" for s in {t.symbol for t in arrivals}}
    engines = {p: PartitionEngine(p, specs, LATENESS_MS) for p in set(partition_of.values())}
    rankings = {s.name: SpecRanking(s, frozenset(engines)) for s in specs}
    queues: dict[str, list[Tick]] = {p: [] for p in engines}
    for tick in arrivals:
        queues[partition_of[tick.symbol]].append(tick)
    ranked: list[RankedWindow] = []
    late: list[Tick] = []
    cursors = dict.fromkeys(engines, 0)
    while any(cursors[p] < len(queues[p]) for p in engines):
        p = rng.choice([p for p in engines if cursors[p] < len(queues[p])])
        batch = queues[p][cursors[p] : cursors[p] + rng.randint(1, 40)]
        cursors[p] += len(batch)
        for tick in batch:
            if not engines[p].ingest(tick):
                late.append(tick)
            if prepare:
                engines[p].prepare_ahead()
        for report in engines[p].close_ready(now_s=0.0):
            ranked += rankings[report.spec].add(report)
    for p in rng.sample(sorted(engines), len(engines)):
        for report in engines[p].close_all(now_s=0.0):
            assert report.closed_through_ms == NO_MORE_WINDOWS_MS
            ranked += rankings[report.spec].add(report)
    for ranking in rankings.values():
        ranked += ranking.flush()
    return ranked, late


def check_against_oracle(
    arrivals: list[Tick], partitions: int, seed: int = 0, prepare: bool = False
) -> None:
    ranked, late = run_engines(arrivals, partitions, seed=seed, prepare=prepare)
    partition_of = {s: hash(s) % partitions for s in {t.symbol for t in arrivals}}
    accepted, want_late = split_late(arrivals, partition_of.__getitem__, LATENESS_MS)
    order = lambda t: (t.symbol, t.ts_ms, t.price)  # noqa: E731 - sort key
    assert sorted(late, key=order) == sorted(want_late, key=order)
    expected = oracle_windows(accepted, DEFAULT_SPECS)
    got = {(w.spec, w.end_ms): w for w in ranked}
    assert len(got) == len(ranked), "a window was emitted twice"
    assert sorted(got) == sorted(expected)
    for key, want in expected.items():
        window = got[key]
        where = f"{key[0]}@{key[1]}"
        assert window.partial == want.partial, where
        spec = next(s for s in DEFAULT_SPECS if s.name == key[0])
        assert_same_leaders(where, list(window.leaders), want, spec.score.value)
        assert_same_rows(where, {row.symbol: row for row in window.rows}, want)


@st.composite
def tick_streams(draw: st.DrawFn) -> list[Tick]:
    """Random streams: gaps, duplicate timestamps, sizes or none, out of order within (and
    sometimes beyond) the lateness."""
    symbols = draw(st.lists(st.sampled_from("ABCDEFGH"), min_size=1, max_size=6, unique=True))
    count = draw(st.integers(1, 120))
    ts = BASE_MS + draw(st.integers(0, 20_000))
    ticks = []
    for _ in range(count):
        ts += draw(st.sampled_from([0, 0, 7, 900, 3_000, 9_999, 10_000, 45_000, 400_000]))
        jitter = draw(st.sampled_from([0, 0, 0, -1_000, -4_999, -5_000, -5_001, -12_000]))
        price = draw(st.sampled_from([1.0, 9.5, 10.0, 10.25, 99.99, 100.0, 0.0101]))
        size = draw(st.sampled_from([None, 0.0, 1.0, 100.0, 250.5]))
        ticks.append(Tick(draw(st.sampled_from(symbols)), price, ts + jitter, size, "test"))
    return ticks


@settings(max_examples=120, deadline=None)
@given(
    arrivals=tick_streams(),
    partitions=st.integers(1, 3),
    seed=st.integers(0, 9),
    prepare=st.booleans(),
)
def test_random_streams_match_oracle(
    arrivals: list[Tick], partitions: int, seed: int, prepare: bool
) -> None:
    check_against_oracle(arrivals, partitions, seed, prepare)


CASES = {
    "one tick": [Tick("A", 10.0, BASE_MS + 1, 5.0)],
    "one symbol, equal timestamps keep arrival order": [
        Tick("A", 10.0, BASE_MS + 5),
        Tick("A", 12.0, BASE_MS + 5),
        Tick("A", 11.0, BASE_MS + 5),
    ],
    "gap longer than the longest window": [
        Tick("A", 10.0, BASE_MS),
        Tick("B", 20.0, BASE_MS + 3_600_000),
    ],
    "tie on mean broken by symbol": [Tick(s, 10.0, BASE_MS + i) for i, s in enumerate("DCBA")],
    "tick exactly at the lateness bound is kept, one ms older is late": [
        Tick("A", 10.0, BASE_MS + 20_000),
        Tick("A", 11.0, BASE_MS + 15_000),
        Tick("A", 12.0, BASE_MS + 14_999),
    ],
}


@pytest.mark.parametrize("prepare", [False, True])
@pytest.mark.parametrize("partitions", [1, 2])
@pytest.mark.parametrize("name", sorted(CASES))
def test_cases_match_oracle(name: str, partitions: int, prepare: bool) -> None:
    check_against_oracle(CASES[name], partitions, prepare=prepare)


def test_closes_prepared_ahead_equal_full_folds() -> None:
    """An engine that folds each next end's older panes ahead (`prepare_ahead`, as the source
    calls it between batches) reports the same parts, bit for bit, as one that folds every
    pane at the close; and it does prepare most ends (a steady stream, one tick a second,
    new symbols joining and others leaving)."""
    ticks = [
        Tick(
            symbol,
            10.0 + (i * 7 + ord(symbol)) % 13 / 4,
            BASE_MS + i * 1_000,
            None if i % 5 == 0 else float(i % 9),
            "test",
        )
        for i in range(1_500)
        for symbol in "ABCDE"[(i // 400) % 3 : 3 + (i // 300) % 3]
    ]
    plain = PartitionEngine("0", DEFAULT_SPECS, LATENESS_MS)
    ahead = PartitionEngine("0", DEFAULT_SPECS, LATENESS_MS)
    prepared = 0
    for tick in ticks:
        assert plain.ingest(tick) == ahead.ingest(tick)
        prepared += ahead.prepare_ahead()
        assert ahead.close_ready(0.0) == plain.close_ready(0.0)
    assert plain.close_all(0.0) == ahead.close_all(0.0)
    assert prepared >= 140  # of 150 ends


def test_late_tick_is_reported_and_not_counted() -> None:
    engine = PartitionEngine("p0", DEFAULT_SPECS, LATENESS_MS)
    assert engine.ingest(Tick("A", 10.0, BASE_MS + 20_000))
    assert not engine.ingest(Tick("A", 99.0, BASE_MS + 14_999))
    assert engine.watermark_ms == BASE_MS + 15_000


def test_idle_time_advances_the_watermark_and_closes_windows() -> None:
    spec = build_specs((60,), 10, 300)
    engine = PartitionEngine("p0", spec, LATENESS_MS)
    engine.ingest(Tick("A", 10.0, BASE_MS + 1_000))
    assert all(not r.parts for r in engine.close_ready(now_s=0.0))
    engine.advance_idle(14_000)  # watermark = 1 s - 5 s + 14 s = BASE + 10 s
    (report_1m, _) = engine.close_ready(now_s=0.0)
    assert [p.end_ms for p in report_1m.parts] == [BASE_MS + 10_000]
    assert report_1m.closed_through_ms == BASE_MS + 10_000


def test_watermark_never_goes_back() -> None:
    engine = PartitionEngine("p0", DEFAULT_SPECS, LATENESS_MS)
    engine.ingest(Tick("A", 10.0, BASE_MS + 50_000))
    engine.advance_idle(30_000)
    engine.ingest(Tick("A", 10.0, BASE_MS + 76_000))
    assert engine.watermark_ms == BASE_MS + 75_000


def continuation_case() -> tuple[PartitionEngine, int]:
    """An engine that ended its input after one tick: (engine, the last window end it closed)."""
    engine = PartitionEngine("p0", DEFAULT_SPECS, LATENESS_MS)
    assert engine.ingest(Tick("A", 10.0, BASE_MS + 1_000, None, "t"))
    reports = engine.close_all(now_s=0.0)
    last_end = max(part.end_ms for report in reports for part in report.parts)
    assert last_end == BASE_MS + 15 * 60_000  # the last 15-minute window holding the tick
    return engine, last_end


@pytest.mark.parametrize(
    ("offset_ms", "accepted"),
    [
        (-1, False),  # a tick of a window already emitted at the end of input: late
        (0, True),  # the first tick of a window never emitted
        (3_600_000, True),  # an hour later (a continued replay)
    ],
)
def test_an_engine_goes_on_after_its_end_of_input(offset_ms: int, accepted: bool) -> None:
    engine, last_end = continuation_case()
    tick = Tick("A", 11.0, last_end + offset_ms, None, "t")
    assert engine.ingest(tick) is accepted
    if accepted:
        closed = [
            part.end_ms
            for report in engine.close_all(now_s=0.0)
            for part in report.parts
            if part.spec == "1m"
        ]
        first_end = (tick.ts_ms // 10_000 + 1) * 10_000
        assert closed == list(range(first_end, first_end + 60_000, 10_000))


def test_a_restored_ranking_waits_again_for_partitions_whose_input_had_ended() -> None:
    spec = DEFAULT_SPECS[0]
    engines = [PartitionEngine(p, (spec,), LATENESS_MS) for p in ("p0", "p1")]
    ranking = SpecRanking(spec, frozenset({"p0", "p1"}))
    for index, engine in enumerate(engines):
        engine.ingest(Tick(f"S{index}", 10.0 + index, BASE_MS + 1_000, None, "t"))
        for report in engine.close_all(now_s=0.0):
            ranking.add(report)
    ranking.flush()
    ranking.resume_after_end_of_input()
    later = BASE_MS + 3_600_000
    engines[0].ingest(Tick("S0", 20.0, later, None, "t"))
    ranked = [w for r in engines[0].close_all(now_s=0.0) for w in ranking.add(r)]
    assert ranked == [], "ranked before p1 said how far it has closed"
    engines[1].ingest(Tick("S1", 30.0, later, None, "t"))
    ranked = [w for r in engines[1].close_all(now_s=0.0) for w in ranking.add(r)]
    assert [w.end_ms for w in ranked] == list(range(later + 10_000, later + 70_000, 10_000))
    assert all(w.leaders == (("S1", 30.0), ("S0", 20.0)) for w in ranked)


def test_a_snapshot_leaves_the_prepared_fold_out_and_resumes_equal() -> None:
    """The prepared fold is a cache: an engine's snapshot does not carry it, and the restored
    engine closes the next end (folding every pane) with the same parts as the original."""
    engine = PartitionEngine("0", DEFAULT_SPECS, LATENESS_MS)
    for i in range(31):  # the watermark 25 s in: the end at 30 s may be prepared
        engine.ingest(Tick("A", 10.0 + i % 4, BASE_MS + i * 1_000, 1.0, "test"))
        engine.close_ready(0.0)
    assert engine.prepare_ahead()
    assert engine.prepared is not None
    restored = pickle.loads(pickle.dumps(engine))  # noqa: S301 - our own bytes
    assert restored.prepared is None
    tick = Tick("A", 12.5, BASE_MS + 36_000, 2.0, "test")  # the end at 30 s closes
    assert engine.ingest(tick) and restored.ingest(tick)
    assert restored.close_ready(0.0) == engine.close_ready(0.0) != []


def _row(symbol: str, mean: float) -> Figures:
    return Figures(symbol, 1, mean, mean, mean + 1.0, mean, mean, None, 0.0, 0.0)


TOP_CASES = [
    # (name, rows as (symbol, mean), n, expected symbols)
    ("no rows", [], 3, []),
    ("n = 0", [("A", 1.0)], 0, []),
    ("fewer rows than n", [("B", 1.0), ("A", 2.0)], 3, ["A", "B"]),
    (
        "ties at the n-th score go by symbol",
        [("E", 5.0), ("D", 5.0), ("C", 9.0), ("B", 5.0), ("A", 1.0)],
        3,
        ["C", "B", "D"],
    ),
    ("all tied", [("C", 2.0), ("B", 2.0), ("D", 2.0), ("A", 2.0)], 3, ["A", "B", "C"]),
    ("negative scores", [("A", -3.0), ("B", -1.0), ("C", -2.0)], 2, ["B", "C"]),
]


@pytest.mark.parametrize(
    ("rows", "n", "want"), [c[1:] for c in TOP_CASES], ids=[c[0] for c in TOP_CASES]
)
@pytest.mark.parametrize("score", ["mean", "max"])
def test_top_n_sorts_only_the_candidates_yet_equals_a_full_sort(
    rows: list[tuple[str, float]], n: int, want: list[str], score: str
) -> None:
    figures = tuple(_row(symbol, mean) for symbol, mean in rows)
    got = top_n(figures, score, n)
    assert [symbol for symbol, _ in got] == want
    full = sorted(figures, key=lambda r: (-r.score(score), r.symbol))[:n]
    assert got == tuple((r.symbol, r.score(score)) for r in full)
