"""Local stand-ins for Finnhub: a stdlib HTTP server for `/api/v1/quote` and a `websockets`
server for the trade stream, answering with Finnhub's documented shapes, errors included."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import orjson

TOKEN = "test-token"


@dataclass(frozen=True)
class Answer:
    """One scripted HTTP answer."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


def quote(price: float, t: int) -> Answer:
    """A 200 with a quote shaped like Finnhub's."""
    body = {
        "c": price,
        "d": 0.5,
        "dp": 0.2,
        "h": price + 1,
        "l": price - 1,
        "o": price,
        "pc": price - 0.5,
        "t": t,
    }
    return Answer(200, orjson.dumps(body))


UNKNOWN = Answer(200, b'{"c":0,"d":null,"dp":null,"h":0,"l":0,"o":0,"pc":0,"t":0}')
UNAUTHORIZED = Answer(401, b'{"error":"Invalid API key"}')
SERVER_ERROR = Answer(500, b'{"error":"Internal server error"}')
MALFORMED = Answer(200, b'{"c": 261.74, "t": 17')


def rate_limited(retry_after: str | None) -> Answer:
    """A 429 as Finnhub sends it, with a Retry-After header when given."""
    headers = (("Retry-After", retry_after),) if retry_after is not None else ()
    return Answer(429, b'{"error":"API limit reached. Please try again later."}', headers)


@dataclass
class QuoteScript:
    """Answers per symbol, served in order (the last one repeats); requests recorded."""

    answers: dict[str, list[Answer]]
    requests: list[tuple[float, str, str]] = field(default_factory=list)
    served: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, symbol: str, token: str) -> Answer:
        with self.lock:
            self.requests.append((time.time(), symbol, token))
            if token != TOKEN:
                return UNAUTHORIZED
            script = self.answers.get(symbol, [UNKNOWN])
            index = min(self.served[symbol], len(script) - 1)
            self.served[symbol] += 1
            return script[index]


@contextmanager
def quote_server(script: QuoteScript) -> Iterator[str]:
    """Serve `script` on 127.0.0.1; yields the base URL (`http://127.0.0.1:port/api/v1`)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # name fixed by BaseHTTPRequestHandler
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path != "/api/v1/quote":
                answer = Answer(404, b'{"error":"not found"}')
            else:
                answer = script.answer(query.get("symbol", [""])[0], query.get("token", [""])[0])
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    finally:
        server.shutdown()
        server.server_close()


def trade(symbol: str, price: float, t_ms: int, volume: float = 100) -> dict[str, object]:
    """One element of a trade message's `data`."""
    return {"c": ["1"], "p": price, "s": symbol, "t": t_ms, "v": volume}


def trades(*items: dict[str, object]) -> str:
    """A trade message as Finnhub sends it."""
    return orjson.dumps({"data": list(items), "type": "trade"}).decode()


PING = '{"type":"ping"}'

#: A session handler: receives the connection and its index (0 for the first connection).
Session = Callable[[object, int], Awaitable[None]]
