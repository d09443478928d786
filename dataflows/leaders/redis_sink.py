"""The Redis sink: each ranked window's leaderboard written in one atomic, idempotent, ordered
script call; then, in a second round trip, the figure hashes of the symbols of an end's latest
windows in one call for all of them, and those windows' history sets.

Keys, for a spec named N (`1m`, `5m`, `15m`, `5m_max`) and a window ending at E (epoch s):

- `leaders:N`            top-N symbols of the latest window, scored by mean (max for `_max`)
- `window:N`             hash: `end`, `start` (epoch s), `end_iso`, `start_iso`, `partial`,
                         `symbols`
- `means:N` / `max_price:<len>`   every symbol's mean (max) in the latest window
- `gainers:N`            every symbol's gain_pct in the latest window (mean specs)
- `history:<set>:N:E`    the same sets for each window, expiring after `history_ttl_s`
                         (a latest window's are copied from the latest keys just after)
- `figures:<SYMBOL>`     hash of the symbol's figures in each spec's latest window, `N.mean`, ...

The latest-window keys change only when E is not older than the end already there, so an
older window never overwrites a newer one, and a replay after recovery rewrites the same values.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import orjson
import redis
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from dataflows.leaders.future_guard import refuse_future_window
from dataflows.leaders.health import HEALTH
from dataflows.leaders.ranking import RankedWindow
from dataflows.leaders.specs import Score
from stockstream.metrics import (
    LEADERBOARD_WRITES,
    REDIS_ERRORS,
    WINDOW_EMIT_LATENCY,
    WINDOW_PHASE,
)
from stockstream.ticks import format_ts

log = logging.getLogger(__name__)

TO_SINK_PHASE = WINDOW_PHASE.labels(phase="to_sink")
REDIS_WINDOWS_PHASE = WINDOW_PHASE.labels(phase="redis_windows")
REDIS_FIGURES_HISTORY_PHASE = WINDOW_PHASE.labels(phase="redis_figures_history")

FIGURE_NAMES = ("mean", "count", "min", "max", "first", "last", "vwap", "gain_pct", "volatility")

WRITE_WINDOW_LUA = """
local meta, leaders, figure, gainers = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local h_leaders, h_figure, h_gainers = KEYS[5], KEYS[6], KEYS[7]
local end_s, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local doc = cjson.decode(ARGV[3])  -- the window's start and ISO times, partial
local has_gainers = gainers ~= ''

-- ARGV[5..7]: flat JSON arrays of strings, score, symbol, score, symbol... (the leaders,
-- every symbol's score, its gain): ZADD's argument order. Numbers come as text, the shortest
-- that reads back as the exact double: decoded as numbers they would print with 14 digits.
local leaders_flat, scores_flat = cjson.decode(ARGV[5]), cjson.decode(ARGV[6])

-- A flat list of score, member, score, member...: straight into ZADD, a few thousand
-- arguments a call (the most Lua's unpack takes at once is 8,000), into a key just deleted.
-- Redis 7.0 creates a new sorted set as a listpack whatever the number of members and
-- converts it at 128, which made a 500-member ZADD cost 1.8 ms instead of 0.35 ms. A first
-- member longer than zset-max-listpack-value (64 bytes; no symbol is longer than 32) makes
-- it a skiplist from the start; it is removed once the members are in.
local PLACEHOLDER = string.rep('~', 65)
local function zadd_all(key, flat)
  local large = #flat > 256  -- over zset-max-listpack-entries' default (128)
  if large then redis.call('ZADD', key, 0, PLACEHOLDER) end
  for first = 1, #flat, 2000 do
    redis.call('ZADD', key, unpack(flat, first, math.min(first + 1999, #flat)))
  end
  if large then redis.call('ZREM', key, PLACEHOLDER) end
end

-- The history keys are built afresh: a replay rewrites a window's history whole.
local function build(history_leaders, history_figure, history_gainers)
  redis.call('DEL', history_leaders, history_figure)
  zadd_all(history_leaders, leaders_flat)
  zadd_all(history_figure, scores_flat)
  if has_gainers then
    redis.call('DEL', history_gainers)
    zadd_all(history_gainers, cjson.decode(ARGV[7]))
  end
end

local current = tonumber(redis.call('HGET', meta, 'end') or '-1')
-- An older window, or one ending too far ahead of the clock (the far-future guard), is
-- written to its history keys only and never becomes the latest.
local refused = nil
if end_s < current then refused = 0 elseif end_s > tonumber(ARGV[4]) then refused = -1 end
if refused then
  build(h_leaders, h_figure, h_gainers)
  redis.call('EXPIRE', h_leaders, ttl)
  redis.call('EXPIRE', h_figure, ttl)
  if has_gainers then redis.call('EXPIRE', h_gainers, ttl) end
  return {refused}
end

-- The latest window: its sets are built in its (fresh) history keys, then renamed over the
-- latest ones, so no set is copied on the way to a visible leaderboard. `WRITE_HISTORY_LUA`
-- copies them back into the history keys in the sink's next round trip.
build(h_leaders, h_figure, h_gainers)
-- The symbols of the previous latest window that this one lacks (ZDIFF: Redis >= 6.2).
local gone = redis.call('ZDIFF', 2, figure, h_figure)
-- UNLINK frees the replaced set in Redis' background thread: RENAME over it would free its
-- members in the script (8 ms of 64 for an end's 4 windows at 10,000 symbols).
local function replace(built, latest)
  redis.call('UNLINK', latest)
  if redis.call('EXISTS', built) == 1 then  -- a set without members is no key at all
    redis.call('RENAME', built, latest)
  end
end
replace(h_leaders, leaders)
replace(h_figure, figure)
if has_gainers then replace(h_gainers, gainers) end
redis.call('HSET', meta, 'end', end_s, 'start', doc.start, 'end_iso', doc.end_iso,
  'start_iso', doc.start_iso, 'partial', doc.partial, 'symbols', #scores_flat / 2)

local result = {1}
for _, symbol in ipairs(gone) do table.insert(result, symbol) end
return result
"""

WRITE_HISTORY_LUA = """
-- A latest window's history: its latest sets copied into its history keys, which expire.
-- KEYS as `WRITE_WINDOW_LUA`'s; ARGV: end_s, ttl. Returns 0, copying nothing, if the latest
-- window of the spec is no longer this one (a newer window of the same spec in the same
-- batch, a replay): the sink then writes this window's history from its data.
local meta, end_s, ttl = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
if tonumber(redis.call('HGET', meta, 'end') or '-1') ~= end_s then return 0 end
for latest = 2, 4 do
  local history = KEYS[latest + 3]
  if history ~= '' then  -- a max spec has no gainers
    redis.call('DEL', history)
    if redis.call('COPY', KEYS[latest], history) == 1 then
      redis.call('EXPIRE', history, ttl)
    end
  end
end
return 1
"""

WRITE_FIGURES_LUA = """
-- The figures of the latest windows of one end, each spec at most once, in one call: one
-- HSET per symbol for all of them (a call per symbol and spec cost twice the time in Redis).
-- ARGV[1]: {"prefixes": ["1m.", ...], "ends": ["1638322200", ...], "stale": [[symbol, ...],
-- ...]}, a list entry per window; ARGV[2]: the key prefix, `figures:`.
-- ARGV[3]: one flat JSON array of strings, row after row: a symbol, then for each window its
-- figures in `names` order: 'null' for one it lacks, 'false' for all of them if the window
-- lacks the symbol. Numbers come as text, the shortest that reads back as the exact double:
-- decoded as numbers they would print with 14 digits.
local meta, figures_prefix = cjson.decode(ARGV[1]), ARGV[2]
local names = {FIGURE_NAMES_LIST}
local fields, end_fields = {}, {}
for w, prefix in ipairs(meta.prefixes) do
  fields[w] = {}
  for i, name in ipairs(names) do fields[w][i] = prefix .. name end
  end_fields[w] = prefix .. 'window_end'
end
local windows, per_window = #meta.prefixes, #names
-- The usual row (every window holds the symbol, no figure lacking) fills the values of one
-- prebuilt `field, value, ...` list: no table grows per value (Lua's `#` is not free).
local usual = {}
for w = 1, windows do
  for i = 1, per_window do usual[#usual + 1] = fields[w][i]; usual[#usual + 1] = '' end
  usual[#usual + 1] = end_fields[w]
  usual[#usual + 1] = meta.ends[w]
end
local rows = cjson.decode(ARGV[3])
local function write_unusual(key, base)
  local set, absent = {}, {}
  for w = 1, windows do
    local before = base + (w - 1) * per_window  -- figure i of window w is at before + i
    if rows[before + 1] ~= 'false' then
      local window_fields = fields[w]
      for i = 1, per_window do
        local value = rows[before + i]
        if value == 'null' then
          absent[#absent + 1] = window_fields[i]  -- e.g. vwap without sizes: not kept
        else
          set[#set + 1] = window_fields[i]
          set[#set + 1] = value
        end
      end
      set[#set + 1] = end_fields[w]
      set[#set + 1] = meta.ends[w]
    end
  end
  if #set > 0 then redis.call('HSET', key, unpack(set)) end
  if #absent > 0 then redis.call('HDEL', key, unpack(absent)) end
end
local values_per_row = windows * per_window
for base = 1, #rows, 1 + values_per_row do
  local key = figures_prefix .. rows[base]
  local is_usual, at = true, 0  -- `at`: the value's index in `usual`, less one
  for w = 1, windows do
    local before = base + (w - 1) * per_window
    for i = 1, per_window do
      local value = rows[before + i]
      if value == 'null' or value == 'false' then is_usual = false end
      usual[at + 2 * i] = value
    end
    at = at + 2 * (per_window + 1)
  end
  if is_usual then
    redis.call('HSET', key, unpack(usual))
  else
    write_unusual(key, base)
  end
end
-- The symbols each window lost since its spec's previous latest window.
for w, symbols in ipairs(meta.stale) do
  local stale = {}
  for i, field in ipairs(fields[w]) do stale[i] = field end
  stale[#stale + 1] = end_fields[w]
  for _, symbol in ipairs(symbols) do
    redis.call('HDEL', figures_prefix .. symbol, unpack(stale))
  end
end
return 1
""".replace("FIGURE_NAMES_LIST", ", ".join(f"'{name}'" for name in FIGURE_NAMES))

SCRIPTS = (WRITE_WINDOW_LUA, WRITE_HISTORY_LUA, WRITE_FIGURES_LUA)


@dataclass(frozen=True)
class WindowKeys:
    """The keys one spec's windows are written to."""

    meta: str
    leaders: str
    figure: str
    gainers: str
    history_leaders: str
    history_figure: str
    history_gainers: str

    @classmethod
    def of(cls, window: RankedWindow) -> WindowKeys:
        name, end_s = window.spec, window.end_ms // 1000
        if window.score == Score.MAX:
            figure = f"max_price:{name.removesuffix('_max')}"
            gainers = ""
        else:
            figure, gainers = f"means:{name}", f"gainers:{name}"
        return cls(
            meta=f"window:{name}",
            leaders=f"leaders:{name}",
            figure=figure,
            gainers=gainers,
            history_leaders=f"history:leaders:{name}:{end_s}",
            history_figure=f"history:{figure}:{end_s}",
            history_gainers=f"history:{gainers}:{end_s}" if gainers else "",
        )

    def as_list(self) -> list[str]:
        return [
            self.meta,
            self.leaders,
            self.figure,
            self.gainers,
            self.history_leaders,
            self.history_figure,
            self.history_gainers,
        ]


def _non_finite_as_text(value: Any) -> Any:
    """`value`, any tuples or lists in it rebuilt, with each non-finite float as its repr."""
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, tuple | list):
        return type(value)(map(_non_finite_as_text, value))
    return value


def flat_strings(items: list[tuple[Any, ...]]) -> bytes:
    """The items' values, in order and nested tuples flattened, as one flat JSON array of
    strings: `[(1.5, "AAA"), (None, "BBB", (2, False))]` gives
    `["1.5","AAA","null","BBB","2","false"]`.

    Every number travels as the text orjson writes for it: the shortest that reads back as the
    exact double (`0.30000000000000004`, `1e-7`), which the scripts pass on to Redis untouched.
    orjson formats the numbers (a few milliseconds for 100,000, against a tenth of a second for
    `repr` in a Python loop), then bytes operations turn its nested array into strings: no
    symbol holds a comma, a quote or a bracket (`SYMBOL_PATTERN`). The script reads the array
    with `cjson.decode`, twice as fast as splitting the text in Lua. A non-finite float (a mean
    of prices near the largest double may overflow) becomes `inf`, `-inf` or `nan`, as Redis
    reads it, not orjson's `null`, which the figures script takes for an absent figure."""
    text = orjson.dumps(items)
    if b"null" in text:  # None, a symbol `null`, or a non-finite float
        as_redis_reads = _non_finite_as_text(items)
        if as_redis_reads != items:
            text = orjson.dumps(as_redis_reads)
    plain = text.translate(None, b'[]"')
    return b'["' + plain.replace(b",", b'","') + b'"]' if plain else b"[]"


def window_metadata(window: RankedWindow) -> bytes:
    """The JSON object the leaderboard script decodes: the window's start, ISO times, partial."""
    return orjson.dumps(
        {
            "start": window.start_ms // 1000,
            "start_iso": format_ts(window.start_ms),
            "end_iso": format_ts(window.end_ms),
            "partial": int(window.partial),
        }
    )


def window_pairs(window: RankedWindow) -> tuple[bytes, bytes, bytes]:
    """The leaders, every symbol's score and (mean specs, else `[]`) gain, each a flat array
    `score, symbol, ...` (`flat_strings`): ZADD's argument order."""
    by_score = attrgetter(window.score, "symbol")
    gains = (
        list(map(attrgetter("gain_pct", "symbol"), window.rows))
        if window.score != Score.MAX
        else []
    )
    return (
        flat_strings([(value, symbol) for symbol, value in window.leaders]),
        flat_strings(list(map(by_score, window.rows))),
        flat_strings(gains),
    )


_FIGURES = attrgetter(*FIGURE_NAMES)
_SYMBOL = attrgetter("symbol")
_NOT_IN_WINDOW = (False,) * len(FIGURE_NAMES)


FIGURES_ROWS_PER_CALL = 1_000
"""Symbols one figures script call writes. A script holds Redis until it returns: one call for
an end's 10,000 symbols kept every reader waiting 110-160 ms; 1,000 a call, about 15 ms."""


def figures_calls(
    windows: list[RankedWindow], stale: list[list[str]], rows_per_call: int = FIGURES_ROWS_PER_CALL
) -> list[list[bytes]]:
    """The figures script's arguments for windows of distinct specs (`WRITE_FIGURES_LUA`): a
    row per symbol of any of them, holding each window's figures (`flat_strings` flattens the
    nested tuples), `rows_per_call` rows a call; the first call also removes the stale
    symbols' figures."""
    symbols = [tuple(map(_SYMBOL, window.rows)) for window in windows]
    if all(these == symbols[0] for these in symbols):  # the usual case: one symbol set
        rows = list(
            zip(symbols[0], *(map(_FIGURES, window.rows) for window in windows), strict=True)
        )
    else:
        by_window = [
            dict(zip(these, map(_FIGURES, window.rows), strict=True))
            for these, window in zip(symbols, windows, strict=True)
        ]
        every = dict.fromkeys(symbol for these in symbols for symbol in these)
        rows = [
            (symbol, *(figures.get(symbol, _NOT_IN_WINDOW) for figures in by_window))
            for symbol in every
        ]
    prefixes = [f"{window.spec}." for window in windows]
    ends = [str(window.end_ms // 1000) for window in windows]
    none_stale: list[list[str]] = [[] for _ in windows]
    first_meta, later_meta = (
        orjson.dumps({"prefixes": prefixes, "ends": ends, "stale": these})
        for these in (stale, none_stale)
    )
    return [
        [
            later_meta if first else first_meta,
            b"figures:",
            flat_strings(rows[first : first + rows_per_call]),
        ]
        for first in range(0, max(len(rows), 1), rows_per_call)
    ]


def distinct_spec_runs(windows: list[RankedWindow]) -> list[list[int]]:
    """The windows' indices cut into runs, in order, where no spec appears twice: a run's
    figures go in one call, and a later window of a spec is written after its earlier one."""
    runs: list[list[int]] = []
    specs: set[str] = set()
    for index, window in enumerate(windows):
        if not runs or window.spec in specs:
            runs.append([])
            specs = set()
        runs[-1].append(index)
        specs.add(window.spec)
    return runs


class LeaderboardWriter:
    """Writes ranked windows; on connection loss retries with capped exponential backoff and
    jitter until Redis answers, so no window is ever skipped."""

    def __init__(
        self,
        client: redis.Redis,
        history_ttl_s: int,
        retry_max_s: float,
        max_ahead_of_clock_s: float = 300.0,
    ) -> None:
        self.client = client
        self.history_ttl_s = history_ttl_s
        self.retry_max_s = retry_max_s
        self.max_ahead_of_clock_s = max_ahead_of_clock_s
        self.window_script = client.register_script(WRITE_WINDOW_LUA)
        self.history_script = client.register_script(WRITE_HISTORY_LUA)
        self.figures_script = client.register_script(WRITE_FIGURES_LUA)
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
            for script in SCRIPTS:  # not on the first window's clock
                client.script_load(script)

    def write(self, window: RankedWindow) -> bool:
        """Write one window; True if it became the latest of its spec."""
        return self.write_many([window])[0]

    def write_many(self, windows: list[RankedWindow]) -> list[bool]:
        """Write windows in order (e.g. the specs closing at one end); True for each that
        became the latest of its spec.

        Every window's leaderboard keys change in its own script call, all of them in one
        pipelined round trip: when it returns, the leaderboards are visible. Then, for the
        latest windows, in a second one: the per-symbol figure hashes (each field set carries
        its `window_end`), written for each run of distinct specs (`distinct_spec_runs`: the
        specs of one end make one run) by calls of `FIGURES_ROWS_PER_CALL` symbols; and each
        one's history keys, copied from its latest sets. A window whose latest sets a newer
        one in the same batch replaced before they were copied gets its history written from
        its data in a third round trip."""
        if not windows:
            return []
        started_s = time.time()
        for window in windows:
            TO_SINK_PHASE.observe(max(0.0, started_s - window.closed_at_s))
        ahead_limit_s = int(started_s + self.max_ahead_of_clock_s)
        window_calls = [
            (
                self.window_script.sha,
                keys.as_list(),
                [
                    window.end_ms // 1000,
                    self.history_ttl_s,
                    window_metadata(window),
                    ahead_limit_s,
                    *window_pairs(window),
                ],
            )
            for window, keys in ((w, WindowKeys.of(w)) for w in windows)
        ]
        replies = self._retrying(windows[0], lambda: self._pipelined(window_calls))
        now_s = time.time()
        REDIS_WINDOWS_PHASE.observe(now_s - started_s)
        for window, reply in zip(windows, replies, strict=True):
            WINDOW_EMIT_LATENCY.observe(max(0.0, now_s - window.closed_at_s))
            if reply[0] == -1:
                refuse_future_window(window)
        latest = [reply[0] == 1 for reply in replies]
        newest = [
            (window, [symbol.decode() for symbol in reply[1:]], call)
            for window, reply, is_latest, call in zip(
                windows, replies, latest, window_calls, strict=True
            )
            if is_latest
        ]
        figure_calls: list[tuple[str, list[str], list[Any]]] = [
            (self.figures_script.sha, [], args)
            for run in distinct_spec_runs([window for window, _, _ in newest])
            for args in figures_calls([newest[i][0] for i in run], [newest[i][1] for i in run])
        ]
        history_calls: list[tuple[str, list[str], list[Any]]] = [
            (self.history_script.sha, keys, [window.end_ms // 1000, self.history_ttl_s])
            for window, _, (_, keys, _) in newest
        ]
        if newest:
            copied = self._retrying(
                windows[0], lambda: self._pipelined(figure_calls + history_calls)
            )[len(figure_calls) :]
            REDIS_FIGURES_HISTORY_PHASE.observe(time.time() - now_s)
            replaced = [call for (_, _, call), done in zip(newest, copied, strict=True) if not done]
            if replaced:  # its end is older than its spec's latest now: history only
                self._retrying(windows[0], lambda: self._pipelined(replaced))
        for window in windows:
            LEADERBOARD_WRITES.labels(window.spec).inc()
        return latest

    def _pipelined(self, calls: list[tuple[str, list[str], list[Any]]]) -> list[Any]:
        """EVALSHA each (script, keys, args) in one round trip; scripts are loaded again if
        Redis lost them (a restart), then the whole batch is rerun: every script is
        idempotent."""
        for attempt in range(2):
            pipe = self.client.pipeline(transaction=False)
            for sha, keys, args in calls:
                pipe.evalsha(sha, len(keys), *keys, *args)
            try:
                return list(pipe.execute())
            except redis.exceptions.NoScriptError:
                if attempt:
                    raise
                for script in SCRIPTS:
                    self.client.script_load(script)
        raise AssertionError("unreachable")

    def _retrying(self, window: RankedWindow, call: Callable[[], Any]) -> Any:
        """`call()` until Redis answers: capped exponential backoff with jitter."""
        delay_s = 0.05
        while True:
            try:
                return call()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                REDIS_ERRORS.inc()
                log.warning(
                    "redis write failed, retrying",
                    extra={
                        "window": window.spec,
                        "end_ms": window.end_ms,
                        "error": str(exc),
                        "retry_in_s": round(delay_s, 3),
                    },
                )
                time.sleep(delay_s * random.uniform(0.5, 1.0))  # jitter
                HEALTH.beat()  # waiting for Redis: a restart would not bring it back
                delay_s = min(delay_s * 2, self.retry_max_s)


class _RedisPartition(StatelessSinkPartition[RankedWindow]):
    def __init__(self, writer: LeaderboardWriter) -> None:
        self.writer = writer

    def write_batch(self, items: list[RankedWindow]) -> None:
        self.writer.write_many(items)

    def close(self) -> None:
        self.writer.client.close()


class RedisLeaderboardSink(DynamicSink[RankedWindow]):
    """One Redis connection per worker."""

    def __init__(
        self,
        redis_url: str,
        history_ttl_s: int,
        retry_max_s: float,
        max_ahead_of_clock_s: float = 300.0,
    ) -> None:
        self.redis_url = redis_url
        self.history_ttl_s = history_ttl_s
        self.retry_max_s = retry_max_s
        self.max_ahead_of_clock_s = max_ahead_of_clock_s

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _RedisPartition:
        client = redis.Redis.from_url(
            self.redis_url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30
        )
        return _RedisPartition(
            LeaderboardWriter(
                client, self.history_ttl_s, self.retry_max_s, self.max_ahead_of_clock_s
            )
        )
