"""stockstream.logs: ECS lines through ecs-logging, extras under `stockstream.*`."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import ecs_logging
import pytest

from stockstream.logs import EXTRA_NAMESPACE, ecs_formatter


def line(
    level: int, message: str, extra: dict[str, Any] | None = None, exc: BaseException | None = None
) -> dict[str, Any]:
    record = logging.getLogger("dataflows.leaders").makeRecord(
        "dataflows.leaders",
        level,
        "x.py",
        7,
        message,
        (),
        (type(exc), exc, exc.__traceback__) if exc else None,
        extra=extra,
    )
    return json.loads(ecs_formatter("leaders").format(record))


def test_the_fields_people_filter_on() -> None:
    out = line(logging.WARNING, "ticks dead-lettered")
    assert out["log.level"] == "warning"
    assert out["log"]["logger"] == "dataflows.leaders"
    assert out["message"] == "ticks dead-lettered"
    assert out["service"] == {"name": "leaders"}
    assert out["ecs.version"] == ecs_logging.ECS_VERSION
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", out["@timestamp"])
    assert "original" not in out["log"] and EXTRA_NAMESPACE not in out


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"reason": "late", "count": 3}, {"reason": "late", "count": 3}),
        ({"error": "connection refused"}, {"error": "connection refused"}),
        ({"process_id": None, "bounded": True}, {"bounded": True}),
    ],
)
def test_extras_go_under_the_namespace(extra: dict[str, Any], expected: dict[str, Any]) -> None:
    out = line(logging.INFO, "m", extra)
    assert out[EXTRA_NAMESPACE] == expected
    assert not set(extra) & set(out)


def test_an_exception_fills_ecs_error_beside_an_extra_error() -> None:
    try:
        raise ValueError("bad")
    except ValueError as exc:
        out = line(logging.ERROR, "failed", {"error": "text"}, exc)
    assert out["error"]["type"] == "ValueError" and out["error"]["message"] == "bad"
    assert out[EXTRA_NAMESPACE] == {"error": "text"}
