"""Time-scaled variants of the alert rule files, for tests and demos.

The rule files of `observability/prometheus/rules/` are the single source. A variant divides
every duration in them by `factor`: each alert's `for:`, the ranges of range selectors and
subqueries (`[5m]`, `[15m:1m]`), `offset`s, and sets each group's evaluation `interval`.
Thresholds stay: they are per-second rates, ratios, seconds of latency or slopes, which do
not depend on the window length (the one count threshold, `increase(...[15m]) > 4` of an
ingest alert, keeps its count over the shorter window). With `factor=30` a `for: 10m`
becomes `20s` and `rate(x[5m])` becomes `rate(x[10s])`; scrape every second for that.

    write_scaled_rules(RULE_FILES, out_dir, factor=30, interval_s=1)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "observability/prometheus/rules"

_UNITS_MS = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
    "y": 31_536_000_000,
}
_DURATION = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
# `[5m]`, `[15m:1m]`, `[1h:]` and `offset 5m`, outside of quoted strings.
_RANGE = re.compile(
    r"\[\s*(" + _DURATION.pattern + r")\s*(?::\s*(" + _DURATION.pattern + r")?\s*)?\]"
)
_OFFSET = re.compile(r"\boffset\s+(-?)(" + _DURATION.pattern + r")\b")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')


def duration_ms(text: str) -> int:
    """Milliseconds of a Prometheus duration such as `90s`, `5m`, `1h30m`."""
    if not _DURATION.fullmatch(text):
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNITS_MS[unit] for n, unit in _PART.findall(text))


def format_ms(ms: int) -> str:
    """`ms` as a Prometheus duration (`90000` -> `1m30s`, `1500` -> `1s500ms`)."""
    out = ""
    for unit in ("h", "m", "s", "ms"):
        size = _UNITS_MS[unit]
        if ms >= size:
            out += f"{ms // size}{unit}"
            ms %= size
    return out or "0s"


def scale_duration(text: str, factor: float, minimum_ms: int = 1000) -> str:
    """`text` divided by `factor`, rounded to whole seconds, at least `minimum_ms`."""
    scaled = max(minimum_ms, round(duration_ms(text) / factor / 1000) * 1000)
    return format_ms(scaled)


def scale_expr(expr: str, factor: float) -> str:
    """`expr` with every range, subquery range/step and offset divided by `factor`."""

    def ranges(match: re.Match[str]) -> str:
        length = scale_duration(match.group(1), factor)
        if match.group(0).find(":") < 0:
            return f"[{length}]"
        step = match.group(2)
        return f"[{length}:{scale_duration(step, factor) if step else ''}]"

    def offsets(match: re.Match[str]) -> str:
        return f"offset {match.group(1)}{scale_duration(match.group(2), factor)}"

    out, last = [], 0
    for string in _STRING.finditer(expr):  # label values are never rewritten
        code = expr[last : string.start()]
        out.append(_OFFSET.sub(offsets, _RANGE.sub(ranges, code)))
        out.append(string.group(0))
        last = string.end()
    out.append(_OFFSET.sub(offsets, _RANGE.sub(ranges, expr[last:])))
    return "".join(out)


def scale_rules(document: dict[str, Any], factor: float, interval_s: int) -> dict[str, Any]:
    """A rule file's parsed `document`, time-scaled (a new object; the input is unchanged)."""
    groups = []
    for group in document["groups"]:
        rules = []
        for rule in group["rules"]:
            scaled = {**rule, "expr": scale_expr(str(rule["expr"]), factor)}
            if "for" in rule:
                scaled["for"] = scale_duration(rule["for"], factor)
            rules.append(scaled)
        groups.append({**group, "interval": f"{interval_s}s", "rules": rules})
    return {**document, "groups": groups}


def write_scaled_rules(
    rule_files: Iterable[Path], out_dir: Path, factor: float, interval_s: int
) -> list[Path]:
    """Write the scaled variant of each rule file into `out_dir` (same names)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in rule_files:
        document = yaml.safe_load(path.read_text())
        target = out_dir / path.name
        target.write_text(
            yaml.safe_dump(scale_rules(document, factor, interval_s), sort_keys=False, width=100)
        )
        written.append(target)
    return written


def rule_files() -> list[Path]:
    """The project's rule files."""
    return sorted(RULES_DIR.glob("*.yaml"))
