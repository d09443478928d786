"""The fast decode path gives exactly what the checked path gives: the same `Tick` for the
common valid message, and for anything else it steps aside, so the rejection is the checked
path's own (`stockstream/ticks.py`, module docstring)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockstream.ticks import (
    Rejection,
    Tick,
    _canonical_ts_ms,
    _decode_checked,
    _decode_fast,
    decode,
    encode,
    format_ts,
    parse_ts,
)
from tests.stockstream.test_ticks import JSON_VALUES, MS, SYMBOLS, TICKISH_OBJECTS, VALID_TICKS


@settings(max_examples=500)
@given(original=VALID_TICKS)
def test_fast_path_takes_every_encoded_tick(original: Tick) -> None:
    """What producers write goes the fast way, and comes out as the checked path's Tick."""
    key, value = encode(original)
    fast = _decode_fast(key, value)
    assert fast is not None
    assert fast == _decode_checked(key, value) == original
    assert type(fast.price) is float and (fast.size is None or type(fast.size) is float)


@settings(max_examples=600)
@given(key=st.none() | st.just(b"AIG") | SYMBOLS.map(str.encode), body=TICKISH_OBJECTS)
def test_same_result_on_tick_like_objects(key: bytes | None, body: dict[str, Any]) -> None:
    value = json.dumps(body).encode()
    assert decode(key, value) == _decode_checked(key, value)


@settings(max_examples=300)
@given(
    key=st.none() | SYMBOLS.map(str.encode) | st.binary(max_size=10),
    body=JSON_VALUES | st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=8),
)
def test_same_result_on_any_json(key: bytes | None, body: Any) -> None:
    value = json.dumps(body).encode()
    assert decode(key, value) == _decode_checked(key, value)


@settings(max_examples=300)
@given(key=st.none() | st.binary(max_size=12), value=st.binary(max_size=300))
def test_same_result_on_any_bytes(key: bytes | None, value: bytes) -> None:
    assert decode(key, value) == _decode_checked(key, value)


BODY = (
    '{"schema_version":1,"symbol":"AIG","price":31.52,"size":100,'
    '"ts":"2013-10-07T13:30:00.464Z","source":"t"'
)
FALLBACK_CASES = [
    # (what is unusual, key, value): valid or not, the checked path decides
    ("offset instead of Z", b"AIG", BODY.replace(".464Z", ".464+00:00") + "}"),
    ("no milliseconds", b"AIG", BODY.replace(".464Z", "Z") + "}"),
    ("microseconds", b"AIG", BODY.replace(".464Z", ".464123Z") + "}"),
    ("leap second", b"AIG", BODY.replace(":00.464Z", ":60.464Z") + "}"),
    ("invalid date", b"AIG", BODY.replace("10-07", "02-30") + "}"),
    ("space separator", b"AIG", BODY.replace("07T13", "07 13") + "}"),
    ("non-ASCII digit", b"AIG", BODY.replace(":00.464Z", ":0\u0661.464Z") + "}"),
    ("duplicate price, last wins", b"AIG", BODY + ',"price":-1}'),
    ("price as string", b"AIG", BODY.replace("31.52", '"31.52"') + "}"),
    ("price true", b"AIG", BODY.replace("31.52", "true") + "}"),
    ("price NaN", b"AIG", BODY.replace("31.52", "NaN") + "}"),
    ("price 1e999", b"AIG", BODY.replace("31.52", "1e999") + "}"),
    ("huge integer price", b"AIG", BODY.replace("31.52", "1" + "0" * 30) + "}"),
    ("schema_version 1.0", b"AIG", BODY.replace('version":1', 'version":1.0') + "}"),
    ("schema_version 2", b"AIG", BODY.replace('version":1', 'version":2') + "}"),
    ("negative zero size", b"AIG", BODY.replace('"size":100', '"size":-0.0') + "}"),
    ("null size", b"AIG", BODY.replace('"size":100', '"size":null') + "}"),
    ("key mismatch", b"BAC", BODY + "}"),
    ("key not UTF-8", b"\xff", BODY + "}"),
    ("lone surrogate in source", b"AIG", BODY.replace('"t"', '"\\ud800"') + "}"),
    ("invalid UTF-8 in source", b"AIG", BODY.replace('"t"', '"\udcff"') + "}"),
    ("extra field", b"AIG", BODY + ',"venue":"X"}'),
    ("ingest_ts not canonical", b"AIG", BODY + ',"ingest_ts":"2013-10-07T13:30:00+00:00"}'),
    ("ingest_ts a number", b"AIG", BODY + ',"ingest_ts":5}'),
]


@pytest.mark.parametrize(
    ("case", "key", "text"), FALLBACK_CASES, ids=[case[0] for case in FALLBACK_CASES]
)
def test_unusual_messages_decode_as_checked(case: str, key: bytes, text: str) -> None:
    value = text.encode("utf-8", "surrogateescape")  # "\udcff" becomes the byte 0xff
    result = decode(key, value)
    assert result == _decode_checked(key, value)
    if isinstance(result, Tick):  # accepted: by the checked path's rules too
        assert not isinstance(_decode_checked(key, value), Rejection)


@settings(max_examples=1000)
@given(ts_ms=MS)
def test_canonical_ts_is_parse_ts(ts_ms: int) -> None:
    text = format_ts(ts_ms)
    assert _canonical_ts_ms(text) == parse_ts(text) == ts_ms


@settings(max_examples=2000)
@given(ts_ms=MS, position=st.integers(0, 23), char=st.characters())
def test_canonical_ts_never_disagrees(ts_ms: int, position: int, char: str) -> None:
    """One character of a canonical time changed: either not canonical (None) or what
    `parse_ts` says."""
    text = format_ts(ts_ms)
    text = text[:position] + char + text[position + 1 :]
    fast = _canonical_ts_ms(text)
    if fast is not None:
        assert fast == parse_ts(text)
