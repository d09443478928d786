"""The time-scaled rule variant: every duration divided, nothing else touched."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stockstream.monitoring.timescale import (
    duration_ms,
    format_ms,
    rule_files,
    scale_duration,
    scale_expr,
    scale_rules,
    write_scaled_rules,
)


@pytest.mark.parametrize(
    ("text", "ms"), [("1m30s", 90_000), ("5m", 300_000), ("1h30m", 5_400_000), ("1s500ms", 1_500)]
)
def test_duration_round_trip(text: str, ms: int) -> None:
    assert duration_ms(text) == ms
    assert format_ms(ms) == text


@pytest.mark.parametrize("text", ["", "5", "m5", "5 m", "1.5m"])
def test_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        duration_ms(text)


@pytest.mark.parametrize(
    ("expr", "scaled"),
    [
        ("rate(x[5m]) > 0", "rate(x[10s]) > 0"),
        ("deriv(lag[15m:1m])", "deriv(lag[30s:2s])"),
        ("max_over_time(x[1h:])", "max_over_time(x[2m:])"),
        ("x offset 10m", "x offset 20s"),
        ('x{reason="[5m]"}[5m]', 'x{reason="[5m]"}[10s]'),  # label values are left alone
        ("up == 0", "up == 0"),
        ("rate(x[30s])", "rate(x[1s])"),  # never below a second
    ],
)
def test_scale_expr(expr: str, scaled: str) -> None:
    assert scale_expr(expr, 30) == scaled


def test_scale_duration_has_a_floor() -> None:
    assert scale_duration("10s", 30) == "1s"
    assert scale_duration("10s", 30, minimum_ms=2000) == "2s"


def test_scale_rules_changes_durations_only() -> None:
    document: dict[str, Any] = {
        "groups": [
            {
                "name": "g",
                "rules": [
                    {
                        "alert": "A",
                        "expr": "rate(x[5m]) > 0.05",
                        "for": "10m",
                        "labels": {"severity": "warning"},
                        "annotations": {"summary": "for 10 minutes"},
                    },
                    {"record": "r", "expr": "sum(rate(x[1m]))"},
                ],
            }
        ]
    }
    scaled = scale_rules(document, 30, interval_s=1)
    (group,) = scaled["groups"]
    assert group["interval"] == "1s"
    alert, record = group["rules"]
    assert alert == {
        **document["groups"][0]["rules"][0],
        "expr": "rate(x[10s]) > 0.05",
        "for": "20s",
    }
    assert record == {"record": "r", "expr": "sum(rate(x[2s]))"}
    assert document["groups"][0]["rules"][0]["for"] == "10m", "input unchanged"


def test_project_rules_scale_to_valid_rules(tmp_path: Path, promtool: str) -> None:
    written = write_scaled_rules(rule_files(), tmp_path, 30, 1)
    assert [p.name for p in written] == [p.name for p in rule_files()]
    proc = subprocess.run(
        [promtool, "check", "rules", *map(str, written)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for original, scaled in zip(rule_files(), written, strict=True):
        before = [r for g in yaml.safe_load(original.read_text())["groups"] for r in g["rules"]]
        after = [r for g in yaml.safe_load(scaled.read_text())["groups"] for r in g["rules"]]
        for old, new in zip(before, after, strict=True):
            assert duration_ms(new["for"]) * 30 == duration_ms(old["for"])
            assert new["labels"] == old["labels"] and new["annotations"] == old["annotations"]
