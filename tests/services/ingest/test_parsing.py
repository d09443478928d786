"""Provider answers to ticks or named errors: Finnhub quote bodies, trade messages,
Retry-After, reconnect backoff, poll beats. Pure functions, case tables."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from services.ingest.providers.clock import Beat, beat_at_or_after, first_beat, next_beat
from services.ingest.providers.finnhub_quote import QuoteError, parse_quote, retry_after_s
from services.ingest.providers.finnhub_trades import backoff_s, parse_message
from stockstream.ticks import Tick, decode, encode

NOW_MS = 1_732_900_000_000  # 2024-11-29T17:06:40Z
QUOTE = (
    b'{"c":261.74,"d":0.74,"dp":0.2835,"h":263.31,"l":260.68,"o":261.07,"pc":261,"t":1732899990}'
)


def test_quote_is_a_tick_at_its_own_time() -> None:
    tick = parse_quote("AAPL", QUOTE, NOW_MS)
    assert tick == Tick("AAPL", 261.74, 1_732_899_990_000, None, "finnhub:quote")
    assert decode(*encode(tick)) == tick  # the tick contract accepts it


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"<html>502 Bad Gateway</html>", "malformed"),
        (b'{"c": 261.7, "t": 17329', "malformed"),
        (b"[1, 2]", "malformed"),
        (b"null", "malformed"),
        (b'{"error": "You don\'t have access to this resource."}', "api_error"),
        (b'{"c":0,"d":null,"dp":null,"h":0,"l":0,"o":0,"pc":0,"t":0}', "unknown_symbol"),
        (b'{"d":0.74,"t":1732899990}', "missing_field"),
        (b'{"c":261.74}', "missing_field"),
        (b'{"c":null,"t":1732899990}', "missing_field"),
        (b'{"c":"261.74","t":1732899990}', "bad_value"),
        (b'{"c":true,"t":1732899990}', "bad_value"),
        (b'{"c":-3.5,"t":1732899990}', "bad_value"),
        (b'{"c":0,"t":1732899990}', "bad_value"),
        (b'{"c":261.74,"t":0}', "bad_value"),
        (b'{"c":261.74,"t":-5}', "bad_value"),
        (b'{"c":261.74,"t":1732899990.5}', "bad_value"),
        (b'{"c":261.74,"t":1832899990}', "bad_value"),  # three years in the future
        (b'{"c":1e999,"t":1732899990}', "malformed"),  # orjson refuses infinities
    ],
)
def test_unusable_quotes_are_named(body: bytes, kind: str) -> None:
    with pytest.raises(QuoteError) as caught:
        parse_quote("AAPL", body, NOW_MS)
    assert caught.value.kind == kind


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("-3", 0.0),
        ("Fri, 29 Nov 2024 17:07:10 GMT", 30.0),
        (None, 60.0),
        ("soon", 60.0),
    ],
)
def test_retry_after(header: str | None, seconds: float) -> None:
    now = datetime(2024, 11, 29, 17, 6, 40, tzinfo=UTC)
    assert retry_after_s(header, now) == seconds


WANTED = frozenset({"AAPL", "BINANCE:BTCUSDT"})


def test_trade_message_in_order() -> None:
    raw = (
        b'{"data":[{"c":["1","12"],"p":261.7,"s":"AAPL","t":1732899990123,"v":100},'
        b'{"c":null,"p":97000.5,"s":"BINANCE:BTCUSDT","t":1732899990124,"v":0.0123},'
        b'{"p":261.8,"s":"AAPL","t":1732899990125,"v":5}],"type":"trade"}'
    )
    parsed = parse_message(raw, WANTED, NOW_MS)
    assert parsed.errors == []
    assert [(t.symbol, t.price, t.ts_ms, t.size) for t in parsed.ticks] == [
        ("AAPL", 261.7, 1732899990123, 100.0),
        ("BINANCE:BTCUSDT", 97000.5, 1732899990124, 0.0123),
        ("AAPL", 261.8, 1732899990125, 5.0),
    ]
    assert all(decode(*encode(t)) == t for t in parsed.ticks)


@pytest.mark.parametrize(
    ("raw", "kinds"),
    [
        (b'{"type":"ping"}', []),
        (b'{"type":"trade","data":[]}', []),
        (b'{"type":"error","msg":"Subscribing to too many symbols"}', ["api_error"]),
        (b"not json", ["malformed"]),
        (b'"trade"', ["malformed"]),
        (b'{"type":"news"}', ["malformed"]),
        (b'{"type":"trade"}', ["malformed"]),
        (b'{"type":"trade","data":{"s":"AAPL"}}', ["malformed"]),
        (b'{"type":"trade","data":[42]}', ["malformed"]),
        (b'{"type":"trade","data":[{"p":1,"t":1732899990123}]}', ["missing_field"]),
        (b'{"type":"trade","data":[{"s":"AAPL","t":1732899990123}]}', ["missing_field"]),
        (b'{"type":"trade","data":[{"s":"AAPL","p":1}]}', ["missing_field"]),
        (b'{"type":"trade","data":[{"s":"MSFT","p":1,"t":1732899990123}]}', ["unexpected_symbol"]),
        (b'{"type":"trade","data":[{"s":"AAPL","p":0,"t":1732899990123}]}', ["bad_value"]),
        (b'{"type":"trade","data":[{"s":"AAPL","p":"1","t":1732899990123}]}', ["bad_value"]),
        (b'{"type":"trade","data":[{"s":"AAPL","p":1,"t":-1}]}', ["bad_value"]),
        (b'{"type":"trade","data":[{"s":"AAPL","p":1,"t":1832899990123}]}', ["bad_value"]),
        (b'{"type":"trade","data":[{"s":"AAPL","p":1,"t":1732899990123,"v":-1}]}', ["bad_value"]),
        (
            b'{"type":"trade","data":[{"s":"AAPL","p":-1,"t":1732899990123},'
            b'{"s":"AAPL","p":2,"t":1732899990124,"v":1}]}',
            ["bad_value"],
        ),
    ],
)
def test_unusable_trade_messages_are_named(raw: bytes, kinds: list[str]) -> None:
    parsed = parse_message(raw, WANTED, NOW_MS)
    assert [kind for kind, _ in parsed.errors] == kinds
    good = b'"p":2,' in raw
    assert len(parsed.ticks) == (1 if good else 0)


def test_backoff_grows_caps_and_jitters() -> None:
    rng = random.Random(7)
    delays = [backoff_s(attempt, 1.0, 30.0, rng) for attempt in range(10)]
    for attempt, delay in enumerate(delays):
        base = min(30.0, 2.0**attempt)
        assert base / 2 <= delay <= base
    assert len(set(delays)) == len(delays)  # jittered: no two equal
    assert max(delays) <= 30.0
    assert backoff_s(10_000, 1.0, 30.0, rng) <= 30.0


@pytest.mark.parametrize(
    ("previous", "now", "expected"),
    [
        (0.0, 3.0, Beat(10.0, 7.0, 0)),  # a short poll: the next beat
        (0.0, 10.0, Beat(10.0, 0.0, 0)),  # finished right on the next beat
        (0.0, 10.5, Beat(20.0, 9.5, 1)),  # overran one beat: skipped, no negative sleep
        (0.0, 25.0, Beat(30.0, 5.0, 2)),
        (100.0, 131.0, Beat(140.0, 9.0, 3)),
    ],
)
def test_next_beat(previous: float, now: float, expected: Beat) -> None:
    assert next_beat(previous, now, 10.0) == expected


def test_beats_are_aligned_to_the_clock() -> None:
    beat = first_beat(1003.2, 10.0)
    assert (beat.at, beat.sleep, beat.skipped) == (1010.0, pytest.approx(6.8), 0)
    assert first_beat(1010.0, 10.0) == Beat(1010.0, 0.0, 0)
    assert beat_at_or_after(1017.0, 10.0) == 1020.0
    assert beat_at_or_after(1020.0, 10.0) == 1020.0
