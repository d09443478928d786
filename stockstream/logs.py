"""Log lines in the Elastic Common Schema (ECS), one JSON object per line on stdout.

Every component calls `configure_logging` once; the lines are written by Elastic's own ECS
formatter (`ecs-logging`) and read by the log shippers and the index template of
`observability/logging/`. A line (wrapped here):

    {"@timestamp": "2026-11-29T23:22:02.648Z", "log.level": "warning",
     "message": "ticks dead-lettered", "ecs.version": "1.6.0",
     "log": {"logger": "dataflows.leaders.dead_letters",
             "origin": {"file": {"line": 60, "name": "dead_letters.py"}, "function": "..."}},
     "process": {"name": "MainProcess", "pid": 1850, "thread": {"id": 1403, "name": "..."}},
     "service": {"name": "leaders"},
     "stockstream": {"reason": "bad_type", "count": 3, ...}}

The fields people filter on: `service.name`, `log.level` (lower case: `info`, `warning`,
`error`), `log.logger`, `message`, `@timestamp` (UTC, milliseconds). An exception logged with
`log.exception(...)` fills ECS's `error.type`, `error.message` and `error.stack_trace`.

The `extra={...}` fields of a call go under the `stockstream` namespace (`stockstream.reason`,
`stockstream.error`, ...), never at the top level: ECS defines top-level names such as `error`
or `event` as objects, and an extra `error` string beside an exception's `error` object would
make the index reject one of the two lines.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import ecs_logging

# Where the call sites' `extra={...}` fields go (see the module docstring).
EXTRA_NAMESPACE = "stockstream"

# Attributes every LogRecord has (plus what formatters add): everything else is an extra.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# `log.original` repeats `message` on every line.
_EXCLUDED_FIELDS = ("log.original",)


class EcsFormatter(ecs_logging.StdlibFormatter):
    """ecs-logging's formatter with the call sites' extra fields under `EXTRA_NAMESPACE`."""

    def format_to_ecs(self, record: logging.LogRecord) -> dict[str, Any]:
        extras = {
            key: value
            for key, value in record.__dict__.items()
            if key not in _RECORD_ATTRIBUTES and value is not None
        }
        if extras:
            fields = {k: v for k, v in record.__dict__.items() if k not in extras}
            record = logging.makeLogRecord({**fields, EXTRA_NAMESPACE: extras})
        result: dict[str, Any] = super().format_to_ecs(record)
        return result


def ecs_formatter(service: str) -> EcsFormatter:
    """The formatter of every stockstream process: ECS fields plus `service.name`."""
    return EcsFormatter(extra={"service": {"name": service}}, exclude_fields=_EXCLUDED_FIELDS)


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route the root logger to stdout as ECS JSON lines with `service.name` = `service`."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(ecs_formatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
