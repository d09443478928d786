"""`ReplaySettings` from environment variables."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import services.replay.settings as settings_module
from services.replay.formats import Format
from services.replay.settings import DEFAULT_FILE, ReplaySettings
from tests.services.replay.samples import SSE_FILE

REPLAY_VARS = (
    "REPLAY_FILE", "REPLAY_FORMAT", "REPLAY_SPEED", "REPLAY_LOOP", "REPLAY_FROM",
    "REPLAY_LIMIT", "REPLAY_SYMBOLS", "KAFKA_BOOTSTRAP_SERVERS", "TICKS_TOPIC",
)  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in REPLAY_VARS:
        monkeypatch.delenv(name, raising=False)


def test_defaults_replay_the_bundled_sse_file_as_fast_as_possible() -> None:
    settings = ReplaySettings()
    assert settings.replay_file == DEFAULT_FILE == SSE_FILE.resolve()
    assert settings.replay_file.is_file()
    assert (settings.replay_format, settings.replay_speed, settings.replay_loop) == (
        Format.AUTO, 0.0, False,
    )  # fmt: skip
    assert (settings.replay_from, settings.replay_limit, settings.symbols) == (None, None, None)


@pytest.mark.parametrize(
    ("env", "attribute", "expected"),
    [
        ({"REPLAY_FILE": "/tmp/x.csv.gz"}, "replay_file", Path("/tmp/x.csv.gz")),
        ({"REPLAY_FORMAT": "lean-ticks"}, "replay_format", Format.LEAN_TICKS),
        ({"REPLAY_SPEED": "60"}, "replay_speed", 60.0),
        ({"REPLAY_LOOP": "true"}, "replay_loop", True),
        ({"REPLAY_FROM": "09:30"}, "replay_from", time(9, 30)),
        ({"REPLAY_FROM": "09:30:15"}, "replay_from", time(9, 30, 15)),
        ({"REPLAY_LIMIT": "1000"}, "replay_limit", 1000),
        ({"REPLAY_SYMBOLS": "600332, 688233"}, "symbols", frozenset({"600332", "688233"})),
        ({"REPLAY_SYMBOLS": ""}, "symbols", None),
        ({"TICKS_TOPIC": "t2"}, "ticks_topic", "t2"),
    ],
)
def test_env_vars(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], attribute: str, expected: Any
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert getattr(ReplaySettings(), attribute) == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REPLAY_SPEED", "-1"),
        ("REPLAY_FORMAT", "parquet"),
        ("REPLAY_FROM", "9.30"),
        ("REPLAY_LIMIT", "-5"),
    ],
)
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        ReplaySettings()


def test_default_file_falls_back_to_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(settings_module, "REPO_ROOT", tmp_path / "site-packages")
    monkeypatch.chdir(tmp_path)
    assert ReplaySettings().replay_file == tmp_path / settings_module.SSE_SAMPLE
