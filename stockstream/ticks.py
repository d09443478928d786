"""The tick contract: one module imported by every producer and by the dataflow.

A tick travels on the `ticks` topic with the symbol (UTF-8) as the message key and a JSON
object as the value::

    {"schema_version": 1, "symbol": "AIG", "price": 31.52, "size": 100,
     "ts": "2013-10-07T13:30:00.464Z", "source": "replay:lean-ticks",
     "ingest_ts": "2026-11-22T05:30:00.000Z"}

`ts` is the event time (the exchange's trade or quote time, never the publish time) and
`ingest_ts` the time the producer saw it; both are RFC 3339 with an explicit offset.
Decoding never raises: it returns a `Tick` or a `Rejection` that names the reason.

Decoding has two paths with one result. The fast path (msgspec into a typed wire struct, the
canonical `ts` form by arithmetic) takes a message only when every check passes on it; any
other message goes to the checked path, which names the first failing rule. So the fast path
can only accept what the checked path accepts, with the same `Tick`
(`tests/stockstream/test_ticks_fast_path.py` compares the two on generated messages).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import msgspec
import orjson

from stockstream.slots import fast_getstate, slot_builder

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = frozenset({1})
MAX_MESSAGE_BYTES = 4096
SYMBOL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,31}")


class Reason(StrEnum):
    """Why a message is not a tick; the dead-letter topic and metrics carry these names."""

    OVERSIZE = "oversize"
    BAD_KEY = "bad_key"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    MISSING_FIELD = "missing_field"
    BAD_TYPE = "bad_type"
    BAD_SYMBOL = "bad_symbol"
    KEY_MISMATCH = "key_mismatch"
    NON_FINITE_PRICE = "non_finite_price"
    NON_POSITIVE_PRICE = "non_positive_price"
    NEGATIVE_SIZE = "negative_size"
    BAD_TIMESTAMP = "bad_timestamp"
    LATE = "late"
    FUTURE = "future"


@fast_getstate
@dataclass(frozen=True, slots=True)
class Tick:
    """One trade or quote. `ts_ms`/`ingest_ts_ms` are milliseconds since the Unix epoch (UTC).

    A frozen dataclass, also in the dataflow's recovery snapshots (ticks held by the future
    guard): a msgspec struct would build faster, but could not load the snapshots of earlier
    versions (pickle's NEWOBJ needs `__new__`, which structs lack)."""

    symbol: str
    price: float
    ts_ms: int
    size: float | None = None
    source: str = ""
    ingest_ts_ms: int | None = None

    @property
    def ts(self) -> datetime:
        """Event time as a timezone-aware datetime."""
        return datetime.fromtimestamp(self.ts_ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message that is not a valid tick, with its original bytes and the reason."""

    reason: Reason
    detail: str
    key: bytes | None
    value: bytes | None

    @property
    def reason_text(self) -> str:
        """`reason: detail`, as written into the dead-letter record."""
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value


REQUIRED_FIELDS = ("schema_version", "symbol", "price", "ts", "source")


def format_ts(ts_ms: int) -> str:
    """Milliseconds since the epoch as RFC 3339 UTC (`2013-10-07T13:30:00.464Z`)."""
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    # The year by hand: strftime's %Y does not zero-pad years before 1000 on glibc.
    return f"{moment.year:04d}" + moment.strftime("-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def parse_ts(text: str) -> int:
    """RFC 3339 with an explicit offset to epoch milliseconds; naive times are refused."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return _epoch_ms(moment)


def _epoch_ms(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode(tick: Tick) -> tuple[bytes, bytes]:
    """A tick as the (key, value) of its Kafka message."""
    body: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "symbol": tick.symbol,
        "price": tick.price,
        "ts": format_ts(tick.ts_ms),
        "source": tick.source,
    }
    if tick.size is not None:
        body["size"] = tick.size
    if tick.ingest_ts_ms is not None:
        body["ingest_ts"] = format_ts(tick.ingest_ts_ms)
    return tick.symbol.encode(), orjson.dumps(body)


def _loads(value: bytes) -> Any:
    """orjson on the fast path; the stdlib parser only for what orjson refuses, so that
    `NaN`, `Infinity` and `1e999` (which Python producers write) are named as non-finite
    prices rather than as broken JSON."""
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as fast_error:
        try:
            # Decoded here: given bytes, json.loads would also accept UTF-16/32 and a BOM.
            return json.loads(value.decode("utf-8"))
        except (ValueError, RecursionError):
            raise ValueError(str(fast_error)) from None


def _is_finite(number: int | float) -> bool:
    """`math.isfinite`, except that an integer too large for a double (which the stdlib
    parser returns for e.g. a 400-digit literal) is not finite instead of an OverflowError."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


class _WireTick(msgspec.Struct):
    """The JSON object as the fast path reads it: types only (unknown fields ignored, the last
    of duplicate fields wins, as with orjson); the rules are checked in `_decode_fast`."""

    schema_version: int
    symbol: str
    price: float
    ts: str
    source: str
    size: float | None = None
    ingest_ts: str | None = None


_WIRE_DECODER = msgspec.json.Decoder(_WireTick)
_build_tick = slot_builder(Tick)
_MINUTE_MS: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM" -> epoch ms, for `_canonical_ts_ms`
_MINUTE_CACHE_SIZE = 4096
_VALID_SYMBOLS: set[str] = set()  # symbols that matched SYMBOL_PATTERN, for `_decode_fast`
_SYMBOL_CACHE_SIZE = 65536


def _is_valid_symbol(symbol: str) -> bool:
    """`SYMBOL_PATTERN.fullmatch`, remembered for the symbols seen (a universe of thousands)."""
    if symbol in _VALID_SYMBOLS:
        return True
    if not SYMBOL_PATTERN.fullmatch(symbol):
        return False
    if len(_VALID_SYMBOLS) >= _SYMBOL_CACHE_SIZE:
        _VALID_SYMBOLS.clear()
    _VALID_SYMBOLS.add(symbol)
    return True


def _canonical_ts_ms(text: str) -> int | None:
    """Epoch ms of `YYYY-MM-DDTHH:MM:SS.mmmZ` (the form `format_ts` writes), None for any other
    form. The minute comes from `parse_ts` (cached), the seconds and ms are ASCII digits added
    on, so the result is `parse_ts(text)` whenever this returns one."""
    if (
        len(text) != 24
        or text[4] != "-"
        or text[7] != "-"
        or text[10] != "T"
        or text[13] != ":"
        or text[16] != ":"
        or text[19] != "."
        or text[23] != "Z"
    ):
        return None
    seconds, millis = text[17:19], text[20:23]
    if not (seconds.isascii() and seconds.isdigit() and millis.isascii() and millis.isdigit()):
        return None
    if seconds > "59":
        return None
    prefix = text[:16]
    minute_ms = _MINUTE_MS.get(prefix)
    if minute_ms is None:
        try:
            minute_ms = parse_ts(prefix + ":00.000Z")
        except ValueError:
            return None
        if len(_MINUTE_MS) >= _MINUTE_CACHE_SIZE:
            _MINUTE_MS.clear()
        _MINUTE_MS[prefix] = minute_ms
    return minute_ms + int(seconds) * 1000 + int(millis)


def _decode_fast(key: bytes | None, value: bytes) -> Tick | None:
    """The common valid message as a `Tick`; None whenever anything is unusual."""
    try:
        wire = _WIRE_DECODER.decode(value)
    except msgspec.MsgspecError:
        return None
    symbol, price, size = wire.symbol, wire.price, wire.size
    if (
        wire.schema_version not in SUPPORTED_SCHEMA_VERSIONS
        or not _is_valid_symbol(symbol)  # ASCII only, so it encodes below
        or (key is not None and key != symbol.encode())
        or not (0.0 < price < math.inf)
        or (size is not None and not (0.0 <= size < math.inf))
    ):
        return None
    ts_ms = _canonical_ts_ms(wire.ts)
    if ts_ms is None:
        return None
    ingest_ts_ms = None
    if wire.ingest_ts is not None:
        ingest_ts_ms = _canonical_ts_ms(wire.ingest_ts)
        if ingest_ts_ms is None:
            return None
    return _build_tick(symbol, price, ts_ms, size, wire.source, ingest_ts_ms)


def decode(key: bytes | None, value: bytes | None) -> Tick | Rejection:
    """A Kafka message as a `Tick`, or a `Rejection` naming what is wrong. Never raises."""
    if value is not None and len(value) <= MAX_MESSAGE_BYTES:
        tick = _decode_fast(key, value)
        if tick is not None:
            return tick
    return _decode_checked(key, value)


def _decode_checked(  # noqa: PLR0911, PLR0912 - one early return per rejection reason, in check order
    key: bytes | None, value: bytes | None
) -> Tick | Rejection:
    """`decode`, one rule at a time in the documented order: the first that fails is named."""

    def reject(reason: Reason, detail: str = "") -> Rejection:
        return Rejection(reason, detail, key, value)

    if value is None:
        return reject(Reason.INVALID_JSON, "empty message value")
    if len(value) > MAX_MESSAGE_BYTES:
        return reject(Reason.OVERSIZE, f"{len(value)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        key_text = None if key is None else key.decode("utf-8")
    except UnicodeDecodeError:
        return reject(Reason.BAD_KEY, "message key is not UTF-8")
    try:
        body = _loads(value)
    except ValueError as exc:
        return reject(Reason.INVALID_JSON, str(exc)[:120])
    if not isinstance(body, dict):
        return reject(Reason.NOT_AN_OBJECT, f"JSON {type(body).__name__}, not an object")
    for name in REQUIRED_FIELDS:
        if name not in body:
            return reject(Reason.MISSING_FIELD, name)
    version = body["schema_version"]
    if type(version) is not int or version not in SUPPORTED_SCHEMA_VERSIONS:
        return reject(Reason.UNKNOWN_SCHEMA_VERSION, repr(version))
    symbol = body["symbol"]
    if not isinstance(symbol, str) or not SYMBOL_PATTERN.fullmatch(symbol):
        return reject(Reason.BAD_SYMBOL, repr(symbol)[:64])
    if key_text is not None and key_text != symbol:
        return reject(Reason.KEY_MISMATCH, f"key {key_text!r} != symbol {symbol!r}")
    price = body["price"]
    if type(price) not in (int, float):
        return reject(Reason.BAD_TYPE, f"price is {type(price).__name__}")
    if not _is_finite(price):
        return reject(Reason.NON_FINITE_PRICE, repr(price)[:64])
    if price <= 0:
        return reject(Reason.NON_POSITIVE_PRICE, repr(price))
    size = body.get("size")
    if size is not None:
        if type(size) not in (int, float) or not _is_finite(size):
            return reject(Reason.BAD_TYPE, f"size is {size!r}"[:64])
        if size < 0:
            return reject(Reason.NEGATIVE_SIZE, repr(size))
    source = body["source"]
    if not isinstance(source, str):
        return reject(Reason.BAD_TYPE, f"source is {type(source).__name__}")
    try:
        ts_ms = parse_ts(body["ts"])
        ingest = body.get("ingest_ts")
        ingest_ts_ms = None if ingest is None else parse_ts(ingest)
    except (TypeError, ValueError, OverflowError) as exc:
        return reject(Reason.BAD_TIMESTAMP, str(exc)[:120])
    return Tick(
        symbol=symbol,
        price=float(price),
        ts_ms=ts_ms,
        size=None if size is None else float(size),
        source=source,
        ingest_ts_ms=ingest_ts_ms,
    )
