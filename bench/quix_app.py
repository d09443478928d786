"""The Quix Streams side of `bench.quix_peer`: runs under the Quix venv's python
(.cache/venv-quix), imports nothing from stockstream.

Consumes the ticks topic (key = symbol, JSON value with `price` and `ts` as RFC 3339), event
time from `ts` (timestamp extractor, ms), and per window length L in 60/300/900 s:

    hopping_window(L s, step 10 s, grace 5 s).agg(mean=Mean("price")).final("partition")

(`"partition"` closing: the partition's newest event time closes the windows of every key of
the partition, like our per-partition watermark; the default `"key"` would keep a symbol's
windows open until that symbol ticks again). Every closed (length, end, symbol, mean) is
written to a JSON-lines file; the top-3 step is `group_by` the window (length:end) -- Quix's
repartition topic on the same broker -- then a stateful `apply` keeping the window's best 3
(mean descending, symbol ascending), each update written as a `top3` line (the last one per
window is its final top-3). `--top3 sink` instead ranks in this process as the file is
written (no repartition topic).

Stops `--idle-s` seconds after the last message (Application.run(timeout=...)) once the
topic is consumed. Prints one JSON line: ticks, sustained ticks/s (ticks processed between
10 % and 90 % of `--expect`, over the wall time between those points, as bench.end_to_end
measures ours), the whole-run rate and the number of late ticks.

    .cache/venv-quix/bin/python bench/quix_app.py --bootstrap HOST:PORT --topic T \\
        --expect N --out windows.jsonl [--top3 groupby|sink]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from quixstreams import Application, State
from quixstreams.dataframe.windows import Mean

LENGTHS_S = (60, 300, 900)
STEP_MS = 10_000
GRACE_MS = 5_000
TOP_N = 3
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)


def spec_name(length_s: int) -> str:
    return f"{length_s // 60}m"


def event_ms(value: Any, headers: Any, timestamp: int, timestamp_type: Any) -> int:
    """`ts` ("2013-10-07T13:30:00.464Z") as epoch milliseconds."""
    return (datetime.fromisoformat(value["ts"]) - EPOCH) // ONE_MS


def ranked(top: list[list[Any]], symbol: str, mean: float) -> list[list[Any]]:
    """`top` with (symbol, mean) added: best `TOP_N`, mean descending, symbol ascending."""
    rows = [row for row in top if row[0] != symbol]
    rows.append([symbol, mean])
    rows.sort(key=lambda row: (-row[1], row[0]))
    return rows[:TOP_N]


class Progress:
    """Ticks seen, and when 10 % / 90 % of the expected ticks had been processed."""

    def __init__(self, expect: int) -> None:
        self.expect = expect
        self.count = 0
        self.late = 0
        self.first_s: float | None = None
        self.last_s: float | None = None
        self.lo: tuple[float, int] | None = None
        self.hi: tuple[float, int] | None = None

    def tick(self, value: Any) -> None:
        self.count += 1
        now = time.perf_counter()
        if self.first_s is None:
            self.first_s = now
        self.last_s = now
        if self.lo is None and self.count >= 0.1 * self.expect:
            self.lo = (now, self.count)
        if self.hi is None and self.count >= 0.9 * self.expect:
            self.hi = (now, self.count)

    def on_late(self, *args: Any) -> bool:
        self.late += 1
        return False  # counted, not logged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--expect", type=int, required=True, help="ticks in the topic")
    parser.add_argument("--out", required=True, help="JSON-lines file of the windows")
    parser.add_argument("--group", default=f"quix-bench-{int(time.time())}")
    parser.add_argument("--state-dir", default=None)
    parser.add_argument("--top3", choices=("groupby", "sink"), default="groupby")
    parser.add_argument(
        "--changelog",
        action="store_true",
        help="state changelog topics on (Quix's default; ours runs without recovery in the bench)",
    )
    parser.add_argument("--idle-s", type=float, default=3.0)
    args = parser.parse_args()

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir or f".cache/quix-state/{args.group}",
        use_changelog_topics=args.changelog,
        loglevel="WARNING",
    )
    topic = app.topic(
        args.topic, key_deserializer="str", value_deserializer="json", timestamp_extractor=event_ms
    )
    progress = Progress(args.expect)
    out = open(args.out, "w", buffering=1 << 20)  # noqa: SIM115 - closed after app.run
    sink_top: dict[tuple[str, int], list[list[Any]]] = {}

    sdf = app.dataframe(topic)
    sdf = sdf.update(progress.tick)
    for length_s in LENGTHS_S:
        name = spec_name(length_s)
        windows = (
            sdf.hopping_window(
                duration_ms=length_s * 1000,
                step_ms=STEP_MS,
                grace_ms=GRACE_MS,
                name=f"mean_{name}",
                on_late=progress.on_late,
            )
            .agg(mean=Mean("price"))
            .final(closing_strategy="partition")
        )

        def closed(
            value: Any, key: Any, timestamp: int, headers: Any, name: str = name
        ) -> dict[str, Any]:
            return {"spec": name, "end": value["end"], "symbol": key, "mean": value["mean"]}

        def write_mean(row: dict[str, Any]) -> None:
            out.write(json.dumps({"kind": "mean", **row}) + "\n")
            if args.top3 == "sink":
                window = (row["spec"], row["end"])
                sink_top[window] = ranked(sink_top.get(window, []), row["symbol"], row["mean"])

        windows = windows.apply(closed, metadata=True).update(write_mean)
        if args.top3 == "groupby":

            def top3(row: dict[str, Any], state: State) -> dict[str, Any]:
                top = ranked(state.get("top", []), row["symbol"], row["mean"])
                state.set("top", top)
                return {"kind": "top3", "spec": row["spec"], "end": row["end"], "top": top}

            (
                windows.group_by(lambda row: f"{row['spec']}:{row['end']}", name=f"top3_{name}")
                .apply(top3, stateful=True)
                .update(lambda row: out.write(json.dumps(row) + "\n"))
            )

    started = time.perf_counter()
    app.run(timeout=args.idle_s, collect=False)
    ended = time.perf_counter()
    for (name, end), top in sorted(sink_top.items()):
        out.write(json.dumps({"kind": "top3", "spec": name, "end": end, "top": top}) + "\n")
    out.close()

    lo, hi = progress.lo, progress.hi
    sustained = (
        (hi[1] - lo[1]) / (hi[0] - lo[0])
        if lo is not None and hi is not None and hi[0] > lo[0]
        else float("nan")
    )
    busy_s = (progress.last_s or ended) - started
    print(
        json.dumps(
            {
                "ticks": progress.count,
                "expect": args.expect,
                "late": progress.late,
                "sustained_tps": sustained,
                "busy_s": busy_s,
                "busy_tps": progress.count / busy_s if busy_s > 0 else float("nan"),
                "run_s": ended - started,
                "top3": args.top3,
                "changelog": args.changelog,
            }
        ),
        flush=True,
    )
    if progress.count != args.expect:
        logging.error("consumed %d ticks, expected %d", progress.count, args.expect)
        sys.exit(2)


if __name__ == "__main__":
    main()
