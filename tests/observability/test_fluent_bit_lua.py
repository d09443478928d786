"""observability/logging/stockstream.lua run by LuaJIT 2.1 (Fluent Bit's Lua), through lupa:
the records Fluent Bit hands it after its JSON parser, and what it must give back."""

from __future__ import annotations

from typing import Any

import pytest
from lupa import luajit21

from tests.observability.promql import OBSERVABILITY

SCRIPT = OBSERVABILITY / "logging/stockstream.lua"
K8S = {"container_name": "dataflow", "namespace_name": "stockstream",
       "labels": {"app.kubernetes.io/name": "leaders", "app": "x"}}


def to_python(value: Any) -> Any:
    if luajit21.lua_type(value) == "table":
        return {key: to_python(item) for key, item in value.items()}
    return value


def normalise(record: dict[str, Any]) -> dict[str, Any]:
    lua = luajit21.LuaRuntime(unpack_returned_tuples=True)
    lua.execute(SCRIPT.read_text())
    code, timestamp, out = lua.globals().normalise(
        "kube.var.log.containers.x", 1234.5, lua.table_from(record, recursive=True))
    assert (code, timestamp) == (2, 1234.5)
    return dict(to_python(out))


CASES = [
    pytest.param(  # an ECS line after the stockstream_json parser (@timestamp taken out)
        {"log.level": "warning", "message": "ticks dead-lettered", "ecs.version": "1.6.0",
         "log": {"logger": "dataflows.leaders.dead_letters"}, "service": {"name": "leaders"},
         "stockstream": {"reason": "invalid_json"}, "stream": "stdout", "kubernetes": K8S},
        {"log": {"level": "warning", "logger": "dataflows.leaders.dead_letters"},
         "message": "ticks dead-lettered", "ecs": {"version": "1.6.0"},
         "service": {"name": "leaders"}, "stockstream": {"reason": "invalid_json"},
         "stream": "stdout", "kubernetes": K8S},
        id="ecs-line",
    ),
    pytest.param(  # a native line: the pod's app.kubernetes.io/name label names the service
        {"log": "thread 'main' panicked", "stream": "stderr", "kubernetes": K8S},
        {"message": "thread 'main' panicked", "log": {"level": "unknown", "logger": "stderr"},
         "service": {"name": "leaders"}, "stream": "stderr", "kubernetes": K8S},
        id="native-line",
    ),
    pytest.param(
        {"log": "INFO starting", "stream": "stdout",
         "kubernetes": {"container_name": "redpanda"}},
        {"message": "INFO starting", "log": {"level": "unknown", "logger": "stdout"},
         "service": {"name": "redpanda"}, "stream": "stdout",
         "kubernetes": {"container_name": "redpanda"}},
        id="native-line-without-labels",
    ),
    pytest.param(
        {"log": "x"},
        {"message": "x", "log": {"level": "unknown", "logger": "stdout"},
         "service": {"name": "unknown"}},
        id="no-metadata",
    ),
]


@pytest.mark.parametrize(("record", "expected"), CASES)
def test_normalise(record: dict[str, Any], expected: dict[str, Any]) -> None:
    assert normalise(record) == expected
