"""The tick contract: `decode` accepts exactly the valid ticks, names the reason for every
other message without raising, and round-trips with `encode`."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockstream.ticks import (
    MAX_MESSAGE_BYTES,
    REQUIRED_FIELDS,
    SYMBOL_PATTERN,
    Reason,
    Rejection,
    Tick,
    decode,
    encode,
    format_ts,
    parse_ts,
)

TS = "2013-10-07T13:30:00.464Z"
TS_MS = 1_381_152_600_464
INGEST = "2026-11-22T05:30:00.000Z"
INGEST_MS = 1_795_325_400_000
FIRST_MS = -62_135_596_800_000  # 0001-01-01T00:00:00.000Z
LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
VALID: dict[str, Any] = {
    "schema_version": 1,
    "symbol": "AIG",
    "price": 31.52,
    "size": 100,
    "ts": TS,
    "source": "replay:lean-ticks",
    "ingest_ts": INGEST,
}


class Raw(str):
    """JSON text put into a message verbatim (`NaN`, `1e999`, ...)."""


MISSING = object()
"""A field value meaning: leave the field out."""


def message(**changes: Any) -> bytes:
    """The JSON value of a valid tick with some fields replaced (or left out: `MISSING`)."""
    fields = {**VALID, **changes}
    parts = [
        f"{json.dumps(name)}: {value if isinstance(value, Raw) else json.dumps(value)}"
        for name, value in fields.items()
        if value is not MISSING
    ]
    return ("{" + ", ".join(parts) + "}").encode()


def padded(total_bytes: int) -> bytes:
    """A valid tick message of exactly `total_bytes` bytes (the source is padded)."""
    short = message(source="")
    return message(source="x" * (total_bytes - len(short)))


def tick(**changes: Any) -> Tick:
    """The tick `message()` describes, with some attributes replaced."""
    base: dict[str, Any] = {
        "symbol": "AIG",
        "price": 31.52,
        "ts_ms": TS_MS,
        "size": 100.0,
        "source": "replay:lean-ticks",
        "ingest_ts_ms": INGEST_MS,
    }
    return Tick(**{**base, **changes})


# --------------------------------------------------------------------------------------
# Valid messages


VALID_CASES = [
    pytest.param(b"AIG", message(), tick(), id="full"),
    pytest.param(None, message(), tick(), id="no-key"),
    pytest.param(b"AIG", message(size=MISSING), tick(size=None), id="without-size"),
    pytest.param(b"AIG", message(size=None), tick(size=None), id="size-null"),
    pytest.param(b"AIG", message(size=0), tick(size=0.0), id="size-zero"),
    pytest.param(b"AIG", message(size=2.5), tick(size=2.5), id="size-fractional"),
    pytest.param(
        b"AIG", message(ingest_ts=MISSING), tick(ingest_ts_ms=None), id="without-ingest-ts"
    ),
    pytest.param(
        b"AIG",
        message(size=MISSING, ingest_ts=MISSING),
        tick(size=None, ingest_ts_ms=None),
        id="minimal",
    ),
    pytest.param(b"AIG", message(price=31), tick(price=31.0), id="integer-price"),
    pytest.param(b"AIG", message(price=5e-324), tick(price=5e-324), id="tiny-price"),
    pytest.param(b"AIG", message(ts="2013-10-07T21:30:00.464+08:00"), tick(), id="ts-plus-0800"),
    pytest.param(b"AIG", message(ts="2013-10-07T08:30:00.464-05:00"), tick(), id="ts-minus-0500"),
    pytest.param(b"AIG", message(ts="2013-10-07T13:30:00.464+00:00"), tick(), id="ts-plus-0000"),
    pytest.param(
        b"AIG", message(ts="2013-10-07T13:30:00.464999Z"), tick(), id="ts-microseconds-floored"
    ),
    pytest.param(
        b"AIG",
        message(ingest_ts="2026-11-22T13:30:00+08:00"),
        tick(),
        id="ingest-ts-plus-0800",
    ),
    pytest.param(b"BRK.B", message(symbol="BRK.B"), tick(symbol="BRK.B"), id="symbol-with-dot"),
    pytest.param(b"A" * 32, message(symbol="A" * 32), tick(symbol="A" * 32), id="symbol-32-chars"),
    pytest.param(b"AIG", message(extra={"ignored": True}), tick(), id="unknown-fields-ignored"),
    pytest.param(
        b"AIG",
        padded(MAX_MESSAGE_BYTES),
        tick(source="x" * (MAX_MESSAGE_BYTES - len(message(source="")))),
        id="exactly-max-bytes",
    ),
]


@pytest.mark.parametrize(("key", "value", "expected"), VALID_CASES)
def test_decode_valid(key: bytes | None, value: bytes, expected: Tick) -> None:
    """Valid messages decode to exactly the expected tick, with float price and size."""
    result = decode(key, value)
    assert result == expected
    assert isinstance(result, Tick)
    assert type(result.price) is float
    assert result.size is None or type(result.size) is float


ROUND_TRIP_CASES = [
    pytest.param(tick(), id="full"),
    pytest.param(tick(size=None), id="without-size"),
    pytest.param(tick(ingest_ts_ms=None), id="without-ingest-ts"),
    pytest.param(tick(size=None, ingest_ts_ms=None, source=""), id="minimal"),
    pytest.param(tick(price=0.1 + 0.2, size=1e-7), id="full-precision-floats"),
    pytest.param(tick(ts_ms=FIRST_MS), id="year-1"),
    pytest.param(tick(ts_ms=-1), id="just-before-epoch"),
    pytest.param(tick(ts_ms=LAST_MS), id="year-9999"),
    pytest.param(tick(source="réplay ✓ 株"), id="unicode-source"),
]


@pytest.mark.parametrize("original", ROUND_TRIP_CASES)
def test_encode_decode_round_trip(original: Tick) -> None:
    """`decode(*encode(t)) == t`, and the key is the UTF-8 symbol."""
    key, value = encode(original)
    assert key == original.symbol.encode()
    assert decode(key, value) == original


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [
        pytest.param("2013-10-07T13:30:00.464Z", TS_MS, id="z"),
        pytest.param("2013-10-07T21:30:00.464+08:00", TS_MS, id="plus-0800"),
        pytest.param("2013-10-07T13:30:00.464+00:00", TS_MS, id="plus-0000"),
        pytest.param("1970-01-01T00:00:00Z", 0, id="epoch"),
        pytest.param("1969-12-31T23:59:59.999Z", -1, id="before-epoch"),
    ],
)
def test_parse_ts(text: str, expected_ms: int) -> None:
    """RFC 3339 with any offset gives the epoch milliseconds of the same instant."""
    assert parse_ts(text) == expected_ms


def test_tick_ts_is_aware_utc() -> None:
    """`Tick.ts` is the event time as an aware UTC datetime."""
    assert tick().ts == datetime(2013, 10, 7, 13, 30, 0, 464_000, tzinfo=UTC)


# --------------------------------------------------------------------------------------
# Rejected messages


def _missing_field_cases() -> list[Any]:
    return [
        pytest.param(b"AIG", message(**{name: MISSING}), Reason.MISSING_FIELD, id=f"no-{name}")
        for name in REQUIRED_FIELDS
    ]


REJECTION_CASES = [
    # the message as a whole
    pytest.param(b"AIG", None, Reason.INVALID_JSON, id="value-none"),
    pytest.param(b"AIG", b"", Reason.INVALID_JSON, id="empty-value"),
    pytest.param(b"AIG", b"{schema_version: 1}", Reason.INVALID_JSON, id="malformed-json"),
    pytest.param(b"AIG", message()[:-7], Reason.INVALID_JSON, id="truncated-json"),
    pytest.param(b"AIG", message() + b"}", Reason.INVALID_JSON, id="trailing-garbage"),
    pytest.param(b"AIG", message(price=Raw("NaN"))[:-1], Reason.INVALID_JSON, id="truncated-nan"),
    pytest.param(b"AIG", b"\xff\xfe\x00\x01", Reason.INVALID_JSON, id="binary-garbage"),
    pytest.param(b"AIG", json.dumps(VALID).encode("utf-16"), Reason.INVALID_JSON, id="utf-16-json"),
    pytest.param(b"AIG", b"\xef\xbb\xbf" + message(), Reason.INVALID_JSON, id="utf-8-bom"),
    pytest.param(b"AIG", b"[" * 5000, Reason.OVERSIZE, id="deeply-nested-oversize"),
    pytest.param(b"AIG", b"[" * 4000, Reason.INVALID_JSON, id="deeply-nested"),
    pytest.param(b"AIG", padded(MAX_MESSAGE_BYTES + 1), Reason.OVERSIZE, id="oversize-by-one"),
    pytest.param(b"AIG", b"x" * 100_000, Reason.OVERSIZE, id="oversize-garbage"),
    pytest.param(b"AIG", b"[1, 2]", Reason.NOT_AN_OBJECT, id="json-list"),
    pytest.param(b"AIG", b'"AIG"', Reason.NOT_AN_OBJECT, id="json-string"),
    pytest.param(b"AIG", b"31.52", Reason.NOT_AN_OBJECT, id="json-number"),
    pytest.param(b"AIG", b"null", Reason.NOT_AN_OBJECT, id="json-null"),
    pytest.param(b"AIG", b"true", Reason.NOT_AN_OBJECT, id="json-true"),
    pytest.param(b"AIG", b"NaN", Reason.NOT_AN_OBJECT, id="json-nan"),
    # key
    pytest.param(b"\xff\xfe", message(), Reason.BAD_KEY, id="key-not-utf8"),
    pytest.param(b"AI\xc3", message(), Reason.BAD_KEY, id="key-truncated-utf8"),
    pytest.param(b"AIGX", message(), Reason.KEY_MISMATCH, id="key-other-symbol"),
    pytest.param(b"aig", message(), Reason.KEY_MISMATCH, id="key-other-case"),
    pytest.param(b"", message(), Reason.KEY_MISMATCH, id="key-empty"),
    # fields
    *_missing_field_cases(),
    pytest.param(b"AIG", message(schema_version=2), Reason.UNKNOWN_SCHEMA_VERSION, id="v2"),
    pytest.param(b"AIG", message(schema_version=0), Reason.UNKNOWN_SCHEMA_VERSION, id="v0"),
    pytest.param(b"AIG", message(schema_version="1"), Reason.UNKNOWN_SCHEMA_VERSION, id="v-string"),
    pytest.param(b"AIG", message(schema_version=1.0), Reason.UNKNOWN_SCHEMA_VERSION, id="v-1.0"),
    pytest.param(b"AIG", message(schema_version=True), Reason.UNKNOWN_SCHEMA_VERSION, id="v-true"),
    pytest.param(b"AIG", message(schema_version=None), Reason.UNKNOWN_SCHEMA_VERSION, id="v-null"),
    pytest.param(b"", message(symbol=""), Reason.BAD_SYMBOL, id="symbol-empty"),
    pytest.param(b"A" * 33, message(symbol="A" * 33), Reason.BAD_SYMBOL, id="symbol-too-long"),
    pytest.param(b"A IG", message(symbol="A IG"), Reason.BAD_SYMBOL, id="symbol-inner-space"),
    pytest.param(b" AIG", message(symbol=" AIG"), Reason.BAD_SYMBOL, id="symbol-leading-space"),
    pytest.param(b"AIG\n", message(symbol="AIG\n"), Reason.BAD_SYMBOL, id="symbol-newline"),
    pytest.param(b".AIG", message(symbol=".AIG"), Reason.BAD_SYMBOL, id="symbol-leading-dot"),
    pytest.param("株".encode(), message(symbol="株"), Reason.BAD_SYMBOL, id="symbol-non-ascii"),
    pytest.param(None, message(symbol=42), Reason.BAD_SYMBOL, id="symbol-number"),
    pytest.param(None, message(symbol=None), Reason.BAD_SYMBOL, id="symbol-null"),
    pytest.param(None, message(symbol=["AIG"]), Reason.BAD_SYMBOL, id="symbol-list"),
    pytest.param(b"AIG", message(price=Raw("NaN")), Reason.NON_FINITE_PRICE, id="price-nan"),
    pytest.param(
        b"AIG", message(price=Raw("Infinity")), Reason.NON_FINITE_PRICE, id="price-infinity"
    ),
    pytest.param(
        b"AIG", message(price=Raw("-Infinity")), Reason.NON_FINITE_PRICE, id="price-minus-infinity"
    ),
    pytest.param(b"AIG", message(price=Raw("1e999")), Reason.NON_FINITE_PRICE, id="price-1e999"),
    pytest.param(
        b"AIG", message(price=Raw("-1e999")), Reason.NON_FINITE_PRICE, id="price-minus-1e999"
    ),
    pytest.param(
        b"AIG", message(price=Raw("1" + "0" * 400)), Reason.NON_FINITE_PRICE, id="price-huge-int"
    ),
    pytest.param(b"AIG", message(price=0), Reason.NON_POSITIVE_PRICE, id="price-zero"),
    pytest.param(b"AIG", message(price=0.0), Reason.NON_POSITIVE_PRICE, id="price-zero-float"),
    pytest.param(b"AIG", message(price=-0.0), Reason.NON_POSITIVE_PRICE, id="price-minus-zero"),
    pytest.param(b"AIG", message(price=-1), Reason.NON_POSITIVE_PRICE, id="price-negative-int"),
    pytest.param(b"AIG", message(price=-31.52), Reason.NON_POSITIVE_PRICE, id="price-negative"),
    pytest.param(b"AIG", message(price="31.52"), Reason.BAD_TYPE, id="price-string"),
    pytest.param(b"AIG", message(price=True), Reason.BAD_TYPE, id="price-true"),
    pytest.param(b"AIG", message(price=False), Reason.BAD_TYPE, id="price-false"),
    pytest.param(b"AIG", message(price=None), Reason.BAD_TYPE, id="price-null"),
    pytest.param(b"AIG", message(price=[31.52]), Reason.BAD_TYPE, id="price-list"),
    pytest.param(b"AIG", message(price={"value": 31.52}), Reason.BAD_TYPE, id="price-object"),
    pytest.param(b"AIG", message(size=-1), Reason.NEGATIVE_SIZE, id="size-negative"),
    pytest.param(b"AIG", message(size=-0.5), Reason.NEGATIVE_SIZE, id="size-negative-fraction"),
    pytest.param(b"AIG", message(size="100"), Reason.BAD_TYPE, id="size-string"),
    pytest.param(b"AIG", message(size=True), Reason.BAD_TYPE, id="size-true"),
    pytest.param(b"AIG", message(size=[100]), Reason.BAD_TYPE, id="size-list"),
    pytest.param(b"AIG", message(size=Raw("NaN")), Reason.BAD_TYPE, id="size-nan"),
    pytest.param(b"AIG", message(size=Raw("Infinity")), Reason.BAD_TYPE, id="size-infinity"),
    pytest.param(b"AIG", message(size=Raw("9" * 400)), Reason.BAD_TYPE, id="size-huge-int"),
    pytest.param(b"AIG", message(source=42), Reason.BAD_TYPE, id="source-number"),
    pytest.param(b"AIG", message(source=None), Reason.BAD_TYPE, id="source-null"),
    pytest.param(
        b"AIG", message(ts="2013-10-07T13:30:00.464"), Reason.BAD_TIMESTAMP, id="ts-naive"
    ),
    pytest.param(b"AIG", message(ts="2013-10-07"), Reason.BAD_TIMESTAMP, id="ts-date-only"),
    pytest.param(b"AIG", message(ts="yesterday"), Reason.BAD_TIMESTAMP, id="ts-garbage"),
    pytest.param(b"AIG", message(ts=""), Reason.BAD_TIMESTAMP, id="ts-empty"),
    pytest.param(
        b"AIG", message(ts="2013-13-07T13:30:00Z"), Reason.BAD_TIMESTAMP, id="ts-month-13"
    ),
    pytest.param(b"AIG", message(ts=TS_MS), Reason.BAD_TIMESTAMP, id="ts-number"),
    pytest.param(b"AIG", message(ts=None), Reason.BAD_TIMESTAMP, id="ts-null"),
    pytest.param(
        b"AIG",
        message(ingest_ts="2026-11-22T05:30:00"),
        Reason.BAD_TIMESTAMP,
        id="ingest-ts-naive",
    ),
    pytest.param(b"AIG", message(ingest_ts="now"), Reason.BAD_TIMESTAMP, id="ingest-ts-garbage"),
    pytest.param(b"AIG", message(ingest_ts=0), Reason.BAD_TIMESTAMP, id="ingest-ts-number"),
]


@pytest.mark.parametrize(("key", "value", "reason"), REJECTION_CASES)
def test_decode_rejects(key: bytes | None, value: bytes | None, reason: Reason) -> None:
    """Each bad message gives exactly its reason and keeps the original key and value."""
    result = decode(key, value)
    assert isinstance(result, Rejection), result
    assert result.reason is reason, result.reason_text
    assert result.key is key
    assert result.value is value
    assert result.reason_text.startswith(reason.value)


def test_reason_text() -> None:
    """`reason_text` is `reason: detail`, or the bare reason without detail."""
    assert Rejection(Reason.LATE, "", None, None).reason_text == "late"
    assert Rejection(Reason.MISSING_FIELD, "ts", None, None).reason_text == "missing_field: ts"


# --------------------------------------------------------------------------------------
# Properties

SYMBOLS = st.from_regex(SYMBOL_PATTERN, fullmatch=True)
MS = st.integers(min_value=FIRST_MS, max_value=LAST_MS)
HUGE_INTS = st.integers(min_value=10**300, max_value=10**400) | st.integers(
    min_value=-(10**400), max_value=-(10**300)
)
"""Integers orjson refuses (beyond a double) and the stdlib fallback parser returns as int."""
NUMBERS = st.integers() | st.floats() | HUGE_INTS
JSON_SCALARS = st.none() | st.booleans() | NUMBERS | st.text(max_size=40)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
TS_TEXTS = st.one_of(MS.map(format_ts), st.text(max_size=40), JSON_VALUES)
TICKISH_OBJECTS = st.fixed_dictionaries(
    {},
    optional={
        "schema_version": st.just(1) | JSON_VALUES,
        "symbol": SYMBOLS | JSON_VALUES,
        "price": NUMBERS | JSON_VALUES,
        "size": NUMBERS | JSON_VALUES,
        "ts": TS_TEXTS,
        "ingest_ts": TS_TEXTS,
        "source": st.text(max_size=20) | JSON_VALUES,
    },
)
VALID_TICKS = st.builds(
    Tick,
    symbol=SYMBOLS,
    price=st.floats(min_value=0.0, exclude_min=True, allow_infinity=False, allow_nan=False),
    ts_ms=MS,
    size=st.none() | st.floats(min_value=0.0, allow_infinity=False, allow_nan=False),
    source=st.text(max_size=50),
    ingest_ts_ms=st.none() | MS,
)


def assert_sane(key: bytes | None, value: bytes | None, result: Tick | Rejection) -> None:
    """A rejection keeps the bytes; a tick satisfies every rule of the contract."""
    if isinstance(result, Rejection):
        assert result.key is key and result.value is value
        assert isinstance(result.reason, Reason)
        return
    assert isinstance(result, Tick)
    assert value is not None and len(value) <= MAX_MESSAGE_BYTES
    assert SYMBOL_PATTERN.fullmatch(result.symbol)
    assert key is None or key == result.symbol.encode()
    assert math.isfinite(result.price) and result.price > 0
    assert result.size is None or (math.isfinite(result.size) and result.size >= 0)
    assert isinstance(result.ts_ms, int) and isinstance(result.source, str)


@settings(max_examples=500)
@given(key=st.none() | st.binary(max_size=40), value=st.none() | st.binary(max_size=5000))
def test_decode_never_raises_on_bytes(key: bytes | None, value: bytes | None) -> None:
    """Arbitrary bytes give a Tick or a Rejection, never an exception."""
    assert_sane(key, value, decode(key, value))


@settings(max_examples=300)
@given(
    key=st.none() | SYMBOLS.map(str.encode) | st.binary(max_size=10),
    body=JSON_VALUES | st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=8),
)
def test_decode_never_raises_on_json(key: bytes | None, body: Any) -> None:
    """Arbitrary JSON documents (with NaN, Infinity and huge integers) never raise."""
    value = json.dumps(body).encode()
    assert_sane(key, value, decode(key, value))


@settings(max_examples=400)
@given(key=st.none() | st.just(b"AIG") | SYMBOLS.map(str.encode), body=TICKISH_OBJECTS)
def test_decode_never_raises_on_tick_like_objects(key: bytes | None, body: dict[str, Any]) -> None:
    """Objects with the tick's field names and arbitrary values reach every check."""
    value = json.dumps(body).encode()
    assert_sane(key, value, decode(key, value))


@settings(max_examples=500)
@given(original=VALID_TICKS)
def test_decode_inverts_encode(original: Tick) -> None:
    """Every valid tick survives encode/decode unchanged."""
    assert decode(*encode(original)) == original


TS_FORMAT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@settings(max_examples=1000)
@given(ts_ms=MS)
def test_format_parse_round_trip(ts_ms: int) -> None:
    """`parse_ts(format_ts(ms)) == ms` from year 1 to year 9999, in the documented format."""
    text = format_ts(ts_ms)
    assert TS_FORMAT.fullmatch(text), text
    assert parse_ts(text) == ts_ms


@settings(max_examples=500)
@given(
    ts_ms=st.integers(min_value=FIRST_MS + 86_400_000, max_value=LAST_MS - 86_400_000),
    offset_min=st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
)
def test_parse_ts_any_offset(ts_ms: int, offset_min: int) -> None:
    """The same instant written with any UTC offset parses to the same milliseconds."""
    moment = datetime.fromtimestamp(0, tz=UTC) + timedelta(milliseconds=ts_ms)
    local = moment.astimezone(timezone(timedelta(minutes=offset_min)))
    assert parse_ts(local.isoformat(timespec="milliseconds")) == ts_ms
